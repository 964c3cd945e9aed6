//! Dead-letters in an Azure Blob Storage container: one block blob per event, written with one
//! Put Blob request.
//!
//! # Why plain REST with `reqwest`, not an Azure SDK crate
//!
//! `azure_storage_blob` 1.1 and `azure_core_amqp` 1.2.0-beta.1 cannot be in one dependency graph
//! today: the first requires `azure_core ^1.1.0`, the second `azure_core ^1.2.0-beta.1`, and Cargo
//! will not hold two semver-compatible versions of one crate. The legacy `azure_storage_blobs`
//! 0.21 line is frozen and rejects Azurite's (path-style) SAS URLs. A dead-letter write is one Put
//! Blob request with a SAS the user already gave us, so it is that REST call, made with `reqwest`
//! 0.13 (the HTTP client the Azure crates use), behind [`DeadLetterStore`]. It can move to
//! `azure_storage_blob` once the `azure_core` versions align.
//!
//! # The request
//!
//! `PUT <container-url>/<blob.path>[?<SAS>]` with `x-ms-blob-type: BlockBlob`,
//! `Content-Type: application/json`, the event's bytes as the body, the diagnostics as
//! `x-ms-meta-<key>` headers (never in the body), and `If-None-Match: *` so that a second write of
//! the same path changes nothing: its `409 BlobAlreadyExists` counts as written.
//!
//! # Credentials
//!
//! - KeyBased endpoints: `deadLetterSecret`, a container SAS URI, checked at startup by
//!   [`check_sas_uri`] and sent as given.
//! - IdentityBased endpoints: `deadLetterUri` plus an Entra ID bearer token for
//!   [`STORAGE_SCOPE`], from a [`TokenSource`]; [`EntraTokenSource`] gets it from
//!   `azure_identity` (managed identity, a service principal from the environment, or the Azure
//!   CLI). `azure_identity` is pinned to 1.1.0-beta.1, the newest release and the only one whose
//!   `azure_core` (1.2.0-beta.1) agrees with `azure_core_amqp` 1.2.0-beta.1. Only the request
//!   this builds is tested (with a fake token source): getting a real token needs Azure.
//!
//! # Failures
//!
//! [`classify`] maps each answer to stored, transient (5xx, 408, 429; and timeouts, refused or
//! reset connections) or permanent (403, 404 and other 4xx), with a message naming what is wrong.
//! No message holds the SAS: `reqwest`'s errors print the URL with its query, so they are never
//! shown as they are.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use reqwest::header::{self, HeaderName, HeaderValue};

use super::sas::{ContainerUrl, SasError, check_identity_uri, check_sas_uri};
use super::{DeadLetterBlob, DeadLetterStore, StoreError, StoreFuture};
use crate::clock::Timestamp;
use crate::secret::Secret;

/// The Blob service version sent as `x-ms-version` (Azurite 3.37 accepts up to 2026-06-06).
pub const STORAGE_API_VERSION: &str = "2024-11-04";

/// The Entra ID scope of Azure Storage's data plane.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// How long one Put Blob may take, unless [`BlobStore::with_request_timeout`] says otherwise.
/// Event Grid gives a delivery 30 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A dead-letter store writing to one Azure Blob Storage container.
pub struct BlobStore {
    client: reqwest::Client,
    container: ContainerUrl,
    auth: Auth,
    timeout: Duration,
}

/// How requests are authorized.
enum Auth {
    /// The SAS query string, appended to every blob URL.
    Sas(Secret),
    /// A bearer token per request (the source caches).
    Entra(Arc<dyn TokenSource>),
}

impl Auth {
    /// What the service refuses when it answers 401/403, for messages.
    fn credential_name(&self) -> &'static str {
        match self {
            Auth::Sas(_) => "SAS",
            Auth::Entra(_) => "Entra ID token",
        }
    }
}

