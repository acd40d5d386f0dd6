//! Numbers lost to a failed commit, recorded so that a reliable session
//! is told of them (`GAP`) even if it was offline when they were lost.
//!
//! Every copy stored for an account is numbered by the actor before the
//! store has it. When the commit holding it fails (a full disk, an I/O
//! error) its number will never come: the session online it was held for
//! is told at once (`lost_held`), but a copy for an account that is
//! offline had only the store to remember it by, and the store had just
//! failed. The actor keeps such numbers and hands them to the store as a
//! write of their own (`MailStore::lose_numbers`), which the account's
//! next reliable login takes with its other gaps. The write waits until
//! the store can write again (a later commit succeeded), and is tried at
//! each store answer, each sweep of the actor (every second or sooner)
//! and each reliable login until it is recorded. Numbers not recorded
//! when the hub stops are not told: a restarted hub numbers on from the
//! highest stored, so one above every stored number is given again, and
//! one below a later stored number is skipped without a `GAP`.

use chinwag_protocol::Code;
use chinwag_store::LostNumbers;

use super::Actor;
use super::accounts::send_answer;
use crate::command::Answer;

/// Per account, the numbers `numbered` (as `(account, number)`, in any
/// order) folded into ranges of consecutive numbers.
fn ranges(mut numbered: Vec<(String, u64)>, reason: Code) -> Vec<(String, LostNumbers)> {
    numbered.sort_unstable_by(|a, b| {
        (a.0.to_ascii_lowercase(), a.1).cmp(&(b.0.to_ascii_lowercase(), b.1))
    });
    let mut lost: Vec<(String, LostNumbers)> = Vec::new();
    for (account, number) in numbered {
        if let Some((last_account, range)) = lost.last_mut()
            && last_account.eq_ignore_ascii_case(&account)
            && range.last + 1 >= number
        {
            range.last = range.last.max(number);
            continue;
        }
        let range = LostNumbers {
            first: number,
            last: number,
            reason: reason.0,
        };
        lost.push((account, range));
    }
    lost
}

impl Actor {
    /// A store answer for a batch of copies: `numbered`, the copies for
    /// offline accounts that its failed commit did not store (none if it
    /// succeeded), are to be recorded, to be told at the accounts' next
    /// reliable logins; and whatever is still unrecorded is tried again.
    pub(super) fn lost_offline(&mut self, numbered: Vec<(String, u64)>) {
        if !numbered.is_empty() {
            self.unrecorded.extend(ranges(numbered, Code::STORE_FAILED));
        }
        self.record_lost();
    }

    /// Hands the store the lost numbers not recorded yet; those it fails
    /// to record come back (`Answer::Unrecorded`) for the next sweep.
    pub(super) fn record_lost(&mut self) {
        if self.unrecorded.is_empty() {
            return;
        }
        let Some(storage) = &self.accounts.storage else {
            self.unrecorded.clear();
            return;
        };
        // Not while the store's last commit failed: a row this small may
        // fit where the copies did not, and that commit would mark the
        // store writable (and the hub ready) while the disk is still full.
        // A commit of copies that succeeds says the disk has room again.
        if !storage.mail.stats().writable {
            return;
        }
        let lost = std::mem::take(&mut self.unrecorded);
        let handed = storage.mail.lose_numbers(lost.clone());
        let answers = self.accounts.answers.clone();
        self.tasks.spawn(async move {
            let recorded = match handed {
                Ok(pending) => pending.await,
                Err(error) => Err(error),
            };
            if let Err(error) = recorded {
                tracing::warn!(%error, ranges = lost.len(), "could not record numbers lost to a failed commit; trying again");
                send_answer(&answers, Answer::Unrecorded(lost)).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_fold_into_ranges_per_account() {
        let numbered = vec![
            ("bob".to_owned(), 7),
            ("carol".to_owned(), 2),
            ("Bob".to_owned(), 5),
            ("bob".to_owned(), 6),
            ("bob".to_owned(), 9),
        ];
        let lost: Vec<(String, u64, u64)> = ranges(numbered, Code::STORE_FAILED)
            .into_iter()
            .map(|(account, range)| (account.to_ascii_lowercase(), range.first, range.last))
            .collect();
        assert_eq!(
            lost,
            [
                ("bob".to_owned(), 5, 7),
                ("bob".to_owned(), 9, 9),
                ("carol".to_owned(), 2, 2)
            ]
        );
    }
}
