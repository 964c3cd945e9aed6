//! The dead-letter container's address, and the startup check of a key-based endpoint's
//! `deadLetterSecret` (a container SAS URI) before any event depends on it.
//!
//! Two URL styles name a container:
//!
//! - host style, Azure's: `https://<account>.blob.core.windows.net/<container>?<SAS>`;
//! - path style, Azurite's and any address given as an IP or `localhost`:
//!   `http://127.0.0.1:<port>/<account>/<container>?<SAS>`.
//!
//! The check is pure (the caller passes `now`, from the run's clock) and its errors never show the
//! query, where the signature lives: any URL in a message reads `https://a/c?***`.

use url::{Host, Url};

use crate::clock::Timestamp;
use crate::secret::{Secret, mask_url_query};

/// Why a dead-letter URI cannot be used. The caller adds which endpoint it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    /// Not an absolute http(s) URL. The input is not repeated: it may hold a key.
    #[error(
        "the dead-letter URI is not a URL ({reason}): expected https://<account>.blob.core.windows.net/<container>?<SAS>"
    )]
    NotAUrl {
        /// What the URL parser or scheme check said.
        reason: String,
    },
    /// A user name or password in the URL: Azure Storage takes none, and it would be shown.
    #[error(
        "the dead-letter URI has a user name or password before its host (https://***@…): Azure Storage takes none; remove it"
    )]
    UserInfo,
    /// The path names no container, or more than a container.
    #[error(
        "the dead-letter URI {url} does not name a container: expected https://<account>.blob.core.windows.net/<container>, or http://127.0.0.1:<port>/<account>/<container> for Azurite"
    )]
    NoContainer {
        /// The URL, query masked.
        url: String,
    },
    /// The container segment is not a valid container name.
    #[error(
        "the dead-letter URI {url} names container '{container}', which is not a valid container name (3-63 lowercase letters, digits and single hyphens)"
    )]
    InvalidContainer {
        /// The URL, query masked.
        url: String,
        /// The container segment as given.
        container: String,
    },
    /// No `sig`: the query is not a SAS (or it was cut off when pasted).
    #[error("the dead-letter SAS URI {url} has no signature (sig): it is not a SAS URI")]
    NoSignature {
        /// The URL, query masked.
        url: String,
    },
    /// A SAS for something other than a container (a single blob, say).
    #[error(
        "the SAS in {url} is for {resource} (sr={code}), not a container: dead-letters need a container SAS (sr=c) or an account SAS for blob objects"
    )]
    NotAContainerSas {
        /// The URL, query masked.
        url: String,
        /// The `sr` value.
        code: String,
        /// What `sr` names, for people.
        resource: &'static str,
    },
    /// An account SAS that does not cover blob objects.
    #[error(
        "the account SAS in {url} does not cover blob objects (ss={services}, srt={resource_types}): it needs 'b' in ss and 'o' in srt"
    )]
    AccountSasWithoutBlobObjects {
        /// The URL, query masked.
        url: String,
        /// The `ss` value.
        services: String,
        /// The `srt` value.
        resource_types: String,
    },
    /// A signature with neither `sr` (service SAS) nor `ss` (account SAS).
    #[error(
        "the SAS in {url} has neither sr (container SAS) nor ss (account SAS): it is not a SAS Azure Storage issues"
    )]
    UnknownSasKind {
        /// The URL, query masked.
        url: String,
    },
    /// No `sp` and no stored access policy (`si`) to supply it.
    #[error("the SAS in {url} grants no permissions (no sp and no stored access policy si)")]
    NoPermissions {
        /// The URL, query masked.
        url: String,
    },
    /// Permissions without write (`w`) or create (`c`): every Put Blob would be refused.
    #[error(
        "the SAS in {url} cannot create blobs: its permissions sp={permissions} include neither write (w) nor create (c)"
    )]
    NoWritePermission {
        /// The URL, query masked.
        url: String,
        /// The `sp` value.
        permissions: String,
    },
    /// No `se` and no stored access policy (`si`) to supply it.
    #[error("the SAS in {url} has no expiry (no se and no stored access policy si)")]
    NoExpiry {
        /// The URL, query masked.
        url: String,
    },
    /// An `se` that is not an ISO 8601 UTC time.
    #[error("the SAS in {url} has an expiry that is not a UTC time: se={expiry}")]
    UnreadableExpiry {
        /// The URL, query masked.
        url: String,
        /// The `se` value.
        expiry: String,
    },
    /// `se` at or before `now`.
    #[error("the SAS in {url} expired at {expiry} (se): create a new one")]
    Expired {
        /// The URL, query masked.
        url: String,
        /// The `se` value.
        expiry: String,
    },
    /// `spr=https` on an `http://` URL: the service would refuse every request.
    #[error("the SAS in {url} allows HTTPS only (spr=https) but the URL is http://")]
    HttpsOnly {
        /// The URL, query masked.
        url: String,
    },
    /// An identity-based `deadLetterUri` that carries a query (a SAS, most likely).
    #[error(
        "the identity-based dead-letter URI {url} has a query: give the container URL alone (a SAS belongs in deadLetterSecret, on key-based endpoints)"
    )]
    UnexpectedQuery {
        /// The URL, query masked.
        url: String,
    },
}

