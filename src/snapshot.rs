//! Snapshots of a whole server, and their file format.
//!
//! A [`Snapshot`] is a consistent image of the store at one revision (every object, CRD, RBAC
//! rule, the revision counter) and, when taken from a handle in this process, the server's keys
//! and certificates, so that servers started from it accept the same credentials and
//! ServiceAccount tokens. `Server::builder().from_snapshot(&snap)` starts a server holding
//! exactly that state; many can run side by side, each with its own store (the objects' bytes
//! are shared), their resourceVersions continuing from the snapshot's revision.
//!
//! # File format (version 1)
//!
//! JSON lines, UTF-8. The first line is the header:
//!
//! ```text
//! {"kind":"KuboxSnapshot","formatVersion":1,"kubernetes":"1.35","revision":812,"keys":431}
//! ```
//!
//! then one line per key, in key order:
//!
//! ```text
//! {"key":"/registry/configmaps/default/a","createRevision":17,"modRevision":40,"version":2,"value":"{…}"}
//! ```
//!
//! `value` holds the stored bytes as a string when they are UTF-8 (every object kubox stores),
//! `valueBase64` otherwise. `keys` is the number of key lines. A reader refuses other format
//! versions, a count that does not match and revisions that are not consistent (each key's
//! `modRevision` distinct and at most `revision`). Keys and certificates are never written to
//! a file: a server started from a file makes or loads its own.

use std::io::{BufRead, Write};
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use kubox_storage::{Image, KeyValue};
use serde::{Deserialize, Serialize};

use crate::pki::Pki;

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The largest line a snapshot file may hold (an object is at most 3 MiB, in JSON escaped).
const MAX_LINE: usize = 16 * 1024 * 1024;

/// A consistent image of a server's state at one revision.
#[derive(Clone)]
pub struct Snapshot {
    pub(crate) image: Image,
    pub(crate) pki: Option<Arc<Pki>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("revision", &self.image.revision)
            .field("keys", &self.image.kvs.len())
            .field("with_keys_and_certificates", &self.pki.is_some())
            .finish()
    }
}

/// A snapshot file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading or writing failed.
    #[error("snapshot: {0}")]
    Io(#[from] std::io::Error),
    /// The content is not a snapshot this build reads (the message says where and why).
    #[error("snapshot: {0}")]
    Format(String),
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Header {
    kind: String,
    format_version: u32,
    kubernetes: String,
    revision: i64,
    keys: usize,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Line {
    key: String,
    create_revision: i64,
    mod_revision: i64,
    version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
}

impl Snapshot {
    /// A snapshot of an image (without keys and certificates).
    pub fn from_image(image: Image) -> Snapshot {
        Snapshot { image, pki: None }
    }

    /// The revision it was taken at: the next write of a server started from it gets the one
    /// after.
    pub fn revision(&self) -> i64 {
        self.image.revision
    }

    /// How many keys (objects and kubox's own records) it holds.
    pub fn len(&self) -> usize {
        self.image.kvs.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.image.kvs.is_empty()
    }

    /// The store image.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// Write it in the file format (keys and certificates are left out).
    pub fn write_to(&self, mut out: impl Write) -> Result<(), SnapshotError> {
        let header = Header {
            kind: "KuboxSnapshot".to_string(),
            format_version: FORMAT_VERSION,
            kubernetes: format!("1.{}", crate::version::KUBERNETES_MINOR),
            revision: self.image.revision,
            keys: self.image.kvs.len(),
        };
        serde_json::to_writer(&mut out, &header).map_err(std::io::Error::other)?;
        out.write_all(b"\n")?;
        for kv in self.image.kvs.iter() {
            let (value, value_base64) = match std::str::from_utf8(&kv.value) {
                Ok(text) => (Some(text.to_string()), None),
                Err(_) => (
                    None,
                    Some(base64::engine::general_purpose::STANDARD.encode(&kv.value)),
                ),
            };
            let line = Line {
                key: kv.key.to_string(),
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
                version: kv.version,
                value,
                value_base64,
            };
            serde_json::to_writer(&mut out, &line).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        Ok(())
    }

    /// The file form, in memory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    /// Read the file format.
    pub fn read_from(input: impl BufRead) -> Result<Snapshot, SnapshotError> {
        let bad = |line: usize, why: String| SnapshotError::Format(format!("line {line}: {why}"));
        let mut lines = BoundedLines { input, number: 0 };
        let first = lines
            .next_line()?
            .ok_or_else(|| SnapshotError::Format("empty file".to_string()))?;
        let header: Header =
            serde_json::from_slice(&first).map_err(|e| bad(1, format!("not a header: {e}")))?;
        if header.kind != "KuboxSnapshot" {
            return Err(bad(
                1,
                format!("kind {:?} is not KuboxSnapshot", header.kind),
            ));
        }
        if header.format_version != FORMAT_VERSION {
            return Err(bad(
                1,
                format!(
                    "format version {} (this kubox reads version {FORMAT_VERSION})",
                    header.format_version
                ),
            ));
        }
        let mut kvs = Vec::with_capacity(header.keys.min(1 << 20));
        while let Some(text) = lines.next_line()? {
            let n = lines.number;
            let line: Line =
                serde_json::from_slice(&text).map_err(|e| bad(n, format!("not a key: {e}")))?;
            let value = match (line.value, line.value_base64) {
                (Some(v), None) => Bytes::from(v),
                (None, Some(b)) => base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map(Bytes::from)
                    .map_err(|e| bad(n, format!("valueBase64: {e}")))?,
                _ => return Err(bad(n, "exactly one of value and valueBase64".to_string())),
            };
            kvs.push(KeyValue {
                key: line.key.into(),
                value,
                create_revision: line.create_revision,
                mod_revision: line.mod_revision,
                version: line.version,
            });
        }
        if kvs.len() != header.keys {
            return Err(SnapshotError::Format(format!(
                "the header counts {} keys, the file holds {}",
                header.keys,
                kvs.len()
            )));
        }
        kvs.sort_by(|a, b| a.key.cmp(&b.key));
        let image = Image {
            revision: header.revision,
            kvs: kvs.into(),
        };
        // Refuse inconsistent revisions now rather than when a server starts from it.
        kubox_storage::memory::MemoryStore::from_image(&image, Default::default())
            .map_err(|e| SnapshotError::Format(e.to_string()))?;
        Ok(Snapshot::from_image(image))
    }

    /// Write it to a file (0600: it holds every Secret).
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<(), SnapshotError> {
        crate::files::write_private(path.as_ref(), &self.to_bytes())
            .map_err(|e| SnapshotError::Io(std::io::Error::other(e.to_string())))
    }

    /// Read it from a file.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Snapshot, SnapshotError> {
        let file = std::fs::File::open(path.as_ref()).map_err(|e| {
            SnapshotError::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.as_ref().display()),
            ))
        })?;
        Snapshot::read_from(std::io::BufReader::new(file))
    }
}

