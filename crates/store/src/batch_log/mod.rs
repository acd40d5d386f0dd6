//! The batch log: a log of the store's own, for the reliable path's
//! batches, in segment files that are written over once nothing in them
//! is needed.
//!
//! The store's writer writes here, instead of as rows of SQLite, the
//! blobs of each group commit that the reliable path makes and soon
//! forgets: the journal's held copies, the receipt log's batch and the
//! release log's row (`logged.rs` says what, and how the two stay one).
//! A prototype of that ran `bench direct --reliable` 1.23× faster, but
//! only with files that are reused: one that grew ran 1.06× faster
//! (`docs/performance.md`, the session of the store's log).
//!
//! # Groups and frames
//!
//! The writer [`stage`](BatchLog::stage)s a group's entries, then
//! [`commit`](BatchLog::commit)s them: one frame (`frame.rs`), one
//! `pwrite` and one `fdatasync`. A commit that returned is on disk; one
//! that failed leaves nothing that recovery takes: its bytes, if any
//! reached the file, are made unreadable first (unless the disk refuses
//! that too, which is logged). Each frame has a number, its `lsn`, one
//! more than the last.
//!
//! # Segments, and which are needed
//!
//! Frames go into the current segment, a file of about
//! `segment_bytes`; a frame that does not fit starts the next segment (a
//! frame larger than a segment has one to itself). Every segment has a
//! number, never given twice. An entry that **holds** its segment (staged
//! with `holds`) keeps it needed until the writer
//! [`release`](BatchLog::release)s it, which the writer does only once
//! whatever replaced the entry (its settling into SQLite, say) has
//! committed.
//!
//! The oldest segments that hold nothing are retired, and each frame
//! records the oldest segment still needed when it was written, its
//! `tail`. A retired segment's file is written over (reused for a new
//! segment) only once a frame recording a tail past it is on disk: until
//! then, a crash would read it. Files past [`KEEP_FREE`] that are not
//! needed are deleted.
//!
//! # Recovery
//!
//! [`open`](BatchLog::open) reads every file in the directory. A file's
//! segment is the number in its first frame; its frames are those that
//! follow with checksums that hold, the same segment number and
//! consecutive `lsn`s. The frame with the highest `lsn` is the last one
//! committed; its `tail` says which segments are needed: every one from
//! the tail to its own, each there and their frames consecutive, or the
//! log is damaged and does not open ([`io::ErrorKind::InvalidData`]). The
//! frames of those segments are handed back, oldest first, and writing
//! goes on after the last one (over a torn frame, if one followed it).

mod frame;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use tracing::warn;

/// Files kept for reuse beyond those needed: enough that a steady load
/// never creates one. A file that grows costs the kernel fresh pages of
/// its cache and `fdatasync` the file's new size and blocks; one written
/// over costs neither.
pub(crate) const KEEP_FREE: usize = 2;

/// What a segment file's name ends with.
const SUFFIX: &str = ".seg";

/// A group on disk, as [`open`](BatchLog::open) hands it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) lsn: u64,
    /// The segment it is in (what [`hold`](BatchLog::hold) and
    /// [`release`](BatchLog::release) name).
    pub(crate) segment: u64,
    /// Its entries: kind, key, bytes.
    pub(crate) entries: Vec<(u8, u64, Vec<u8>)>,
}

/// A group commit that returned: where its frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Committed {
    pub(crate) lsn: u64,
    /// The segment its entries hold, if they hold one.
    pub(crate) segment: u64,
    offset: u64,
    holds: usize,
    /// The tail the frame before it recorded.
    tail_before: u64,
}

/// A segment in use (needed, or the one being written).
#[derive(Debug)]
struct Segment {
    number: u64,
    file: File,
    path: PathBuf,
    /// Entries holding it.
    holds: usize,
}

/// A file whose segment is needed no more.
#[derive(Debug)]
struct Spare {
    /// The segment it held last (0: none that can be read).
    number: u64,
    file: File,
    path: PathBuf,
}

/// The log (see the module's documentation).
#[derive(Debug)]
pub(crate) struct BatchLog {
    dir: PathBuf,
    segment_bytes: u64,
    /// Needed segments, oldest first; the last is the one being written.
    live: VecDeque<Segment>,
    /// Retired, and not yet past a tail on disk.
    retiring: Vec<Spare>,
    /// Past a tail on disk: free to write over.
    free: Vec<Spare>,
    /// The next new file's name.
    next_file: u64,
    next_segment: u64,
    next_lsn: u64,
    /// Where the next frame goes in the segment being written.
    offset: u64,
    /// The tail the last frame on disk recorded.
    tail_on_disk: u64,
    /// The group being staged, with room for its header.
    staged: Vec<u8>,
    staged_holds: usize,
}

