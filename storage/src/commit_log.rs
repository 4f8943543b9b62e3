//! The sled store's commit log: one file, `kubox-commits`, in the store's directory, that makes
//! each group commit durable with one `write` and one `fdatasync`, so a commit never waits for
//! sled's own flush (which hands its write to sled's I/O thread pool and wakes all of it).
//!
//! Layout: a header `[magic 8][generation u64][crc32 u32][zero u32]` at offset 0, then frames
//! `[generation u64][payload length u32][crc32 u32][payload]`, the payload being the commit's
//! groups, each `[first revision i64][length u32][group]`; integers big-endian, every crc32 over
//! the bytes before it in its header and, for a frame, its payload.
//!
//! Invariants:
//! - A frame counts only when its generation is the header's and its crc is right; reading
//!   stops at the first that is not (a torn tail, zeros past the end, a frame of an older
//!   generation). A frame is acknowledged only after an `fdatasync` that also covers the header
//!   written before it.
//! - Every group a counting frame holds was also inserted into sled before the frame's commit
//!   was acknowledged, so replaying frames into sled (on open) only puts back what sled may
//!   have lost; it skips groups at or below the compacted revision, which sled holds durably
//!   since the compaction that moved it flushed.
//! - The log is reused from its start (a *checkpoint*: a new generation in the header) only
//!   after sled was flushed and its files synced, so nothing a frame held is lost by reuse.
//! - The file is never shorter than what was acknowledged; it is extended with zeros ahead of
//!   the frames when the committer is idle, so a commit overwrites allocated blocks instead of
//!   growing the file (whose sync then also writes the inode).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::sled_store::io_error;
use crate::{Revision, StoreError, StoreResult};

/// The log's file name in the store's directory.
pub(crate) const FILE_NAME: &str = "kubox-commits";
const MAGIC: &[u8; 8] = b"kuboxcl1";
const HEADER_LEN: u64 = 24;
const FRAME_HEADER_LEN: usize = 16;
/// Once the frames reach this far, the log is checkpointed and reused from its start.
pub(crate) const CHECKPOINT_AT: u64 = 8 * 1024 * 1024;
/// The largest frame buffer kept for the next commit.
const FRAME_KEEP_CAPACITY: usize = 256 * 1024;
/// How much the file is extended with zeros at once, when fewer bytes than this are left.
pub(crate) const EXTEND_BY: u64 = 1024 * 1024;

fn header_bytes(generation: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&generation.to_be_bytes());
    let crc = crc32fast::hash(&h[..16]);
    h[16..20].copy_from_slice(&crc.to_be_bytes());
    h
}

/// The generation a header holds, if it is one.
fn parse_header(h: &[u8]) -> Option<u64> {
    let crc = u32::from_be_bytes(h.get(16..20)?.try_into().ok()?);
    if h.get(..8)? != MAGIC || crc32fast::hash(h.get(..16)?) != crc {
        return None;
    }
    Some(u64::from_be_bytes(h.get(8..16)?.try_into().ok()?))
}

fn file_len(file: &File) -> StoreResult<u64> {
    Ok(file
        .metadata()
        .map_err(|e| io_error("cannot read the commit log", e))?
        .len())
}

/// The groups of one frame's payload: `(first revision, group bytes)`.
fn payload_groups(payload: &[u8]) -> StoreResult<Vec<(Revision, &[u8])>> {
    let corrupt = || StoreError::Internal("corrupt commit log frame".into());
    let mut groups = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let first = i64::from_be_bytes(
            rest.get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(corrupt)?,
        );
        let len = u32::from_be_bytes(
            rest.get(8..12)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(corrupt)?,
        );
        let end = 12 + usize::try_from(len).map_err(|_| corrupt())?;
        groups.push((first, rest.get(12..end).ok_or_else(corrupt)?));
        rest = rest.get(end..).ok_or_else(corrupt)?;
    }
    Ok(groups)
}

