//! Which web pages may open a WebSocket to the gateway: the `Origin`
//! header of the upgrade request, checked against an allow-list.
//!
//! A browser sends the origin of the page that opens a WebSocket, and
//! lets any page open one to any host: without this check a page on
//! another site could talk to the hub with its visitor's address (and,
//! on an intranet, reach a hub its visitor can reach and it cannot).
//! Requests without an `Origin` come from programs, not browsers, and
//! are let through: they could claim any origin anyway.

use axum::http::{HeaderMap, header};

/// The origins allowed to open a WebSocket.
///
/// By default ([`Origins::same_origin`]) only the gateway's own pages are:
/// the origin's host and port must be those of the request's `Host`
/// header (either scheme, so that a TLS-terminating proxy in front works).
/// A list given with [`Origins::allow`] replaces that rule: only the
/// origins listed are allowed, whatever `Host` says (which also closes the
/// door to DNS rebinding, where a hostile name is pointed at the
/// gateway's address and `Host` follows it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    /// Normalised (`scheme://host[:port]`, lowercase, no default port);
    /// empty: the same origin as `Host`.
    allowed: Vec<String>,
}

/// An origin in the allow-list that is not `http(s)://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin like https://chat.example.org or http://localhost:8080")]
pub struct OriginError(pub String);

impl Origins {
    /// Only the gateway's own pages: the origin must name the host and
    /// port of the request's `Host` header.
    pub fn same_origin() -> Self {
        Self::default()
    }

    /// Only the origins in `list` (`scheme://host[:port]`, as a browser
    /// sends it: `https://chat.example.org`). An empty list means
    /// [`same_origin`](Self::same_origin).
    ///
    /// # Errors
    /// [`OriginError`] for an entry that is not such an origin.
    pub fn allow<I, S>(list: I) -> Result<Self, OriginError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allowed = list
            .into_iter()
            .map(|origin| {
                let origin = origin.as_ref();
                normalise(origin)
                    .map(|(scheme, authority)| format!("{scheme}://{authority}"))
                    .ok_or_else(|| OriginError(origin.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// Whether a request with `headers` may open a WebSocket.
    pub(crate) fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            // Not a browser.
            return true;
        };
        let Some((scheme, authority)) = origin.to_str().ok().and_then(normalise) else {
            // `null` (a sandboxed page, a file) and anything unparseable.
            return false;
        };
        if !self.allowed.is_empty() {
            let origin = format!("{scheme}://{authority}");
            return self.allowed.contains(&origin);
        }
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        strip_default_port(scheme, &host.to_ascii_lowercase()) == authority
    }
}

/// `scheme://host[:port]` as its scheme and its authority, lowercase and
/// without the scheme's default port; `None` for anything else (a path, a
/// user, another scheme).
fn normalise(origin: &str) -> Option<(&'static str, String)> {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = if let Some(rest) = origin.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = origin.strip_prefix("http://") {
        ("http", rest)
    } else {
        return None;
    };
    let well_formed = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    well_formed.then(|| (scheme, strip_default_port(scheme, authority)))
}

fn strip_default_port(scheme: &str, authority: &str) -> String {
    let default = if scheme == "https" { ":443" } else { ":80" };
    authority
        .strip_suffix(default)
        .unwrap_or(authority)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
        }
        headers
    }

    #[test]
    fn by_default_only_the_host_of_the_request_is_allowed() {
        let same = Origins::same_origin();
        assert!(same.allows(&headers(
            Some("http://chat.example:8080"),
            "chat.example:8080"
        )));
        assert!(same.allows(&headers(Some("https://Chat.Example"), "chat.example:443")));
        assert!(same.allows(&headers(Some("https://chat.example"), "chat.example")));
        assert!(!same.allows(&headers(Some("http://evil.example"), "chat.example")));
        assert!(!same.allows(&headers(Some("http://chat.example:81"), "chat.example")));
        assert!(!same.allows(&headers(Some("null"), "chat.example")));
        // Programs send no Origin.
        assert!(same.allows(&headers(None, "chat.example")));
    }

    #[test]
    fn a_list_replaces_the_host_rule() {
        let listed = Origins::allow(["https://chat.example/", "http://localhost:8080"]).unwrap();
        assert!(listed.allows(&headers(Some("https://chat.example"), "10.0.0.1:2450")));
        assert!(listed.allows(&headers(Some("http://LOCALHOST:8080"), "localhost:2450")));
        // The Host rule no longer lets a rebinding name in.
        assert!(!listed.allows(&headers(Some("http://evil.example"), "evil.example")));
        assert!(Origins::allow(["chat.example"]).is_err());
        assert!(Origins::allow(["https://chat.example/path"]).is_err());
    }
}
