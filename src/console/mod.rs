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
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::LazyLock;

/// Same origin only, no inline script or style, no plugins, no framing.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// One page: where it is served, its title, its script, and its `<main>`
/// (the layout around it is shared).
struct Page {
    path: &'static str,
    title: &'static str,
    script: &'static str,
    main: &'static str,
}

const PAGES: &[Page] = &[
    Page {
        path: "/",
        title: "Dispute",
        script: "dispute.js",
        main: include_str!("assets/dispute.html"),
    },
    Page {
        path: "/statements",
        title: "Statements",
        script: "statements.js",
        main: include_str!("assets/statements.html"),
    },
    Page {
        path: "/generations",
        title: "Generations",
        script: "generations.js",
        main: include_str!("assets/generations.html"),
    },
    Page {
        path: "/audit",
        title: "Audit",
        script: "audit.js",
        main: include_str!("assets/audit.html"),
    },
];

/// The header, key field and navigation every page shares.
const LAYOUT: &str = include_str!("assets/layout.html");

/// One embedded script or stylesheet: its name under `/console/`, media
/// type and text.
struct Asset {
    name: &'static str,
    media_type: &'static str,
    body: &'static str,
}

/// An [`Asset`] from `assets/<name>`.
macro_rules! asset {
    ($name:literal, $media_type:expr) => {
        Asset {
            name: $name,
            media_type: $media_type,
            body: include_str!(concat!("assets/", $name)),
        }
    };
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

const ASSETS: &[Asset] = &[
    asset!("common.js", JAVASCRIPT),
    asset!("verify.js", JAVASCRIPT),
    asset!("spectrogram.js", JAVASCRIPT),
    asset!("dispute.js", JAVASCRIPT),
    asset!("statements.js", JAVASCRIPT),
    asset!("generations.js", JAVASCRIPT),
    asset!("audit.js", JAVASCRIPT),
    asset!("style.css", "text/css; charset=utf-8"),
];

/// Every page in the layout, rendered once.
static RENDERED: LazyLock<Vec<String>> = LazyLock::new(|| PAGES.iter().map(render).collect());

fn render(page: &Page) -> String {
    let nav: String = PAGES
        .iter()
        .map(|other| {
            let current = if other.path == page.path {
                r#" aria-current="page""#
            } else {
                ""
            };
            format!(
                "  <a href=\"{}\"{current}>{}</a>\n",
                other.path, other.title
            )
        })
        .collect();
    LAYOUT
        .replace("{title}", page.title)
        .replace("{script}", page.script)
        .replace("{nav}\n", &nav)
        .replace("{main}", page.main)
}

/// The console's routes: its pages and `/console/{name}` for their assets.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut router = Router::new().route("/console/{name}", get(asset));
    for page in PAGES {
        router = router.route(page.path, get(page_at));
    }
    router
}

fn with_headers(media_type: &'static str, body: String) -> Response {
    let mut response =
        ([(CONTENT_TYPE, HeaderValue::from_static(media_type))], body).into_response();
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

async fn page_at(uri: Uri) -> Response {
    let index = PAGES
        .iter()
        .position(|page| page.path == uri.path())
        .expect("routed to a page");
    with_headers("text/html; charset=utf-8", RENDERED[index].clone())
}

/// `GET /console/{name}`: a script or stylesheet of the console.
async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => with_headers(asset.media_type, asset.body.to_string()),
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
        let texts = RENDERED
            .iter()
            .map(String::as_str)
            .zip(PAGES.iter().map(|p| p.title))
            .chain(ASSETS.iter().map(|a| (a.body, a.name)));
        for (body, name) in texts {
            for other in ["http://", "https://", "//"] {
                let hits: Vec<&str> = body
                    .lines()
                    .filter(|l| {
                        l.contains(&format!("src=\"{other}"))
                            || l.contains(&format!("href=\"{other}"))
                            || l.contains(&format!("url({other}"))
                    })
                    .collect();
                assert!(hits.is_empty(), "{name}: {hits:?}");
            }
        }
        for (page, html) in PAGES.iter().zip(RENDERED.iter()) {
            assert_inline_free(page.title, html);
            assert!(html.contains(&format!("src=\"/console/{}\"", page.script)));
            assert!(
                ASSETS.iter().any(|a| a.name == page.script),
                "{}",
                page.script
            );
        }
    }

    fn assert_inline_free(title: &str, html: &str) {
        // Every <script> names a file; none carries code of its own.
        for tag in html.split("<script").skip(1) {
            let (attributes, rest) = tag.split_once('>').unwrap();
            assert!(
                attributes.contains("src=\"/console/"),
                "{title}: {attributes}"
            );
            assert!(
                rest.starts_with("</script>"),
                "{title}: inline script {rest:.40}"
            );
        }
        assert!(!html.contains(" style=\""), "{title}: inline style");
        // No inline event handler (` onclick="`, ` onload="`, ...).
        for (at, _) in html.match_indices(" on") {
            let name: String = html[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase())
                .collect();
            let after = &html[at + 3 + name.len()..];
            assert!(!after.starts_with('='), "{title}: inline handler on{name}");
        }
    }
}
