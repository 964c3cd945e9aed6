//! The route table: every route's filter, compiled once when the config loads, and the one
//! synchronous, pure function that says which routes an event matches.
//!
//! Every route that matches yields one delivery to its endpoint: two matching routes to one
//! endpoint give two deliveries, each accounted for (ADT does not document this; README,
//! fidelity table).

use crate::config::RouteSettings;
use crate::filter::{Filter, FilterInput};

/// One compiled route.
#[derive(Clone, Debug)]
pub struct Route {
    /// The route id.
    pub id: String,
    /// Index of the route's endpoint.
    pub endpoint: usize,
    /// The compiled filter.
    pub filter: Filter,
}

/// The routes of an instance, in file order.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl From<&[RouteSettings]> for RouteTable {
    /// The table of an instance's validated routes (filters already compiled), in file order.
    fn from(routes: &[RouteSettings]) -> Self {
        RouteTable::new(
            routes
                .iter()
                .map(|route| Route {
                    id: route.id.clone(),
                    endpoint: route.endpoint,
                    filter: route.filter.clone(),
                })
                .collect(),
        )
    }
}

impl RouteTable {
    /// A table of `routes`; routes whose filter is `false` are kept (they count) but never match.
    pub fn new(routes: Vec<Route>) -> Self {
        RouteTable { routes }
    }

    /// Calls `matched(route index, endpoint index)` for each route `event` matches, in route
    /// order, and returns how many matched.
    #[inline]
    pub fn route<E: FilterInput + ?Sized>(
        &self,
        event: &E,
        mut matched: impl FnMut(usize, usize),
    ) -> usize {
        let mut count = 0;
        for (index, route) in self.routes.iter().enumerate() {
            if route.filter.matches(event) {
                matched(index, route.endpoint);
                count += 1;
            }
        }
        count
    }
}