/// Lines of at most [`MAX_LINE`] bytes.
struct BoundedLines<R> {
    input: R,
    number: usize,
}

impl<R: BufRead> BoundedLines<R> {
    fn next_line(&mut self) -> Result<Option<Vec<u8>>, SnapshotError> {
        let mut line = Vec::new();
        let read = std::io::Read::take(&mut self.input, MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        if line.len() > MAX_LINE {
            return Err(SnapshotError::Format(format!(
                "line {}: longer than {MAX_LINE} bytes",
                self.number
            )));
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        if line.is_empty() {
            return self.next_line();
        }
        Ok(Some(line))
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    fn image() -> Image {
        let kv = |key: &str, value: &[u8], c, m, v| KeyValue {
            key: key.into(),
            value: Bytes::copy_from_slice(value),
            create_revision: c,
            mod_revision: m,
            version: v,
        };
        Image {
            revision: 9,
            kvs: vec![
                kv("/registry/a", br#"{"a":1}"#, 2, 5, 2),
                kv("/registry/b", &[0xff, 0x00, 0x10], 7, 7, 1),
            ]
            .into(),
        }
    }

    #[test]
    fn files_round_trip_text_and_binary_values() {
        let snap = Snapshot::from_image(image());
        let bytes = snap.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap_or_default();
        assert!(
            text.starts_with(r#"{"kind":"KuboxSnapshot","formatVersion":1,"#),
            "{text}"
        );
        assert!(text.contains(r#""value":"{\"a\":1}""#), "{text}");
        assert!(text.contains(r#""valueBase64":"/wAQ""#), "{text}");
        let back = Snapshot::read_from(&bytes[..]).expect("reads back");
        assert_eq!(back.revision(), 9);
        assert_eq!(back.image.kvs.len(), 2);
        for (a, b) in back.image.kvs.iter().zip(image().kvs.iter()) {
            assert_eq!(
                (
                    &a.key,
                    &a.value,
                    a.create_revision,
                    a.mod_revision,
                    a.version
                ),
                (
                    &b.key,
                    &b.value,
                    b.create_revision,
                    b.mod_revision,
                    b.version
                )
            );
        }
    }

    #[test]
    fn unreadable_files_say_why() {
        let good = String::from_utf8(Snapshot::from_image(image()).to_bytes()).unwrap_or_default();
        let cases = [
            (String::new(), "empty file"),
            ("{}\n".to_string(), "line 1: not a header"),
            (
                good.replace("\"formatVersion\":1", "\"formatVersion\":2"),
                "format version 2",
            ),
            (good.replace("\"keys\":2", "\"keys\":3"), "counts 3 keys"),
            (
                good.replace("\"modRevision\":7", "\"modRevision\":12"),
                "outside 1..=9",
            ),
            (good.replace("\"value\":", "\"valu\":"), "line 2: not a key"),
        ];
        for (text, expected) in cases {
            let err = Snapshot::read_from(text.as_bytes())
                .expect_err(expected)
                .to_string();
            assert!(err.contains(expected), "{err} does not say {expected:?}");
        }
    }
}
