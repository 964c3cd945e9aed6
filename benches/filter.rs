//! Route matching throughput (issue goal on one core: ≥ 20 M matches/s for an attribute
//! equality, ≥ 5 M/s for a `$body` filter): one attribute equality, a STARTS_WITH on
//! `$body.$metadata.$model`, and a table of six routes, against the generator's typed events
//! (as the pipeline matches them) and, for comparison, against parsed JSON (`twinroute filter`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use twinroute::bench::SIX_ROUTES;
use twinroute::event::{Event, EventType};
use twinroute::filter::{Filter, JsonEvent};
use twinroute::router::{Route, RouteTable};

fn events() -> Vec<Event> {
    twinroute::generator::sample_events(7, 1000, 20_000)
}

fn bench(c: &mut Criterion) {
    let events = events();
    let floor_create = events
        .iter()
        .find(|e| e.kind == EventType::TwinCreate && e.twin_id.starts_with("floor"))
        .expect("a floor is created")
        .clone();
    let json = JsonEvent::from_json(std::str::from_utf8(&floor_create.to_json()).unwrap()).unwrap();
    let equality = Filter::parse("type = 'Microsoft.DigitalTwins.Twin.Create'").unwrap();
    let model =
        Filter::parse("STARTS_WITH($body.$metadata.$model, 'dtmi:example:com:floor')").unwrap();
    let table = RouteTable::new(
        SIX_ROUTES
            .iter()
            .enumerate()
            .map(|(i, f)| Route {
                id: format!("r{i}"),
                endpoint: i,
                filter: Filter::parse(f).unwrap(),
            })
            .collect(),
    );
    assert!(equality.matches(&floor_create) && model.matches(&floor_create));

    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Elements(1));
    group.bench_function("attribute-equality/typed", |b| {
        b.iter(|| black_box(&equality).matches(black_box(&floor_create)))
    });
    group.bench_function("body-starts-with/typed", |b| {
        b.iter(|| black_box(&model).matches(black_box(&floor_create)))
    });
    group.bench_function("attribute-equality/json", |b| {
        b.iter(|| black_box(&equality).matches(black_box(&json)))
    });
    group.bench_function("body-starts-with/json", |b| {
        b.iter(|| black_box(&model).matches(black_box(&json)))
    });
    group.bench_function("six-routes/one-event", |b| {
        b.iter(|| {
            table.route(black_box(&floor_create), |route, endpoint| {
                black_box((route, endpoint));
            })
        })
    });
    group.finish();

    // The six routes over the generated mix, per event.
    let mut group = c.benchmark_group("route-table");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("six-routes/mix", |b| {
        b.iter(|| {
            events
                .iter()
                .map(|e| table.route(e, |_, _| {}))
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
