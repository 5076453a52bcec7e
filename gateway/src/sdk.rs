//! `GET /sdk/v1/sluice.js`: the Web SDK (SPEC §10), its source in `sdk/web/`, served as built
//! into the binary. Pages load it from the gateway they send to, usually from another origin,
//! with a Subresource Integrity hash (README): so it is answered with CORS, which SRI needs
//! across origins, and with an ETag for revalidation once the hour's caching is over.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};

use crate::routes::HttpResponse;

/// The script, as in the repository.
pub(crate) const SCRIPT: &str = include_str!("../../sdk/web/sluice.js");

/// `"<sha-256 hex>"`: changes exactly when the script does.
fn etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| {
        let digest = Sha256::digest(SCRIPT.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    })
}

/// The script, or 304 when the client holds this version.
pub(crate) fn script(request: &HeaderMap) -> HttpResponse {
    let tag = etag();
    let held = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| candidate.trim() == tag || candidate.trim() == "*");
    let mut response = if held {
        let mut not_modified = Response::new(Full::new(Bytes::new()));
        *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
        not_modified
    } else {
        Response::new(Full::new(Bytes::from_static(SCRIPT.as_bytes())))
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    // An hour, then revalidated by ETag: a gateway upgrade reaches pages within the hour.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    if let Ok(value) = HeaderValue::from_str(tag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use sha2::Sha384;

    use super::*;

    #[test]
    fn the_readme_snippet_carries_the_served_scripts_integrity() {
        let integrity = format!(
            "sha384-{}",
            STANDARD.encode(Sha384::digest(SCRIPT.as_bytes()))
        );
        let readme = include_str!("../../README.md");
        assert!(
            readme.contains(&integrity),
            "README.md's <script> snippet must carry integrity=\"{integrity}\""
        );
    }

    #[test]
    fn a_client_holding_this_version_gets_a_304() {
        let mut request = HeaderMap::new();
        let fresh = script(&request);
        assert_eq!(fresh.status(), StatusCode::OK);
        let tag = fresh.headers()[header::ETAG].clone();
        request.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(script(&request).status(), StatusCode::NOT_MODIFIED);
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"old\""));
        assert_eq!(script(&request).status(), StatusCode::OK);
    }
}