/// The open log, owned by the committer.
pub(crate) struct CommitLog {
    file: File,
    dir: PathBuf,
    generation: u64,
    /// Where the next frame goes.
    pos: u64,
    /// The file's length.
    len: u64,
    /// The directory entry of a newly created file is not synced yet (done with the next sync).
    dir_unsynced: bool,
    checkpoint_at: u64,
    frame: Vec<u8>,
}

impl CommitLog {
    /// Open (or create) the log in `dir` and hand every group of its counting frames, oldest
    /// first, to `replay`. Returns the log and whether any group was replayed; the log takes
    /// frames once a new generation started (see [`CommitLog::start_generation`]).
    pub(crate) fn open(
        dir: &Path,
        checkpoint_at: u64,
        mut replay: impl FnMut(Revision, &[u8]) -> StoreResult<()>,
    ) -> StoreResult<(CommitLog, bool)> {
        let path = dir.join(FILE_NAME);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600) // it holds every value written, Secrets included
            .open(&path)
            .map_err(|e| io_error("cannot open the commit log", e))?;
        let len = file_len(&file)?;
        let mut replayed = false;
        let mut generation = 0;
        if len >= HEADER_LEN {
            let mut all = Vec::new();
            file.seek(SeekFrom::Start(0))
                .and_then(|_| file.read_to_end(&mut all))
                .map_err(|e| io_error("cannot read the commit log", e))?;
            match all.get(..HEADER_LEN as usize).and_then(parse_header) {
                Some(g) => {
                    generation = g;
                    for payload in frames(&all, g) {
                        for (first, group) in payload_groups(payload)? {
                            replay(first, group)?;
                            replayed = true;
                        }
                    }
                }
                // No header to tell its frames from older ones: none of them counts, and
                // none is left to be taken for a new generation's.
                None => file
                    .set_len(0)
                    .map_err(|e| io_error("cannot reset the commit log", e))?,
            }
        }
        let len = file_len(&file)?.max(HEADER_LEN);
        let log = CommitLog {
            file,
            dir: dir.to_path_buf(),
            generation,
            pos: HEADER_LEN,
            len,
            dir_unsynced: !existed,
            checkpoint_at,
            frame: Vec::new(),
        };
        Ok((log, replayed))
    }

    /// Write a new generation's header: the frames after it are new, whatever was there before.
    /// Before the first append after [`CommitLog::open`]; when frames were replayed, only once
    /// sled holds them durably ([`CommitLog::checkpoint`] instead).
    pub(crate) fn start_generation(&mut self) -> io::Result<()> {
        self.generation = self.generation.wrapping_add(1).max(1);
        self.file.write_all_at(&header_bytes(self.generation), 0)?;
        self.pos = HEADER_LEN;
        Ok(())
    }

    /// Append one commit's groups as one frame; `sync` makes it durable before returning.
    #[cfg(test)]
    pub(crate) fn append(&mut self, groups: &[(Revision, Vec<u8>)], sync: bool) -> io::Result<()> {
        self.prepare_frame(groups)?;
        self.write_frame(sync)
    }

    /// Encode one commit's groups as the next frame (written by [`CommitLog::write_frame`]).
    pub(crate) fn prepare_frame(&mut self, groups: &[(Revision, Vec<u8>)]) -> io::Result<()> {
        let frame = &mut self.frame;
        frame.clear();
        frame.extend_from_slice(&self.generation.to_be_bytes());
        frame.extend_from_slice(&[0; 8]);
        for (first, group) in groups {
            frame.extend_from_slice(&first.to_be_bytes());
            frame.extend_from_slice(&u32::try_from(group.len()).unwrap_or(u32::MAX).to_be_bytes());
            frame.extend_from_slice(group);
        }
        let payload_len = u32::try_from(frame.len() - FRAME_HEADER_LEN)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "commit too large"))?;
        frame[8..12].copy_from_slice(&payload_len.to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&frame[..12]);
        crc.update(&frame[FRAME_HEADER_LEN..]);
        frame[12..16].copy_from_slice(&crc.finalize().to_be_bytes());
        Ok(())
    }

    /// Write the prepared frame after the last; `sync` makes it durable before returning.
    pub(crate) fn write_frame(&mut self, sync: bool) -> io::Result<()> {
        self.file.write_all_at(&self.frame, self.pos)?;
        self.pos += self.frame.len() as u64;
        self.len = self.len.max(self.pos);
        if self.frame.capacity() > FRAME_KEEP_CAPACITY {
            self.frame = Vec::new(); // a large commit's buffer is not kept
        }
        if sync {
            self.sync()?;
        }
        Ok(())
    }

    /// Make everything written durable (and, once, the new file's directory entry).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        if self.dir_unsynced {
            File::open(&self.dir)?.sync_all()?;
            self.dir_unsynced = false;
        }
        Ok(())
    }

    /// Where the frames end, the file's length, and the generation.
    #[cfg(test)]
    pub(crate) fn extent(&self) -> (u64, u64, u64) {
        (self.pos, self.len, self.generation)
    }

    /// The frames reached the checkpoint size: see [`CommitLog::checkpoint`].
    pub(crate) fn wants_checkpoint(&self) -> bool {
        self.pos >= self.checkpoint_at
    }

    /// Reuse the log from its start, once sled holds what its frames held: flush `db` (the
    /// sled database in the log's directory), sync sled's files (its flush does not flush the
    /// device's cache, nor its blob files at all), then start a new generation.
    pub(crate) fn checkpoint(&mut self, db: &sled::Db) -> io::Result<()> {
        db.flush().map_err(io::Error::other)?;
        sync_sled_files(&self.dir)?;
        self.start_generation()
    }

    /// Few bytes are left past the frames, and no checkpoint will reuse the log first.
    fn is_short(&self) -> bool {
        self.len.saturating_sub(self.pos) < EXTEND_BY / 4 && self.pos < self.checkpoint_at
    }

    /// A checkpoint or an extension is due.
    pub(crate) fn wants_upkeep(&self) -> bool {
        self.wants_checkpoint() || self.is_short()
    }

    /// Extend the file with zeros when few bytes are left past the frames (for an idle
    /// committer: this writes and syncs a megabyte).
    pub(crate) fn extend_if_short(&mut self) -> io::Result<()> {
        if !self.is_short() {
            return Ok(());
        }
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let end = self.len + EXTEND_BY;
        while self.len < end {
            self.file.write_all_at(&ZEROS, self.len)?;
            self.len += ZEROS.len() as u64;
        }
        self.sync()
    }
}

