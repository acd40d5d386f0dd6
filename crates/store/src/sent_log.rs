//! What reliable sessions sent, one row per batch (schema version 13).
//!
//! Every message a reliable session sends is recorded (`SentRecord`: its
//! client id, hub id, time and outcome) in the commit that stores its
//! copies, and kept a day, so that the same message sent again is answered
//! rather than routed twice. A row of `sent` each cost the writer a
//! statement per message, a fifth of its time under `bench direct
//! --reliable`; a batch's records are now one row of `sent_batches`, a
//! blob, and the writer's index finds each sender's newest in it by row
//! and place (`index.rs`). A batch's row goes with the hourly sweep once
//! its records are a day old; deleting an account leaves its records in
//! the batches (a newer account of the same name never reads them: each is
//! older than it, `MailIndex::load`).
//!
//! Each record: `message_id`, `client_id`, `ts_ms` (`u64` little-endian
//! each), `delivered` (`u32`), then the sender's folded nickname and the
//! statuses column (as `sent` has it), each a `u32` length and its UTF-8
//! bytes.

use crate::blob::{self, Reader};
use crate::routed::SentView;

/// Appends `record`, sent by `sender` (folded), answering where it starts.
pub(crate) fn push(blob: &mut Vec<u8>, sender: &str, record: &SentView<'_>) -> u32 {
    let at = u32::try_from(blob.len()).unwrap_or(u32::MAX);
    for number in [record.message_id, record.client_id, record.ts_ms] {
        blob.extend_from_slice(&number.to_le_bytes());
    }
    blob.extend_from_slice(&record.delivered.to_le_bytes());
    blob::put_str(blob, sender);
    blob::put_str(blob, record.statuses);
    at
}

/// The record that starts at `at` (its `sender` folded, as written), and
/// where the next one starts.
pub(crate) fn read(blob: &[u8], at: usize) -> Option<(SentView<'_>, usize)> {
    let mut reader = Reader::at(blob, at);
    let message_id = reader.u64()?;
    let client_id = reader.u64()?;
    let ts_ms = reader.u64()?;
    let delivered = reader.u32()?;
    let sender = reader.str()?;
    let statuses = reader.str()?;
    let record = SentView {
        sender,
        client_id,
        message_id,
        ts_ms,
        delivered,
        statuses,
    };
    Some((record, reader.position()))
}

/// Every record of a batch with where it starts, in order; a blob that
/// does not read to its end stops where it stops reading.
pub(crate) fn records(blob: &[u8]) -> impl Iterator<Item = (u32, SentView<'_>)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (record, next) = read(blob, at)?;
        let start = u32::try_from(at).ok()?;
        at = next;
        Some((start, record))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(message_id: u64, statuses: &str) -> SentView<'_> {
        SentView {
            sender: "Amy",
            client_id: message_id + 1000,
            message_id,
            ts_ms: 1_700_000_000_000 + message_id,
            delivered: 2,
            statuses,
        }
    }

    #[test]
    fn records_read_back_in_order_and_by_place() {
        let mut blob = Vec::new();
        let first = push(&mut blob, "amy", &view(7, "bob 0 carol 32"));
        let second = push(&mut blob, "amy", &view(8, ""));
        assert_eq!(first, 0);
        let read_back: Vec<_> = records(&blob).collect();
        assert_eq!(read_back.len(), 2);
        assert_eq!(read_back[1].0, second);
        let (record, _) = read(&blob, second as usize).expect("a record at its place");
        assert_eq!(
            (record.sender, record.message_id, record.client_id),
            ("amy", 8, 1008)
        );
        assert_eq!(read_back[0].1.statuses, "bob 0 carol 32");
        assert_eq!(read_back[0].1.delivered, 2);
        // Cut short, the last does not read.
        assert_eq!(records(&blob[..blob.len() - 1]).count(), 1);
    }
}
