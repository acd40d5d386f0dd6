//! The web page, compiled into the program: each file with its content
//! type, served at `/` and beside it.

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// A file of the page.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every file of the page, by the path it is served at.
const ASSETS: [Asset; 5] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../assets/index.html"),
    },
    Asset {
        path: "/index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../assets/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/app.js"),
    },
    Asset {
        path: "/chinwag.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/chinwag.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/style.css"),
    },
];

/// Serves the file at `uri`'s path, or 404. The page has no icon: a
/// browser's request for one gets 204, so that no error is logged in its
/// console for each visit.
pub(crate) async fn serve(uri: Uri) -> Response {
    if uri.path() == "/favicon.ico" {
        return StatusCode::NO_CONTENT.into_response();
    }
    let Some(asset) = ASSETS.iter().find(|asset| asset.path == uri.path()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            // A new release's page is fetched again, not taken from a cache.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        asset.body,
    )
        .into_response()
}