impl BatchLog {
    /// Opens the log in `dir` (made if missing), recovering what a crash
    /// left: the groups of every needed segment, oldest first. Nothing
    /// holds them: the caller [`hold`](Self::hold)s what it keeps.
    pub(crate) fn open(dir: &Path, segment_bytes: u64) -> io::Result<(Self, Vec<Group>)> {
        fs::create_dir_all(dir)?;
        let mut scanned = Vec::new();
        let mut next_file = 1;
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let Some(name) = file_number(&path) else {
                continue;
            };
            next_file = next_file.max(name + 1);
            scanned.push(Scanned::first(path)?);
        }
        let mut log = Self {
            dir: dir.to_owned(),
            segment_bytes,
            live: VecDeque::new(),
            retiring: Vec::new(),
            free: Vec::new(),
            next_file,
            next_segment: 1,
            next_lsn: 1,
            offset: 0,
            tail_on_disk: 0,
            staged: Vec::new(),
            staged_holds: 0,
        };
        frame::start(&mut log.staged);
        // Numbers go on past every one seen, even in files not needed.
        log.next_segment = 1 + scanned.iter().map(|s| s.number).max().unwrap_or(0);
        // The last frame is in the newest segment; only it and the
        // segments its tail names are read through, not the spare files.
        let newest = scanned
            .iter_mut()
            .filter(|s| s.number > 0)
            .max_by_key(|s| s.number);
        if let Some(newest) = newest {
            newest.scan()?;
        }
        let last = scanned
            .iter()
            .filter_map(|s| s.frames.last().map(|f| (f.lsn, f.segment, f.tail)))
            .max();
        let Some((last_lsn, last_segment, tail)) = last else {
            log.tail_on_disk = log.next_segment;
            log.spare_all(scanned);
            return Ok((log, Vec::new()));
        };
        log.next_lsn = last_lsn + 1;
        log.tail_on_disk = tail;
        for segment in &mut scanned {
            if segment.number >= tail && segment.number < last_segment {
                segment.scan()?;
            }
        }
        let (mut needed, spare): (Vec<_>, Vec<_>) = scanned
            .into_iter()
            .partition(|s| s.number >= tail && s.number <= last_segment && !s.frames.is_empty());
        needed.sort_by_key(|s| s.number);
        check_needed(&needed, tail, last_segment)?;
        log.spare_all(spare);
        let mut groups = Vec::new();
        for segment in needed {
            groups.extend(segment.groups());
            log.offset = segment.end;
            log.live.push_back(Segment {
                number: segment.number,
                file: segment.file,
                path: segment.path,
                holds: 0,
            });
        }
        Ok((log, groups))
    }

    /// Stages an entry of the next group. One that `holds` keeps the
    /// segment the group goes to needed until it is released.
    pub(crate) fn stage(&mut self, kind: u8, key: u64, bytes: &[u8], holds: bool) {
        frame::push_entry(&mut self.staged, kind, key, bytes);
        self.staged_holds += usize::from(holds);
    }

    /// Whether entries are staged for the next group.
    pub(crate) fn has_staged(&self) -> bool {
        self.staged.len() > frame::HEADER
    }

    /// Whether the next commit writes a frame even with nothing staged:
    /// segments are to be retired, and the tail on disk must move past
    /// them.
    pub(crate) fn has_retired(&self) -> bool {
        let kept = (self.live.iter().position(|s| s.holds > 0))
            .unwrap_or(self.live.len().saturating_sub(1));
        let tail = self.live.get(kept).map_or(self.next_segment, |s| s.number);
        tail != self.tail_on_disk
    }

    /// Forgets the staged entries (their group failed before its commit).
    pub(crate) fn discard(&mut self) {
        frame::start(&mut self.staged);
        self.staged_holds = 0;
    }

    /// The last group's number (0: none yet).
    pub(crate) fn last_lsn(&self) -> u64 {
        self.next_lsn - 1
    }

    /// Holds `segment` once more (for a group [`open`](Self::open) handed
    /// back that the caller keeps).
    #[cfg(test)]
    pub(crate) fn hold(&mut self, segment: u64) {
        if let Some(segment) = self.live.iter_mut().find(|s| s.number == segment) {
            segment.holds += 1;
        }
    }

    /// Releases one hold on `segment`: whatever needed it is elsewhere on
    /// disk now, or needed no more.
    pub(crate) fn release(&mut self, segment: u64) {
        if let Some(segment) = self.live.iter_mut().find(|s| s.number == segment) {
            segment.holds = segment.holds.saturating_sub(1);
        }
    }

    /// Writes the staged group (if there is one, or segments were retired
    /// since the last frame) and waits for it to be on disk. A failure
    /// leaves nothing of the group that a recovery reads.
    pub(crate) fn commit(&mut self) -> io::Result<Option<Committed>> {
        self.free_retired();
        self.retire();
        let holds = std::mem::take(&mut self.staged_holds);
        let tail = self.tail();
        if self.staged.len() == frame::HEADER && tail == self.tail_on_disk {
            return Ok(None);
        }
        let written = self.write(tail);
        frame::start(&mut self.staged);
        let (segment, offset, tail) = written?;
        if let Some(current) = self.live.back_mut() {
            current.holds += holds;
        }
        let committed = Committed {
            lsn: self.next_lsn,
            segment,
            offset,
            holds,
            tail_before: self.tail_on_disk,
        };
        self.next_lsn += 1;
        self.tail_on_disk = tail;
        Ok(Some(committed))
    }

    /// Takes back the last commit (its group's other writes failed): its
    /// frame is made unreadable on disk, and the next goes where it was.
    /// An error means it may still be read by a recovery.
    pub(crate) fn revoke(&mut self, committed: Committed) -> io::Result<()> {
        let Some(current) = self.live.back_mut() else {
            return Ok(());
        };
        if current.number != committed.segment || committed.lsn + 1 != self.next_lsn {
            return Err(io::Error::other("only the last commit can be revoked"));
        }
        current.holds = current.holds.saturating_sub(committed.holds);
        self.next_lsn = committed.lsn;
        self.offset = committed.offset;
        self.tail_on_disk = committed.tail_before;
        unmake(&current.file, committed.offset)
    }

    /// The segments on disk, needed or kept for reuse, and their bytes.
    #[cfg(test)]
    pub(crate) fn files(&self) -> usize {
        self.live.len() + self.retiring.len() + self.free.len()
    }

    /// The oldest needed segment (or the next to be made, if none is).
    fn tail(&self) -> u64 {
        self.live.front().map_or(self.next_segment, |s| s.number)
    }

    /// Writes the staged group with `tail` (or the new segment's number,
    /// if the log had none), in the current segment or the next: its
    /// segment, offset and tail.
    fn write(&mut self, tail: u64) -> io::Result<(u64, u64, u64)> {
        let len = self.staged.len() as u64;
        let fits = self
            .live
            .back()
            .is_some_and(|_| self.offset == 0 || self.offset + len <= self.segment_bytes);
        if !fits {
            self.next()?;
        }
        let tail = tail.min(self.tail());
        let Some(current) = self.live.back() else {
            return Err(io::Error::other("no segment to write to"));
        };
        frame::seal(&mut self.staged, current.number, self.next_lsn, tail);
        let offset = self.offset;
        let done = current
            .file
            .write_all_at(&self.staged, offset)
            .and_then(|()| current.file.sync_data());
        if let Err(error) = done {
            // Whatever of the frame reached the file must not be read.
            if let Err(unmade) = unmake(&current.file, offset) {
                warn!(%unmade, "could not unmake a failed frame of the batch log");
            }
            return Err(error);
        }
        self.offset += len;
        Ok((current.number, offset, tail))
    }

    /// Starts the next segment, in a free file or a new one.
    fn next(&mut self) -> io::Result<()> {
        let number = self.next_segment;
        let (file, path) = if let Some(spare) = self.free.pop() {
            (spare.file, spare.path)
        } else {
            let path = self.dir.join(format!("{:08}{SUFFIX}", self.next_file));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)?;
            // The new name must be on disk before anything in it counts.
            File::open(&self.dir)?.sync_all()?;
            self.next_file += 1;
            (file, path)
        };
        self.next_segment += 1;
        self.offset = 0;
        self.live.push_back(Segment {
            number,
            file,
            path,
            holds: 0,
        });
        Ok(())
    }

    /// Retires the oldest segments that nothing holds (never the one being
    /// written).
    fn retire(&mut self) {
        while self.live.len() > 1 && self.live.front().is_some_and(|s| s.holds == 0) {
            if let Some(segment) = self.live.pop_front() {
                self.retiring.push(Spare {
                    number: segment.number,
                    file: segment.file,
                    path: segment.path,
                });
            }
        }
    }

    /// Frees the retired segments that a tail on disk is past, keeping
    /// [`KEEP_FREE`] files and deleting the rest.
    fn free_retired(&mut self) {
        let tail = self.tail_on_disk;
        let (past, still): (Vec<_>, Vec<_>) = std::mem::take(&mut self.retiring)
            .into_iter()
            .partition(|spare| spare.number < tail);
        self.retiring = still;
        self.spare(past);
    }

    fn spare_all(&mut self, scanned: Vec<Scanned>) {
        let spares = scanned.into_iter().map(|s| Spare {
            number: s.number,
            file: s.file,
            path: s.path,
        });
        self.spare(spares.collect());
    }

    fn spare(&mut self, spares: Vec<Spare>) {
        for spare in spares {
            if self.free.len() < KEEP_FREE {
                self.free.push(spare);
            } else if let Err(error) = fs::remove_file(&spare.path) {
                warn!(%error, path = %spare.path.display(), "could not delete a segment of the batch log");
            }
        }
    }
}

