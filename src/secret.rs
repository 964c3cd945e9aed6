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

/// A URI as it may be shown anywhere (`validate --show`, the summary, the report, logs): its
/// userinfo and every query value masked, keys kept, as ARM masks what it returns on read:
/// `https://user:pw@h/p?code=k&x=1` → `https://***@h/p?code=***&x=***`. A fragment is masked
/// too. Works on text that does not parse as a URL: nothing after `@`, `?` or `#` is trusted.
pub fn mask_uri(uri: &str) -> String {
    let (rest, fragment) = match uri.split_once('#') {
        Some((rest, _)) => (rest, Some("***")),
        None => (uri, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    // The authority runs from after `scheme://` to the next `/`; userinfo ends at its last `@`.
    let (scheme, after) = match rest.split_once("://") {
        Some((scheme, after)) => (Some(scheme), after),
        None => (None, rest),
    };
    let (authority, path) = match after.find('/') {
        Some(index) => after.split_at(index),
        None => (after, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    let mut shown = String::with_capacity(uri.len());
    if let Some(scheme) = scheme {
        shown.push_str(scheme);
        shown.push_str("://");
    }
    shown.push_str(&authority);
    shown.push_str(path);
    if let Some(query) = query {
        shown.push('?');
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) => format!("{key}=***"),
                None if pair.is_empty() => String::new(),
                None => "***".to_owned(),
            })
            .collect();
        shown.push_str(&masked.join("&"));
    }
    if let Some(fragment) = fragment {
        shown.push('#');
        shown.push_str(fragment);
    }
    shown
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

    #[test]
    fn uris_show_no_userinfo_and_no_query_value() {
        for (uri, shown) in [
            (
                "https://user:pw@h.example/api/hook?code=KEY&x=1",
                "https://***@h.example/api/hook?code=***&x=***",
            ),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
            ("https://h/p?KEYONLY", "https://h/p?***"),
            ("https://h/p#frag", "https://h/p#***"),
            ("https://h?code=k", "https://h?code=***"),
            // Not a URL at all: still nothing after `@` or `?` is shown.
            ("user:pw@h/p?sig=S", "***@h/p?sig=***"),
            (
                "sb://ns.servicebus.windows.net/",
                "sb://ns.servicebus.windows.net/",
            ),
        ] {
            assert_eq!(mask_uri(uri), shown, "{uri}");
        }
    }
}
