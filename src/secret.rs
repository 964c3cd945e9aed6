//! Secrets and how they are shown: never. Keys, SAS signatures and connection strings are held
//! in [`Secret`], whose `Debug` and `Display` print `***`, the way ARM masks them on read.

use std::fmt;

/// A secret string: a key, a connection string or a SAS URI.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A connection string with every value masked but its keys, as ARM returns it on read:
/// `Endpoint=sb://***/;SharedAccessKeyName=***;SharedAccessKey=***;EntityPath=***`.
pub fn mask_connection_string(value: &str) -> String {
    value
        .split(';')
        .filter(|part| !part.trim().is_empty())
        .map(|part| match part.split_once('=') {
            Some((key, value))
                if key.eq_ignore_ascii_case("Endpoint") && value.starts_with("sb://") =>
            {
                format!("{key}=sb://***/")
            }
            Some((key, _)) => format!("{key}=***"),
            None => "***".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// A URL with its whole query (where a SAS signature lives) masked: `https://a/b?***`.
pub fn mask_url_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?***"),
        None => url.to_owned(),
    }
}

/// Whether `value` looks like a secret ARM has already masked (`***`, `************`, or a
/// connection string of masked parts): pasting one from `az dt endpoint show` is a common slip.
pub fn is_masked(value: &str) -> bool {
    let trimmed = value.trim();
    (!trimmed.is_empty() && trimmed.chars().all(|c| c == '*'))
        || trimmed.contains("SharedAccessKey=***")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_like_arm() {
        let cs = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc123=;EntityPath=hub";
        assert_eq!(
            mask_connection_string(cs),
            "Endpoint=sb://***/;SharedAccessKeyName=***;SharedAccessKey=***;EntityPath=***"
        );
        assert_eq!(
            mask_url_query("https://a.blob.core.windows.net/c?sv=2021&sig=SECRET"),
            "https://a.blob.core.windows.net/c?***"
        );
        assert_eq!(
            format!("{:?} {}", Secret::new("k"), Secret::new("k")),
            "*** ***"
        );
        assert!(is_masked("************"));
        assert!(is_masked(&mask_connection_string(cs)));
        assert!(!is_masked(cs));
    }
}