impl BlobStore {
    /// A store for a KeyBased endpoint's `deadLetterSecret`, checked with [`check_sas_uri`] against
    /// `now`. `client` is shared by every store and sink.
    pub fn from_sas_uri(
        uri: &str,
        client: reqwest::Client,
        now: Timestamp,
    ) -> Result<BlobStore, SasError> {
        let sas = check_sas_uri(uri, now)?;
        Ok(BlobStore {
            client,
            container: sas.container,
            auth: Auth::Sas(sas.query),
            timeout: DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// A store for an IdentityBased endpoint's `deadLetterUri` (a container URL, no query), with
    /// bearer tokens from `tokens`.
    pub fn with_identity(
        uri: &str,
        client: reqwest::Client,
        tokens: Arc<dyn TokenSource>,
    ) -> Result<BlobStore, SasError> {
        Ok(BlobStore {
            client,
            container: check_identity_uri(uri)?,
            auth: Auth::Entra(tokens),
            timeout: DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// The same store with each Put Blob limited to `timeout` (connect to last body byte).
    pub fn with_request_timeout(mut self, timeout: Duration) -> BlobStore {
        self.timeout = timeout;
        self
    }

    /// The container written to.
    pub fn container(&self) -> &ContainerUrl {
        &self.container
    }

    /// The Put Blob request for `blob`, ready to send (fetches a token for identity stores).
    pub async fn put_request(&self, blob: &DeadLetterBlob) -> Result<reqwest::Request, StoreError> {
        let query = match &self.auth {
            Auth::Sas(sas) => Some(sas.expose()),
            Auth::Entra(_) => None,
        };
        let url = self.container.blob_url(&blob.path, query);
        let mut request = self
            .client
            .put(url)
            .timeout(self.timeout)
            .header("x-ms-version", STORAGE_API_VERSION)
            .header("x-ms-blob-type", "BlockBlob")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::IF_NONE_MATCH, "*");
        for (key, value) in blob.metadata.pairs() {
            let name = HeaderName::try_from(format!("x-ms-meta-{key}"));
            match (name, HeaderValue::try_from(value.as_str())) {
                (Ok(name), Ok(header_value)) => request = request.header(name, header_value),
                _ => {
                    return Err(StoreError::Permanent(format!(
                        "put blob '{}': metadata {key}={value:?} is not a valid header",
                        blob.path
                    )));
                }
            }
        }
        if let Auth::Entra(tokens) = &self.auth {
            let token = tokens.storage_token().await?;
            let mut value =
                HeaderValue::try_from(format!("Bearer {}", token.expose())).map_err(|_| {
                    StoreError::Permanent("the Entra ID token is not a valid header value".into())
                })?;
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        request
            .body(blob.body.clone())
            .build()
            .map_err(|err| self.transport_error(&blob.path, err))
    }

    /// Sends one Put Blob and classifies the answer.
    async fn put_blob(&self, blob: &DeadLetterBlob) -> Result<(), StoreError> {
        let request = self.put_request(blob).await?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|err| self.transport_error(&blob.path, err))?;
        let status = response.status().as_u16();
        let code = response
            .headers()
            .get("x-ms-error-code")
            .and_then(|code| code.to_str().ok())
            .map(str::to_owned);
        // Read the (small) body so the connection goes back to the pool.
        let _ = response.bytes().await;
        let outcome = classify(
            status,
            code.as_deref(),
            self.container.container(),
            self.auth.credential_name(),
        );
        tracing::trace!(path = %blob.path, status, code = code.as_deref(), ?outcome, "put blob");
        match outcome {
            PutOutcome::Stored | PutOutcome::AlreadyStored => Ok(()),
            PutOutcome::Retry(reason) => Err(StoreError::Transient(self.message(blob, &reason))),
            PutOutcome::GiveUp(reason) => Err(StoreError::Permanent(self.message(blob, &reason))),
        }
    }

    fn message(&self, blob: &DeadLetterBlob, reason: &str) -> String {
        self.scrub(format!(
            "put blob '{}' in {}: {reason}",
            blob.path,
            self.container.as_str()
        ))
    }

    /// A failure to build, send or receive: classified by its type, shown without its URL.
    fn transport_error(&self, path: &str, err: reqwest::Error) -> StoreError {
        let err = err.without_url();
        let mut cause: &dyn std::error::Error = &err;
        while let Some(source) = cause.source() {
            cause = source;
        }
        let reason = if err.is_timeout() {
            format!("no answer within {:?} (timed out)", self.timeout)
        } else if err.is_connect() {
            format!("cannot connect ({cause})")
        } else if err.is_builder() {
            return StoreError::Permanent(self.scrub(format!(
                "put blob '{path}' in {}: cannot build the request ({cause})",
                self.container.as_str()
            )));
        } else {
            format!("the connection failed ({cause})")
        };
        StoreError::Transient(self.scrub(format!(
            "put blob '{path}' in {}: {reason}",
            self.container.as_str()
        )))
    }

    /// Belt and braces: whatever a lower layer put in a message, the SAS does not get out.
    fn scrub(&self, message: String) -> String {
        match &self.auth {
            Auth::Sas(sas) if !sas.expose().is_empty() && message.contains(sas.expose()) => {
                message.replace(sas.expose(), "***")
            }
            _ => message,
        }
    }
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore")
            .field("container", &self.describe())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DeadLetterStore for BlobStore {
    fn put<'a>(&'a self, blob: &'a DeadLetterBlob) -> StoreFuture<'a> {
        Box::pin(self.put_blob(blob))
    }

    fn describe(&self) -> String {
        match &self.auth {
            Auth::Sas(_) => format!("{}?***", self.container.as_str()),
            Auth::Entra(_) => format!("{} (Entra ID)", self.container.as_str()),
        }
    }

    fn is_local(&self) -> bool {
        false
    }
}

/// What one Put Blob answer means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// Created (2xx).
    Stored,
    /// The blob was already there (`409 BlobAlreadyExists` under `If-None-Match: *`): an earlier
    /// write of the same dead-letter succeeded.
    AlreadyStored,
    /// Worth retrying; why.
    Retry(String),
    /// Not worth retrying; why.
    GiveUp(String),
}

/// Classifies a Put Blob answer by status and `x-ms-error-code`. `credential` names what was
/// presented ("SAS", "Entra ID token").
pub fn classify(status: u16, code: Option<&str>, container: &str, credential: &str) -> PutOutcome {
    let code_text = code.unwrap_or("no error code");
    match (status, code) {
        (200..=299, _) => PutOutcome::Stored,
        (409, Some("BlobAlreadyExists")) => PutOutcome::AlreadyStored,
        (401 | 403, _) => PutOutcome::GiveUp(format!(
            "the {credential} was refused ({status} {code_text})"
        )),
        (404, Some("ContainerNotFound")) => PutOutcome::GiveUp(format!(
            "container '{container}' does not exist (404 ContainerNotFound)"
        )),
        (404, _) => PutOutcome::GiveUp(format!("not found (404 {code_text})")),
        (408, _) => PutOutcome::Retry(format!("the service timed out ({status} {code_text})")),
        (429, _) => PutOutcome::Retry(format!("throttled ({status} {code_text})")),
        (500..=599, _) => PutOutcome::Retry(format!("the service failed ({status} {code_text})")),
        (400..=499, _) => {
            PutOutcome::GiveUp(format!("the write was refused ({status} {code_text})"))
        }
        _ => PutOutcome::GiveUp(format!("unexpected answer ({status} {code_text})")),
    }
}

// ---- Entra ID tokens -------------------------------------------------------------------------

/// A boxed future of a bearer token.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Secret, StoreError>> + Send + 'a>>;

/// Where an identity-based store gets bearer tokens for Azure Storage ([`STORAGE_SCOPE`]). Called
/// before every request: implementations cache.
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// A valid access token for [`STORAGE_SCOPE`] (without the `Bearer ` prefix).
    fn storage_token(&self) -> TokenFuture<'_>;
}

/// A [`TokenSource`] backed by an `azure_identity` credential (which caches its tokens).
#[derive(Clone)]
pub struct EntraTokenSource {
    credential: Arc<dyn TokenCredential>,
    name: &'static str,
}

/// Re-exported for [`EntraTokenSource::managed_identity`]: ADT's `identity.userAssignedIdentity`
/// is an ARM resource id, `UserAssignedId::ResourceId(id)`.
pub use azure_identity::UserAssignedId;

/// Why an Entra ID credential could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot set up the {credential} credential: {reason}")]
pub struct CredentialError {
    /// Which credential.
    pub credential: &'static str,
    /// What `azure_identity` or the environment said.
    pub reason: String,
}

impl EntraTokenSource {
    /// Tokens from any `azure_identity` credential.
    pub fn new(credential: Arc<dyn TokenCredential>) -> EntraTokenSource {
        EntraTokenSource {
            credential,
            name: "custom",
        }
    }

    /// The endpoint's managed identity: system-assigned when `user_assigned` is `None`. Token
    /// requests go through `client`.
    pub fn managed_identity(
        user_assigned: Option<UserAssignedId>,
        client: reqwest::Client,
    ) -> Result<EntraTokenSource, CredentialError> {
        let options = azure_identity::ManagedIdentityCredentialOptions {
            user_assigned_id: user_assigned,
            client_options: client_options(client),
        };
        let credential = azure_identity::ManagedIdentityCredential::new(Some(options))
            .map_err(|err| credential_error("managed identity", &err))?;
        Ok(EntraTokenSource {
            credential,
            name: "managed identity",
        })
    }

    /// A service principal named by the environment, as Azure SDKs read it: `AZURE_TENANT_ID`,
    /// `AZURE_CLIENT_ID`, and `AZURE_CLIENT_SECRET` or `AZURE_FEDERATED_TOKEN_FILE` (workload
    /// identity).
    pub fn environment(client: reqwest::Client) -> Result<EntraTokenSource, CredentialError> {
        const NAME: &str = "environment";
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let missing = |what: &str| CredentialError {
            credential: NAME,
            reason: format!("{what} is not set"),
        };
        if let Some(secret) = var("AZURE_CLIENT_SECRET") {
            let tenant = var("AZURE_TENANT_ID").ok_or_else(|| missing("AZURE_TENANT_ID"))?;
            let client_id = var("AZURE_CLIENT_ID").ok_or_else(|| missing("AZURE_CLIENT_ID"))?;
            let options = azure_identity::ClientSecretCredentialOptions {
                client_options: client_options(client),
            };
            let credential = azure_identity::ClientSecretCredential::new(
                &tenant,
                client_id,
                secret.into(),
                Some(options),
            )
            .map_err(|err| credential_error(NAME, &err))?;
            return Ok(EntraTokenSource {
                credential,
                name: NAME,
            });
        }
        if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
            let mut options = azure_identity::WorkloadIdentityCredentialOptions::default();
            options.credential_options.client_options = client_options(client);
            let credential = azure_identity::WorkloadIdentityCredential::new(Some(options))
                .map_err(|err| credential_error(NAME, &err))?;
            return Ok(EntraTokenSource {
                credential,
                name: NAME,
            });
        }
        Err(missing(
            "neither AZURE_CLIENT_SECRET nor AZURE_FEDERATED_TOKEN_FILE",
        ))
    }

    /// The account the Azure CLI (`az login`) is signed in to: for development.
    pub fn azure_cli() -> Result<EntraTokenSource, CredentialError> {
        let credential = azure_identity::AzureCliCredential::new(None)
            .map_err(|err| credential_error("Azure CLI", &err))?;
        Ok(EntraTokenSource {
            credential,
            name: "Azure CLI",
        })
    }
}

fn client_options(client: reqwest::Client) -> azure_core::http::ClientOptions {
    azure_core::http::ClientOptions {
        transport: Some(azure_core::http::Transport::new(Arc::new(client))),
        ..Default::default()
    }
}

fn credential_error(credential: &'static str, err: &azure_core::Error) -> CredentialError {
    CredentialError {
        credential,
        reason: err.to_string(),
    }
}

impl fmt::Debug for EntraTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntraTokenSource({})", self.name)
    }
}

impl TokenSource for EntraTokenSource {
    fn storage_token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            match self.credential.get_token(&[STORAGE_SCOPE], None).await {
                Ok(token) => Ok(Secret::new(token.token.secret())),
                // Every credential failure reads alike (ErrorKind::Credential), a missing identity
                // and an unreachable token endpoint too: let the writer retry within its budget.
                Err(err) => Err(StoreError::Transient(format!(
                    "no Entra ID token for Azure Storage from the {} credential: {err}",
                    self.name
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::deadletter::DeadLetterMetadata;

    fn blob(path: &str) -> DeadLetterBlob {
        let at = Timestamp::parse_rfc3339("2026-03-04T05:06:07.1234567Z").unwrap();
        DeadLetterBlob {
            path: path.to_owned(),
            body: Bytes::from_static(b"{\"id\":\"e1\"}"),
            metadata: DeadLetterMetadata {
                reason: "MaxDeliveryAttemptsExceeded",
                delivery_attempts: 30,
                last_delivery_outcome: "Busy",
                last_http_status_code: Some(503),
                publish_time: at,
                last_delivery_attempt_time: Some(at),
            },
        }
    }

    #[derive(Debug)]
    struct FakeTokens;

    impl TokenSource for FakeTokens {
        fn storage_token(&self) -> TokenFuture<'_> {
            Box::pin(async { Ok(Secret::new("fake-token")) })
        }
    }

    fn header<'a>(request: &'a reqwest::Request, name: &str) -> &'a str {
        request.headers()[name].to_str().unwrap()
    }

    #[tokio::test]
    async fn identity_request_carries_bearer_token_version_and_metadata() {
        let store = BlobStore::with_identity(
            "https://acct.blob.core.windows.net/dlq",
            reqwest::Client::new(),
            Arc::new(FakeTokens),
        )
        .unwrap()
        .with_request_timeout(Duration::from_secs(7));
        let request = store
            .put_request(&blob("hub-1/2026/03/04/05/e 1.json"))
            .await
            .unwrap();
        assert_eq!(request.method(), reqwest::Method::PUT);
        assert_eq!(
            request.url().as_str(),
            "https://acct.blob.core.windows.net/dlq/hub-1/2026/03/04/05/e%201.json"
        );
        assert_eq!(header(&request, "authorization"), "Bearer fake-token");
        assert!(request.headers()["authorization"].is_sensitive());
        assert_eq!(header(&request, "x-ms-version"), STORAGE_API_VERSION);
        assert_eq!(header(&request, "x-ms-blob-type"), "BlockBlob");
        assert_eq!(header(&request, "content-type"), "application/json");
        assert_eq!(header(&request, "if-none-match"), "*");
        assert_eq!(
            header(&request, "x-ms-meta-deadletterreason"),
            "MaxDeliveryAttemptsExceeded"
        );
        assert_eq!(header(&request, "x-ms-meta-deliveryattempts"), "30");
        assert_eq!(header(&request, "x-ms-meta-lastdeliveryoutcome"), "Busy");
        assert_eq!(header(&request, "x-ms-meta-lasthttpstatuscode"), "503");
        assert_eq!(
            header(&request, "x-ms-meta-publishtime"),
            "2026-03-04T05:06:07.1234567Z"
        );
        assert_eq!(
            header(&request, "x-ms-meta-lastdeliveryattempttime"),
            "2026-03-04T05:06:07.1234567Z"
        );
        assert_eq!(request.timeout(), Some(&Duration::from_secs(7)));
        assert_eq!(
            request.body().and_then(|body| body.as_bytes()),
            Some(&b"{\"id\":\"e1\"}"[..])
        );
        assert_eq!(
            store.describe(),
            "https://acct.blob.core.windows.net/dlq (Entra ID)"
        );
        assert!(!format!("{store:?}").contains("fake-token"));
    }

    #[tokio::test]
    async fn sas_request_sends_the_sas_as_given_and_describes_it_masked() {
        let uri = "http://127.0.0.1:10000/devstoreaccount1/dlq?sv=2024-11-04&sr=c&sp=cw&se=2027-01-01T00%3A00%3A00Z&sig=SEC%2BRET%3D";
        let now = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let store = BlobStore::from_sas_uri(uri, reqwest::Client::new(), now).unwrap();
        let request = store
            .put_request(&blob("hub-1/2026/03/04/05/e1.json"))
            .await
            .unwrap();
        assert_eq!(
            request.url().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/dlq/hub-1/2026/03/04/05/e1.json?sv=2024-11-04&sr=c&sp=cw&se=2027-01-01T00%3A00%3A00Z&sig=SEC%2BRET%3D"
        );
        assert!(request.headers().get("authorization").is_none());
        assert_eq!(
            store.describe(),
            "http://127.0.0.1:10000/devstoreaccount1/dlq?***"
        );
        assert!(!format!("{store:?}").contains("SEC"));
    }

    #[tokio::test]
    async fn a_silent_service_is_a_transient_timeout_without_the_sas() {
        // Accepts connections, never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let uri = format!(
            "http://127.0.0.1:{port}/devstoreaccount1/dlq?sv=2024-11-04&sr=c&sp=cw&se=2027-01-01&sig=SECRET"
        );
        let now = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let store = BlobStore::from_sas_uri(&uri, reqwest::Client::new(), now)
            .unwrap()
            .with_request_timeout(Duration::from_millis(200));
        let err = store.put(&blob("hub-1/e1.json")).await.unwrap_err();
        let StoreError::Transient(message) = &err else {
            panic!("expected transient, got {err:?}");
        };
        assert!(message.contains("timed out"), "{message}");
        assert!(
            !message.contains("SECRET") && !message.contains("sig="),
            "{message}"
        );
        silent.abort();
    }

