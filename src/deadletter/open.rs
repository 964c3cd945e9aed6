//! Every endpoint's dead-letter stores, opened from its settings: the configured location (a
//! local folder, a blob container by SAS or by Entra ID) or one a test gives, the run's spill
//! folder beside it, and what its blobs hold. The engine calls [`open`] once per endpoint,
//! before the run starts, so a refused location is an error before any event depends on it.

use std::sync::Arc;

use super::blob::{BlobStore, EntraTokenSource, TokenSource, UserAssignedId};
use super::folder::FolderStore;
use super::writer::EndpointStores;
use super::{BlobBody, DeadLetterStore};
use crate::clock::{Clock, ClockMode};
use crate::config::{Connection, DeadLetterLocation, EndpointSettings, InputSchema};
use crate::sink::build::event_grid_topic;

/// Why an endpoint's dead-letter stores cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The location was refused (a bad or expired SAS, no credential); secrets masked.
    #[error("{0}")]
    Refused(String),
    /// Virtual time with a store that does real I/O (described, secrets masked).
    #[error("dead-letters to {0}")]
    NotLocal(String),
}

/// Where `endpoint`'s dead-letters go: `given` (a store a test hands in) or its configured
/// location, with `spill` for what that refuses; `None` when it has no location (its given-up
/// deliveries are then dropped). `http` is the one client every blob store shares. Under
/// virtual time only local stores can be opened.
pub fn open(
    endpoint: &EndpointSettings,
    given: Option<&Arc<dyn DeadLetterStore>>,
    spill: &Arc<dyn DeadLetterStore>,
    http: &reqwest::Client,
    clock: ClockMode,
) -> Result<Option<EndpointStores>, OpenError> {
    let store: Arc<dyn DeadLetterStore> = match (given, &endpoint.dead_letter) {
        (Some(store), _) => store.clone(),
        (None, None) => return Ok(None),
        (None, Some(DeadLetterLocation::Folder(path))) => Arc::new(FolderStore::new(path)),
        (None, Some(DeadLetterLocation::BlobSas(uri))) => {
            // The SAS is checked against the wall clock, whatever clock the run uses.
            let store = BlobStore::from_sas_uri(uri.expose(), http.clone(), Clock::real().now())
                .map_err(|error| OpenError::Refused(error.to_string()))?;
            Arc::new(store)
        }
        (None, Some(DeadLetterLocation::BlobIdentity(uri))) => {
            let tokens = identity_tokens(endpoint.user_assigned_identity.as_deref(), http)
                .map_err(OpenError::Refused)?;
            let store = BlobStore::with_identity(uri, http.clone(), tokens)
                .map_err(|error| OpenError::Refused(error.to_string()))?;
            Arc::new(store)
        }
    };
    if clock == ClockMode::Virtual && !store.is_local() {
        return Err(OpenError::NotLocal(store.describe()));
    }
    let body = match &endpoint.connection {
        Connection::EventGrid {
            input_schema: InputSchema::EventGrid,
            ..
        } => BlobBody::EventGrid {
            topic: Arc::from(event_grid_topic(endpoint)),
        },
        _ => BlobBody::CloudEvent,
    };
    Ok(Some(EndpointStores {
        store,
        spill: Some(spill.clone()),
        retention: endpoint.delivery.dead_letter_retention,
        body,
    }))
}

/// Entra ID tokens for an IdentityBased endpoint's dead-letters: the endpoint's user-assigned
/// managed identity when it names one (`identity.userAssignedIdentity`); otherwise a service
/// principal from the environment (`AZURE_CLIENT_SECRET` or `AZURE_FEDERATED_TOKEN_FILE`), else
/// the Azure CLI's login.
fn identity_tokens(
    user_assigned: Option<&str>,
    http: &reqwest::Client,
) -> Result<Arc<dyn TokenSource>, String> {
    let from_environment = ["AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    let source = match user_assigned {
        Some(id) => EntraTokenSource::managed_identity(
            Some(UserAssignedId::ResourceId(id.to_owned())),
            http.clone(),
        ),
        None if from_environment => EntraTokenSource::environment(http.clone()),
        None => EntraTokenSource::azure_cli(),
    };
    source
        .map(|s| Arc::new(s) as Arc<dyn TokenSource>)
        .map_err(|e| e.to_string())
}