/// A blob container's URL without its query: where dead-letter blobs go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUrl {
    /// `scheme://host[:port]/[<account>/]<container>`, no trailing slash, no query.
    url: Url,
    container: String,
}

impl ContainerUrl {
    /// The container's name.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The container's URL, no query (so nothing secret).
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The URL of the blob at `path` (`/`-separated; each segment percent-encoded), with `query`
    /// appended as given (a SAS is sent exactly as the user gave it).
    pub fn blob_url(&self, path: &str, query: Option<&str>) -> Url {
        let mut url = self.url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.extend(path.split('/'));
        }
        url.set_query(query);
        url
    }
}

/// A container SAS URI that passed the startup check: where to write, and the SAS to send.
#[derive(Clone, PartialEq, Eq)]
pub struct SasUri {
    /// The container, without the SAS.
    pub container: ContainerUrl,
    /// The SAS query string as given (percent-encoded, no leading `?`).
    pub query: Secret,
}

impl std::fmt::Debug for SasUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SasUri({}?***)", self.container.as_str())
    }
}

/// Checks a key-based endpoint's `deadLetterSecret` at startup: a URL naming a container, with a
/// SAS that is signed, covers the container's blobs, may write or create them, and has not
/// expired at `now`.
///
/// What it cannot check (a wrong signature, a revoked key, a missing container) shows on the
/// first write, as a permanent [`StoreError`](super::StoreError).
pub fn check_sas_uri(uri: &str, now: Timestamp) -> Result<SasUri, SasError> {
    let (container, url) = parse_container_url(uri)?;
    let masked = || mask_url_query(url.as_str());
    let query = url.query().unwrap_or_default().to_owned();
    let param = |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };

    if param("sig").is_none_or(|sig| sig.is_empty()) {
        return Err(SasError::NoSignature { url: masked() });
    }
    match (param("sr"), param("ss")) {
        (Some(code), _) if code != "c" => {
            let resource = match code.as_str() {
                "b" => "a single blob",
                "bs" => "a blob snapshot",
                "bv" => "a blob version",
                "d" => "a directory",
                _ => "an unknown resource",
            };
            return Err(SasError::NotAContainerSas {
                url: masked(),
                code,
                resource,
            });
        }
        (Some(_), _) => {}
        (None, Some(services)) => {
            let resource_types = param("srt").unwrap_or_default();
            if !services.contains('b') || !resource_types.contains('o') {
                return Err(SasError::AccountSasWithoutBlobObjects {
                    url: masked(),
                    services,
                    resource_types,
                });
            }
        }
        (None, None) => return Err(SasError::UnknownSasKind { url: masked() }),
    }

    // A stored access policy (si) may hold the permissions and expiry instead of the URL.
    let has_policy = param("si").is_some();
    match param("sp") {
        Some(permissions) if !permissions.contains('w') && !permissions.contains('c') => {
            return Err(SasError::NoWritePermission {
                url: masked(),
                permissions,
            });
        }
        Some(_) => {}
        None if has_policy => {}
        None => return Err(SasError::NoPermissions { url: masked() }),
    }
    match param("se") {
        Some(expiry) => match parse_sas_time(&expiry) {
            None => {
                return Err(SasError::UnreadableExpiry {
                    url: masked(),
                    expiry,
                });
            }
            Some(at) if at <= now => {
                return Err(SasError::Expired {
                    url: masked(),
                    expiry,
                });
            }
            Some(_) => {}
        },
        None if has_policy => {}
        None => return Err(SasError::NoExpiry { url: masked() }),
    }
    if param("spr").as_deref() == Some("https") && url.scheme() == "http" {
        return Err(SasError::HttpsOnly { url: masked() });
    }
    Ok(SasUri {
        container,
        query: Secret::new(query),
    })
}

/// Checks an identity-based endpoint's `deadLetterUri`: a URL naming a container, and no query.
pub fn check_identity_uri(uri: &str) -> Result<ContainerUrl, SasError> {
    let (container, url) = parse_container_url(uri)?;
    if url.query().is_some() {
        return Err(SasError::UnexpectedQuery {
            url: mask_url_query(url.as_str()),
        });
    }
    Ok(container)
}

