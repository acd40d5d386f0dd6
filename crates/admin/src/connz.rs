//! `/connz`: every connection as JSON, paged and sorted in the manner of
//! NATS's `/connz` (`?sort=msgs_to&offset=0&limit=100`), so that an
//! operator's habits and tools carry over.

use std::cmp::Reverse;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chinwag_hub::{ConnectionInfo, Front};
use serde::{Deserialize, Serialize};

use crate::{Admin, text};

/// Connections a page holds unless `limit` says otherwise (NATS's default).
pub const DEFAULT_LIMIT: usize = 1024;

/// The most a page holds, whatever `limit` asks.
pub const MAX_LIMIT: usize = 10_000;

/// What `/connz` is asked: `?sort=…&offset=…&limit=…`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnzQuery {
    /// The order (by id, oldest first, by default).
    pub sort: SortBy,
    /// Connections to skip, in that order.
    pub offset: usize,
    /// Connections to show at most ([`DEFAULT_LIMIT`]; at most
    /// [`MAX_LIMIT`]).
    pub limit: Option<usize>,
}

/// The orders `/connz` sorts by: ids and start times ascending, counts
/// descending (the busiest first), as NATS does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    /// By connection id: order of arrival.
    #[default]
    Cid,
    /// By when it was accepted, oldest first.
    Start,
    /// By messages sent to it, most first.
    MsgsTo,
    /// By messages it sent, most first.
    MsgsFrom,
    /// By bytes written to it, most first.
    BytesTo,
    /// By bytes read from it, most first.
    BytesFrom,
    /// By bytes queued for it, most first.
    Pending,
    /// By nickname (unregistered ones last).
    Nick,
}

/// The `/connz` document.
#[derive(Debug, Serialize)]
pub struct Connz {
    /// When this was taken (RFC 3339).
    pub now: String,
    /// Connections on this page.
    pub num_connections: usize,
    /// Connections served now.
    pub total: usize,
    /// The page's offset, as asked.
    pub offset: usize,
    /// The page's limit, as applied.
    pub limit: usize,
    /// The page.
    pub connections: Vec<ConnzEntry>,
}

/// One connection on the page.
#[derive(Debug, Serialize)]
pub struct ConnzEntry {
    /// The hub's id for it, in order of arrival.
    pub cid: u64,
    /// Its nickname, once registered (`null` before).
    pub nick: Option<String>,
    /// Where it came from.
    pub peer: String,
    /// `binary` or `text`.
    pub protocol: &'static str,
    /// When it was accepted (RFC 3339).
    pub start: String,
    /// Messages it sent.
    pub in_msgs: u64,
    /// Messages queued for it.
    pub out_msgs: u64,
    /// Bytes read from it.
    pub in_bytes: u64,
    /// Bytes written to it.
    pub out_bytes: u64,
    /// Bytes queued for it, not yet written.
    pub pending_bytes: u64,
}

impl SortBy {
    fn sort(self, connections: &mut [ConnectionInfo]) {
        match self {
            Self::Cid => connections.sort_unstable_by_key(|c| c.id),
            Self::Start => connections.sort_by_key(|c| (c.since, c.id)),
            Self::MsgsTo => connections.sort_by_key(|c| (Reverse(c.msgs_out), c.id)),
            Self::MsgsFrom => connections.sort_by_key(|c| (Reverse(c.msgs_in), c.id)),
            Self::BytesTo => connections.sort_by_key(|c| (Reverse(c.bytes_out), c.id)),
            Self::BytesFrom => connections.sort_by_key(|c| (Reverse(c.bytes_in), c.id)),
            Self::Pending => connections.sort_by_key(|c| (Reverse(c.queued_bytes), c.id)),
            Self::Nick => connections.sort_by(|a, b| {
                let key = |c: &ConnectionInfo| {
                    (
                        c.nick.as_deref().map(str::to_ascii_lowercase).is_none(),
                        c.nick.as_deref().map(str::to_ascii_lowercase),
                        c.id,
                    )
                };
                key(a).cmp(&key(b))
            }),
        }
    }
}

fn rfc3339(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at).map_or_else(|_| String::new(), |at| at.to_string())
}

fn entry(connection: ConnectionInfo) -> ConnzEntry {
    ConnzEntry {
        cid: connection.id,
        protocol: match connection.front {
            Front::Text => "text",
            _ => "binary",
        },
        start: rfc3339(connection.since),
        nick: connection.nick,
        peer: connection.peer,
        in_msgs: connection.msgs_in,
        out_msgs: connection.msgs_out,
        in_bytes: connection.bytes_in,
        out_bytes: connection.bytes_out,
        pending_bytes: connection.queued_bytes,
    }
}

pub(crate) async fn connz(
    State(admin): State<Admin>,
    query: Result<Query<ConnzQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "{}; /connz takes sort (cid, start, msgs_to, msgs_from, bytes_to, bytes_from, pending, nick), offset and limit\n",
                    rejection.body_text()
                ),
            );
        }
    };
    let Ok(mut connections) = admin.hub.connections().await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "the hub has shut down\n");
    };
    let total = connections.len();
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    query.sort.sort(&mut connections);
    let page: Vec<ConnzEntry> = connections
        .into_iter()
        .skip(query.offset)
        .take(limit)
        .map(entry)
        .collect();
    Json(Connz {
        now: rfc3339(SystemTime::now()),
        num_connections: page.len(),
        total,
        offset: query.offset,
        limit,
        connections: page,
    })
    .into_response()
}
