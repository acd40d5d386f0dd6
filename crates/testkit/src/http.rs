//! `GET` over plain HTTP, as Prometheus or an operator's `curl` would: for
//! the tests of the admin endpoint (`crates/admin`, `crates/chinwagd`).

use std::net::SocketAddr;

use crate::PATIENCE;

/// `GET http://{addr}{path}`: the status and the body as text, whatever
/// the status. Runs the blocking client on a thread of its own.
///
/// # Panics
/// If nothing answers within [`PATIENCE`], or the body is not text.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let url = format!("http://{addr}{path}");
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(PATIENCE))
            .build()
            .into();
        let mut response = agent.get(&url).call().expect("the endpoint answers");
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().expect("a text body");
        (status, body)
    })
    .await
    .expect("the request's thread")
}