/// The payloads of the counting frames of generation `generation` in the log's bytes `all`.
fn frames(all: &[u8], generation: u64) -> impl Iterator<Item = &[u8]> {
    let mut pos = HEADER_LEN as usize;
    std::iter::from_fn(move || {
        let head = all.get(pos..pos + FRAME_HEADER_LEN)?;
        let g = u64::from_be_bytes(head[..8].try_into().ok()?);
        let len = usize::try_from(u32::from_be_bytes(head[8..12].try_into().ok()?)).ok()?;
        let crc = u32::from_be_bytes(head[12..16].try_into().ok()?);
        if g != generation {
            return None;
        }
        let start = pos + FRAME_HEADER_LEN;
        let payload = all.get(start..start.checked_add(len)?)?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head[..12]);
        hasher.update(payload);
        if hasher.finalize() != crc {
            return None;
        }
        pos = start + len;
        Some(payload)
    })
}

/// fsync sled's files in `dir`: its log (`db`), its blobs and the blob directory.
fn sync_sled_files(dir: &Path) -> io::Result<()> {
    File::open(dir.join("db"))?.sync_all()?;
    let blobs = dir.join("blobs");
    match std::fs::read_dir(&blobs) {
        Ok(entries) => {
            for entry in entries {
                let path = entry?.path();
                if path.is_file() {
                    File::open(path)?.sync_all()?;
                }
            }
            File::open(&blobs)?.sync_all()
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn reopen(dir: &Path) -> (CommitLog, Vec<(Revision, Vec<u8>)>) {
        let mut seen = Vec::new();
        let (mut log, _) = CommitLog::open(dir, CHECKPOINT_AT, |first, group| {
            seen.push((first, group.to_vec()));
            Ok(())
        })
        .unwrap();
        log.start_generation().unwrap();
        (log, seen)
    }

    fn commit(first: Revision, body: &str) -> (Revision, Vec<u8>) {
        (first, body.as_bytes().to_vec())
    }

    #[test]
    fn the_log_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        reopen(dir.path());
        let meta = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn frames_come_back_in_order_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, seen) = reopen(dir.path());
        assert!(seen.is_empty());
        log.append(&[commit(1, "a")], true).unwrap();
        log.append(&[commit(2, "b"), commit(3, "cc")], true)
            .unwrap();
        drop(log);
        let (_, seen) = reopen(dir.path());
        assert_eq!(seen, vec![commit(1, "a"), commit(2, "b"), commit(3, "cc")]);
        // A new generation started: the frames read above are not read again.
        let (_, seen) = reopen(dir.path());
        assert!(seen.is_empty(), "{seen:?}");
    }

    #[test]
    fn a_torn_or_corrupt_frame_ends_the_log() {
        for damage in ["truncate", "flip"] {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = reopen(dir.path());
            log.append(&[commit(1, "first")], true).unwrap();
            let end_of_first = log.pos;
            log.append(&[commit(2, "second")], true).unwrap();
            log.append(&[commit(3, "third")], true).unwrap();
            drop(log);
            let path = dir.path().join(FILE_NAME);
            let file = OpenOptions::new().write(true).open(&path).unwrap();
            match damage {
                "truncate" => file.set_len(end_of_first + 20).unwrap(),
                _ => file.write_all_at(b"X", end_of_first + 18).unwrap(),
            }
            let (_, seen) = reopen(dir.path());
            assert_eq!(seen, vec![commit(1, "first")], "{damage}");
        }
    }

    #[test]
    fn frames_of_an_older_generation_past_the_newest_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = reopen(dir.path());
        for rev in 1..=5 {
            log.append(&[commit(rev, "old generation")], true).unwrap();
        }
        log.checkpoint_at = 0;
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        log.checkpoint(&db).unwrap();
        log.append(&[commit(6, "new")], true).unwrap();
        drop(log);
        let (_, seen) = reopen(dir.path());
        assert_eq!(seen, vec![commit(6, "new")]);
    }

    #[test]
    fn zeros_ahead_of_the_frames_end_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = reopen(dir.path());
        log.append(&[commit(1, "a")], true).unwrap();
        log.extend_if_short().unwrap();
        assert!(log.len >= EXTEND_BY, "extended");
        log.append(&[commit(2, "b")], true).unwrap();
        drop(log);
        let (_, seen) = reopen(dir.path());
        assert_eq!(seen, vec![commit(1, "a"), commit(2, "b")]);
    }

    #[test]
    fn a_damaged_header_reads_as_an_empty_log() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = reopen(dir.path());
        log.append(&[commit(1, "a")], true).unwrap();
        drop(log);
        let file = OpenOptions::new()
            .write(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap();
        file.write_all_at(b"Z", 3).unwrap();
        let (mut log, seen) = reopen(dir.path());
        assert!(seen.is_empty());
        // ... and a working one again.
        log.append(&[commit(2, "b")], true).unwrap();
        drop(log);
        assert_eq!(reopen(dir.path()).1, vec![commit(2, "b")]);
    }
}
