//! Files and directories that hold secrets: private from the moment they exist.
//!
//! The data directory (the sled database holds every Secret; `pki/` the CA and signing keys) is
//! created `0700`; a file holding a secret (keys, the kubeconfig, the audit log) is written
//! `0600` through a temporary file created with that mode and renamed into place, so there is
//! no moment at which another user could read it. An existing data directory that other users
//! may read is refused (as etcd refuses its data directory), unless the caller says otherwise;
//! an empty one (a fresh temporary directory) is made private first, as nothing in it could
//! have been read. Every error names the path and the cause.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A file-system operation that failed, with the path it failed on.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {}: {source}", path.display())]
pub struct FileError {
    /// What was being done ("create data dir", "write").
    pub what: &'static str,
    /// On which path.
    pub path: PathBuf,
    /// Why it failed.
    #[source]
    pub source: std::io::Error,
}

impl FileError {
    fn new(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        FileError {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Make sure `dir` exists as a private directory: created `0700` (with any missing parents)
/// when absent; made `0700` when present but empty; when it holds anything, refused if other
/// users have any access to it, unless `allow_shared` (then used as it is).
pub fn private_dir(dir: &Path, allow_shared: bool) -> Result<(), FileError> {
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(FileError::new(
            "use data dir",
            dir,
            std::io::Error::other("it exists and is not a directory"),
        )),
        Ok(meta) => {
            let mode = permissions(&meta);
            if mode & 0o077 == 0 || allow_shared {
                return Ok(());
            }
            let empty = std::fs::read_dir(dir)
                .map_err(|e| FileError::new("read data dir", dir, e))?
                .next()
                .is_none();
            if empty {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| FileError::new("make private the data dir", dir, e))?;
                }
                return Ok(());
            }
            Err(FileError::new(
                "use data dir",
                dir,
                std::io::Error::other(format!(
                    "its permissions are {mode:04o}, so other users may read what it holds \
                     (Secrets, keys); make it private (chmod 700 {}) or allow it explicitly",
                    dir.display()
                )),
            ))
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder
                .create(dir)
                .map_err(|e| FileError::new("create data dir", dir, e))
        }
        Err(e) => Err(FileError::new("use data dir", dir, e)),
    }
}

#[cfg(unix)]
fn permissions(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn permissions(_: &std::fs::Metadata) -> u32 {
    0o700
}

/// Write `contents` to `path`, readable by its owner only, atomically: a temporary file created
/// `0600` beside it, written, synced, renamed over `path`.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), FileError> {
    write_private_files(&[(path, contents)])
}

/// Write several files as [`write_private`] writes one, together: every temporary file is
/// written, then each is synced (the first sync commits the file system's journal for all of
/// them, so the others cost little), then each is renamed into place and the directories that
/// got a new name are synced. A crash leaves each path with its old content or its new one. On
/// an error no temporary file is left; the files renamed before it stay.
pub fn write_private_files(files: &[(&Path, &[u8])]) -> Result<(), FileError> {
    let mut temps: Vec<Temp<'_>> = Vec::with_capacity(files.len());
    let written = write_temps(files, &mut temps).and_then(|()| {
        for Temp { path, file, .. } in &temps {
            file.sync_all()
                .map_err(|e| FileError::new("write", path, e))?;
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        for Temp { tmp, path, .. } in &temps {
            std::fs::rename(tmp, path).map_err(|e| FileError::new("write", path, e))?;
            let dir = parent_dir(path);
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        for dir in &dirs {
            sync_dir(dir).map_err(|e| FileError::new("sync dir", dir, e))?;
        }
        Ok(())
    });
    if written.is_err() {
        for Temp { tmp, .. } in &temps {
            let _ = std::fs::remove_file(tmp);
        }
    }
    written
}

/// A temporary file written for `path`.
struct Temp<'a> {
    tmp: PathBuf,
    path: &'a Path,
    file: std::fs::File,
}

/// Create and fill the temporary file of each of `files`, recording each in `temps` as soon
/// as it exists.
fn write_temps<'a>(
    files: &[(&'a Path, &[u8])],
    temps: &mut Vec<Temp<'a>>,
) -> Result<(), FileError> {
    for (path, contents) in files {
        let dir = parent_dir(path);
        std::fs::create_dir_all(&dir).map_err(|e| FileError::new("create dir", &dir, e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let mut file = open_private(&tmp, true).map_err(|e| FileError::new("write", path, e))?;
        let written = file.write_all(contents);
        temps.push(Temp { tmp, path, file });
        written.map_err(|e| FileError::new("write", path, e))?;
    }
    Ok(())
}

/// The directory `path` is in (`.` for a bare name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    }
}

/// Make the names in `dir` durable (a rename into it survives a crash once this returns).
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Open `path` for appending, creating it `0600` if missing (an audit log).
pub fn append_private(path: &Path) -> Result<std::fs::File, FileError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| FileError::new("create dir", parent, e))?;
    }
    open_private(path, false).map_err(|e| FileError::new("open", path, e))
}

fn open_private(path: &Path, create_new: bool) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    if create_new {
        opts.write(true).create_new(true);
    } else {
        opts.append(true).create(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Make every file directly in `dir` readable by its owner only (what a library created there
/// with its own modes, inside a directory that is already private).
pub fn restrict_files(dir: &Path) -> Result<(), FileError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let entries = std::fs::read_dir(dir).map_err(|e| FileError::new("read dir", dir, e))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(meta) = entry.metadata() {
                if meta.is_file() && permissions(&meta) & 0o077 != 0 {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| FileError::new("restrict", &path, e))?;
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_data_dir_and_its_missing_parents_are_private() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        private_dir(&dir, false).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&t.path().join("a")), 0o700);
        private_dir(&dir, false).unwrap(); // and it is accepted again
    }

    #[test]
    fn an_empty_shared_data_dir_is_made_private() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("fresh");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir, false).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn a_data_dir_others_can_read_is_refused_unless_allowed() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("shared");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("kubeconfig"), "").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = private_dir(&dir, false).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "cannot use data dir {}: its permissions are 0755",
                dir.display()
            )),
            "{e}"
        );
        private_dir(&dir, true).unwrap();
    }

    #[test]
    fn a_data_dir_that_cannot_be_created_names_the_path_and_the_cause() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = private_dir(&file.join("sub"), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "cannot create data dir {}: ",
                file.join("sub").display()
            )),
            "{e}"
        );
    }

    #[test]
    fn private_files_are_0600_and_replace_the_old_content_atomically() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("kubeconfig");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(mode(&path), 0o600);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 1);
        let log = t.path().join("logs/audit.log");
        append_private(&log).unwrap();
        assert_eq!(mode(&log), 0o600);
    }

    #[test]
    fn files_written_together_land_whole_and_private_or_leave_no_temporary_file() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a.key"), t.path().join("sub/b.crt"));
        std::fs::write(&a, "old").unwrap();
        write_private_files(&[(&a, b"new a"), (&b, b"new b")]).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "new b");
        assert_eq!((mode(&a), mode(&b)), (0o600, 0o600));
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 2); // a.key, sub/
        assert_eq!(std::fs::read_dir(t.path().join("sub")).unwrap().count(), 1);
        // A file that cannot be written (its directory is a file): an error naming it, no
        // temporary file left, and the other file untouched (nothing was renamed yet).
        let blocked = t.path().join("a.key/c");
        let e = write_private_files(&[(&a, b"newer a"), (&blocked, b"c")]).unwrap_err();
        assert!(e.to_string().contains("a.key"), "{e}");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(std::fs::read_dir(t.path()).unwrap().count(), 2);
    }
}
