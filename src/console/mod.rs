//! The web console: pages for auditors, label teams and dispute staff,
//! served by `ledgerline serve` at `/` from assets built into the binary.
//!
//! The pages are plain HTML, CSS and JavaScript modules, with no build
//! step and no dependency: nothing is fetched from another origin, and they
//! work offline. They call the `/v1` API with the user's key, and verify
//! proofs and signatures in the browser (`assets/verify.js`, WebCrypto), so
//! a reader need not trust this server's word for them.
//!
//! Every page is sent with a Content-Security-Policy that allows scripts,
//! styles and requests from this origin only, and no inline script.

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Same origin only, no inline script or style, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// One embedded file: its name under `/console/`, media type and bytes.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static str,
}

const INDEX: Asset = Asset {
    name: "index.html",
    media_type: "text/html; charset=utf-8",
    body: include_str!("assets/index.html"),
};

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/app.js"),
    },
    Asset {
        name: "verify.js",
        media_type: "text/javascript; charset=utf-8",
        body: include_str!("assets/verify.js"),
    },
    Asset {
        name: "style.css",
        media_type: "text/css; charset=utf-8",
        body: include_str!("assets/style.css"),
    },
];

fn serve(asset: &Asset) -> Response {
    let mut response = (
        [(CONTENT_TYPE, HeaderValue::from_static(asset.media_type))],
        asset.body,
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The assets change with the binary; revalidating is cheap.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /`: the console.
pub async fn index() -> Response {
    serve(&INDEX)
}

/// `GET /console/{name}`: a script or stylesheet of the console.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => serve(asset),
        None => (
            StatusCode::NOT_FOUND,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no console asset {name:?}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_load_nothing_from_another_origin_and_no_inline_script() {
        for asset in std::iter::once(&INDEX).chain(ASSETS) {
            for other in ["http://", "https://", "//"] {
                let hits: Vec<&str> = asset
                    .body
                    .lines()
                    .filter(|l| {
                        l.contains(&format!("src=\"{other}"))
                            || l.contains(&format!("href=\"{other}"))
                            || l.contains(&format!("url({other}"))
                    })
                    .collect();
                assert!(hits.is_empty(), "{}: {hits:?}", asset.name);
            }
        }
        // Every <script> names a file; none carries code of its own.
        for tag in INDEX.body.split("<script").skip(1) {
            let (attributes, rest) = tag.split_once('>').unwrap();
            assert!(attributes.contains("src=\"/console/"), "{attributes}");
            assert!(rest.starts_with("</script>"), "inline script: {rest:.40}");
        }
        assert!(!INDEX.body.contains(" style=\""), "inline style");
        // No inline event handler (` onclick="`, ` onload="`, ...).
        for (at, _) in INDEX.body.match_indices(" on") {
            let name: String = INDEX.body[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase())
                .collect();
            let after = &INDEX.body[at + 3 + name.len()..];
            assert!(!after.starts_with('='), "inline handler on{name}");
        }
    }
}