/// Makes the frame at `offset` of `file` unreadable on disk: its header
/// zeroed, and fsync'd.
fn unmake(file: &File, offset: u64) -> io::Result<()> {
    file.write_all_at(&[0; frame::HEADER], offset)?;
    file.sync_data()
}

/// A segment file as found at open.
#[derive(Debug)]
struct Scanned {
    path: PathBuf,
    file: File,
    bytes: Vec<u8>,
    /// The segment of its first frame (0: none reads).
    number: u64,
    frames: Vec<frame::Found>,
    /// Where its frames end.
    end: u64,
}

impl Scanned {
    /// The file at `path`, its segment's number read from its first frame
    /// (its frames not read yet: [`scan`](Self::scan)).
    fn first(path: PathBuf) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let size = file.metadata()?.len();
        let mut header = [0; frame::HEADER];
        let mut number = 0;
        if file.read_exact_at(&mut header, 0).is_ok() {
            // A length past the file's end is no frame (nor a reason to
            // allocate it).
            let len = frame::HEADER as u64 + frame::payload_len(&header);
            if len <= size {
                let mut first = vec![0; len as usize];
                file.read_exact_at(&mut first, 0)?;
                number = frame::read(&first).map_or(0, |found| found.segment);
            }
        }
        Ok(Self {
            path,
            file,
            bytes: Vec::new(),
            number,
            frames: Vec::new(),
            end: 0,
        })
    }

    /// Reads the file through, and its frames.
    fn scan(&mut self) -> io::Result<()> {
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut &self.file, &mut bytes)?;
        let mut frames = Vec::new();
        let mut at = 0;
        while let Some(found) = bytes.get(at..).and_then(frame::read) {
            let follows = frames.last().is_none_or(|last: &frame::Found| {
                found.segment == last.segment && found.lsn == last.lsn + 1
            });
            if !follows || found.segment == 0 {
                break;
            }
            frames.push(found);
            at += found.len;
        }
        self.number = frames.first().map_or(0, |f| f.segment);
        self.frames = frames;
        self.end = at as u64;
        self.bytes = bytes;
        Ok(())
    }

    fn groups(&self) -> impl Iterator<Item = Group> + '_ {
        let mut at = 0;
        self.frames.iter().map(move |found| {
            let payload = &self.bytes[at + frame::HEADER..at + found.len];
            at += found.len;
            Group {
                lsn: found.lsn,
                segment: found.segment,
                entries: frame::entries(payload)
                    .map_while(|entry| entry)
                    .map(|entry| (entry.kind, entry.key, entry.bytes.to_vec()))
                    .collect(),
            }
        })
    }
}

/// Checks that the needed segments are each there once, from `tail` to
/// `last`, with their frames' numbers consecutive.
fn check_needed(needed: &[Scanned], tail: u64, last: u64) -> io::Result<()> {
    let damaged = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let numbers: Vec<u64> = needed.iter().map(|s| s.number).collect();
    if numbers != (tail..=last).collect::<Vec<_>>() {
        return Err(damaged(format!(
            "the batch log needs segments {tail} to {last} and has {numbers:?}"
        )));
    }
    let lsns = needed.iter().flat_map(|s| s.frames.iter().map(|f| f.lsn));
    let mut previous = None;
    for lsn in lsns {
        if previous.is_some_and(|previous| lsn != previous + 1) {
            return Err(damaged(format!(
                "the batch log's frames skip from {} to {lsn}",
                previous.unwrap_or_default()
            )));
        }
        previous = Some(lsn);
    }
    Ok(())
}

/// A segment file's number, from its name (`None`: not one of the log's).
fn file_number(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.strip_suffix(SUFFIX)?.parse().ok()
}