/// Splits a container URL (either style) into the container's address and the parsed URL.
fn parse_container_url(uri: &str) -> Result<(ContainerUrl, Url), SasError> {
    let url = Url::parse(uri.trim()).map_err(|err| SasError::NotAUrl {
        reason: err.to_string(),
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(SasError::NotAUrl {
            reason: format!("scheme '{}' is not https", url.scheme()),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SasError::UserInfo);
    }
    let no_container = || SasError::NoContainer {
        url: mask_url_query(url.as_str()),
    };
    let path_style = match url.host() {
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => true,
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        None => return Err(no_container()),
    };
    let mut segments: Vec<&str> = url.path_segments().into_iter().flatten().collect();
    if segments.last() == Some(&"") {
        segments.pop();
    }
    let wanted = if path_style { 2 } else { 1 };
    if segments.len() != wanted || segments.iter().any(|segment| segment.is_empty()) {
        return Err(no_container());
    }
    let container = segments[wanted - 1].to_owned();
    if !is_container_name(&container) {
        return Err(SasError::InvalidContainer {
            url: mask_url_query(url.as_str()),
            container,
        });
    }

    let mut base = url.clone();
    base.set_query(None);
    base.set_fragment(None);
    if let Ok(mut path) = base.path_segments_mut() {
        path.pop_if_empty();
    }
    Ok((
        ContainerUrl {
            url: base,
            container,
        },
        url,
    ))
}

/// Azure's container naming rule: 3-63 characters, lowercase letters, digits and hyphens, starting
/// and ending with a letter or digit, no two hyphens in a row; `$root` and `$web` are special.
fn is_container_name(name: &str) -> bool {
    if name == "$root" || name == "$web" {
        return true;
    }
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
        && !name.contains("--")
}

/// A SAS time: ISO 8601 UTC as Azure accepts it, `YYYY-MM-DD`, `YYYY-MM-DDThh:mmZ` or
/// `YYYY-MM-DDThh:mm:ss[.f]Z`.
fn parse_sas_time(text: &str) -> Option<Timestamp> {
    if let Some(at) = Timestamp::parse_rfc3339(text) {
        return Some(at);
    }
    match text.len() {
        10 => Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z")),
        17 if text.ends_with('Z') => {
            Timestamp::parse_rfc3339(&format!("{}:00Z", &text[..text.len() - 1]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::parse_rfc3339("2026-03-04T05:00:00Z").unwrap()
    }

    const SIG: &str = "sig=SECRETSIGNATURE%3D";

    fn check(uri: &str) -> Result<SasUri, SasError> {
        check_sas_uri(uri, now())
    }

    #[test]
    fn accepts_container_and_account_sas_in_both_styles() {
        let sas = check(&format!(
            "https://acct.blob.core.windows.net/dlq?sv=2024-11-04&sr=c&sp=cw&se=2026-04-01T00%3A00%3A00Z&{SIG}"
        ))
        .unwrap();
        assert_eq!(sas.container.container(), "dlq");
        assert_eq!(
            sas.container.as_str(),
            "https://acct.blob.core.windows.net/dlq"
        );
        assert_eq!(
            sas.query.expose(),
            format!("sv=2024-11-04&sr=c&sp=cw&se=2026-04-01T00%3A00%3A00Z&{SIG}")
        );

        // The ADT docs' CLI example: an account SAS, services bfqt, resource types o, permission w.
        let sas = check(&format!(
            "https://acct.blob.core.windows.net/dlq/?sv=2022-11-02&ss=bfqt&srt=o&sp=w&se=2026-04-01&{SIG}"
        ))
        .unwrap();
        assert_eq!(
            sas.container.as_str(),
            "https://acct.blob.core.windows.net/dlq"
        );

        let sas = check(&format!(
            "http://127.0.0.1:10000/devstoreaccount1/dead-letters?sv=2024-11-04&sr=c&sp=w&se=2026-04-01T00:00Z&{SIG}"
        ))
        .unwrap();
        assert_eq!(sas.container.container(), "dead-letters");
        assert_eq!(
            sas.container.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/dead-letters"
        );

        // A stored access policy may carry the permissions and expiry.
        check(&format!(
            "http://localhost:10000/devstoreaccount1/dlq?sv=2024-11-04&sr=c&si=policy&{SIG}"
        ))
        .unwrap();
    }

    #[test]
    fn blob_urls_encode_path_segments_and_keep_the_query_verbatim() {
        let sas = check(&format!(
            "http://127.0.0.1:10000/devstoreaccount1/dlq?sv=2024-11-04&sr=c&sp=w&se=2026-04-01&{SIG}"
        ))
        .unwrap();
        let url = sas.container.blob_url(
            "hub-1/2026/03/04/05/id with space#?.json",
            Some(sas.query.expose()),
        );
        assert_eq!(
            url.as_str(),
            format!(
                "http://127.0.0.1:10000/devstoreaccount1/dlq/hub-1/2026/03/04/05/id%20with%20space%23%3F.json?sv=2024-11-04&sr=c&sp=w&se=2026-04-01&{SIG}"
            )
        );
    }

    #[test]
    fn refuses_each_unusable_uri_with_its_reason_and_never_the_query() {
        let cases: &[(&str, &str)] = &[
            ("not a url", "is not a URL"),
            ("ftp://acct/dlq?sig=x", "scheme 'ftp' is not https"),
            (
                "https://acct.blob.core.windows.net?sv=1&sr=c&sp=w&se=2027-01-01&sig=SECRET",
                "does not name a container",
            ),
            (
                "http://127.0.0.1:10000/devstoreaccount1?sv=1&sr=c&sp=w&se=2027-01-01&sig=SECRET",
                "does not name a container",
            ),
            (
                "https://acct.blob.core.windows.net/dlq/sub?sv=1&sr=c&sp=w&se=2027-01-01&sig=SECRET",
                "does not name a container",
            ),
            (
                "https://acct.blob.core.windows.net/DLQ?sv=1&sr=c&sp=w&se=2027-01-01&sig=SECRET",
                "not a valid container name",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&sr=c&sp=w&se=2027-01-01",
                "has no signature (sig)",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&sr=c&sp=w&se=2027-01-01&sig=",
                "has no signature (sig)",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&sr=b&sp=w&se=2027-01-01&sig=SECRET",
                "is for a single blob (sr=b)",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&ss=q&srt=o&sp=w&se=2027-01-01&sig=SECRET",
                "does not cover blob objects (ss=q, srt=o)",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&ss=b&srt=sc&sp=w&se=2027-01-01&sig=SECRET",
                "does not cover blob objects (ss=b, srt=sc)",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&sp=w&se=2027-01-01&sig=SECRET",
                "has neither sr",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&sr=c&se=2027-01-01&sig=SECRET",
                "grants no permissions",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&sr=c&sp=rl&se=2027-01-01&sig=SECRET",
                "cannot create blobs: its permissions sp=rl include neither write (w) nor create (c)",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&sr=c&sp=w&sig=SECRET",
                "has no expiry",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&sr=c&sp=w&se=tomorrow&sig=SECRET",
                "not a UTC time: se=tomorrow",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&sr=c&sp=w&se=2026-03-04T05%3A00%3A00Z&sig=SECRET",
                "expired at 2026-03-04T05:00:00Z (se)",
            ),
            (
                "https://acct.blob.core.windows.net/dlq?sv=1&sr=c&sp=w&se=2020-01-01&sig=SECRET",
                "expired at 2020-01-01 (se)",
            ),
            (
                "http://acct.blob.core.windows.net/dlq?sv=1&sr=c&sp=w&se=2027-01-01&spr=https&sig=SECRET",
                "allows HTTPS only",
            ),
            (
                "https://SECRETUSER:SECRETPW@acct.blob.core.windows.net/dlq?sv=1&sr=c&sp=w&se=2099-01-01&sig=SECRET",
                "has a user name or password",
            ),
        ];
        for (uri, expected) in cases {
            let message = check(uri).unwrap_err().to_string();
            assert!(
                message.contains(expected),
                "{uri}: {message:?} lacks {expected:?}"
            );
            assert!(
                !message.contains("SECRET") && !message.contains("sig="),
                "{message}"
            );
            let host = uri
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split('/').next());
            if uri.contains('?') && host.is_some_and(|host| message.contains(host)) {
                assert!(message.contains("?***"), "{message}");
            }
        }
    }

    #[test]
    fn identity_uri_is_a_container_without_a_query() {
        let container = check_identity_uri("https://acct.blob.core.windows.net/dlq").unwrap();
        assert_eq!(container.as_str(), "https://acct.blob.core.windows.net/dlq");
        let message = check_identity_uri("https://acct.blob.core.windows.net/dlq?sig=SECRET")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("https://acct.blob.core.windows.net/dlq?***"),
            "{message}"
        );
        assert!(message.contains("deadLetterSecret"), "{message}");
    }

    #[test]
    fn sas_times_in_azure_forms() {
        let at = |s| parse_sas_time(s).map(|t: Timestamp| t.to_string());
        assert_eq!(
            at("2026-04-01").as_deref(),
            Some("2026-04-01T00:00:00.0000000Z")
        );
        assert_eq!(
            at("2026-04-01T10:20Z").as_deref(),
            Some("2026-04-01T10:20:00.0000000Z")
        );
        assert_eq!(
            at("2026-04-01T10:20:30Z").as_deref(),
            Some("2026-04-01T10:20:30.0000000Z")
        );
        assert_eq!(at("tomorrow"), None);
    }
}