    #[test]
    fn classifies_answers_like_a_table() {
        use PutOutcome::*;
        let cases: &[(u16, Option<&str>, PutOutcome)] = &[
            (201, None, Stored),
            (409, Some("BlobAlreadyExists"), AlreadyStored),
            (
                403,
                Some("AuthenticationFailed"),
                GiveUp("the SAS was refused (403 AuthenticationFailed)".into()),
            ),
            (
                403,
                Some("AuthorizationPermissionMismatch"),
                GiveUp("the SAS was refused (403 AuthorizationPermissionMismatch)".into()),
            ),
            (
                404,
                Some("ContainerNotFound"),
                GiveUp("container 'dlq' does not exist (404 ContainerNotFound)".into()),
            ),
            (
                409,
                Some("LeaseIdMissing"),
                GiveUp("the write was refused (409 LeaseIdMissing)".into()),
            ),
            (
                400,
                None,
                GiveUp("the write was refused (400 no error code)".into()),
            ),
            (
                408,
                Some("OperationTimedOut"),
                Retry("the service timed out (408 OperationTimedOut)".into()),
            ),
            (429, None, Retry("throttled (429 no error code)".into())),
            (
                500,
                Some("InternalError"),
                Retry("the service failed (500 InternalError)".into()),
            ),
            (
                503,
                Some("ServerBusy"),
                Retry("the service failed (503 ServerBusy)".into()),
            ),
            (
                304,
                None,
                GiveUp("unexpected answer (304 no error code)".into()),
            ),
        ];
        for (status, code, expected) in cases {
            assert_eq!(
                &classify(*status, *code, "dlq", "SAS"),
                expected,
                "{status} {code:?}"
            );
        }
    }
}
