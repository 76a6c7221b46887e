//! Writing files the way secrets deserve: atomically (temp file + rename),
//! with the final mode set before any byte is written, never clobbering
//! unless asked to: the existence check and the rename are one step
//! (`renameat2(RENAME_NOREPLACE)`), so concurrent runs cannot overwrite each
//! other. Directory locks (`flock`) mark what a live run owns.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Mode of private key files.
pub(crate) const SECRET: u32 = 0o600;
/// Mode of certificates and other public files.
pub(crate) const PUBLIC: u32 = 0o644;
/// Prefix of the temporary files [`write_all`] stages beside their targets.
pub(crate) const TEMP_PREFIX: &str = ".jitr-tmp-";
/// The most [`read`] reads: names files of millions of devices fit.
pub(crate) const MAX_READ: u64 = 256 << 20;
/// The most a key, certificate or chain file may hold.
pub(crate) const MAX_PEM: u64 = 1 << 20;

/// One file to be written: where, what, and with which mode.
pub(crate) struct NewFile {
    pub(crate) path: PathBuf,
    pub(crate) contents: Vec<u8>,
    pub(crate) mode: u32,
}

impl NewFile {
    pub(crate) fn secret(path: PathBuf, contents: impl Into<Vec<u8>>) -> Self {
        NewFile {
            path,
            contents: contents.into(),
            mode: SECRET,
        }
    }
    pub(crate) fn public(path: PathBuf, contents: impl Into<Vec<u8>>) -> Self {
        NewFile {
            path,
            contents: contents.into(),
            mode: PUBLIC,
        }
    }
}

/// Writes every file or none: all are staged as temp files beside their
/// targets first, and renamed into place only when every one was written.
/// Without `force`, an existing target is refused: checked first, and again
/// at each rename (no-replace), undoing the renames already done when a
/// target appeared meanwhile.
pub(crate) fn write_all(files: &[NewFile], force: bool) -> Result<(), CliError> {
    if !force {
        if let Some(existing) = files.iter().find(|f| f.path.exists()) {
            return Err(CliError::Exists {
                path: existing.path.clone(),
            });
        }
    }
    let mut staged = Vec::with_capacity(files.len());
    for f in files {
        let dir = parent_dir(&f.path);
        let tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .permissions(fs::Permissions::from_mode(f.mode))
            .tempfile_in(dir)
            .map_err(|e| CliError::write(&f.path, e))?;
        tmp.as_file()
            .write_all(&f.contents)
            .map_err(|e| CliError::write(&f.path, e))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| CliError::write(&f.path, e))?;
        staged.push((tmp, &f.path));
    }
    if force {
        for (tmp, path) in staged {
            tmp.persist(path)
                .map_err(|e| CliError::write(path, e.error))?;
        }
        return Ok(());
    }
    let mut placed: Vec<&Path> = Vec::with_capacity(staged.len());
    for (tmp, path) in &staged {
        if let Err(e) = rename_noreplace(tmp.path(), path) {
            for done in placed {
                let _ = fs::remove_file(done);
            }
            return Err(if is_exists(&e) {
                CliError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                CliError::write(path, e)
            });
        }
        placed.push(path);
    }
    // The temp names are gone (renamed); dropping the handles deletes nothing of ours.
    Ok(())
}

/// Whether a rename failed because the target exists (a non-empty directory
/// reports ENOTEMPTY).
pub(crate) fn is_exists(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EEXIST) | Some(libc::ENOTEMPTY))
}

/// Renames `from` to `to` unless `to` exists (EEXIST), atomically.
/// Filesystems without `renameat2` get link + unlink for files and a plain
/// rename for directories (which never replaces a non-empty directory).
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match renameat2(from, to, libc::RENAME_NOREPLACE) {
        Err(e) if unsupported(&e) => {
            if fs::symlink_metadata(from)?.is_dir() {
                if fs::symlink_metadata(to).is_ok() {
                    return Err(io::Error::from_raw_os_error(libc::EEXIST));
                }
                fs::rename(from, to)
            } else {
                fs::hard_link(from, to)?;
                fs::remove_file(from)
            }
        }
        other => other,
    }
}

/// Swaps `a` and `b` atomically (both must exist: ENOENT otherwise).
/// Filesystems without it report [`unsupported`] errors.
pub(crate) fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
}

/// Whether the filesystem or kernel lacks `renameat2` flags.
pub(crate) fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS))
}

fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: two NUL-terminated paths that outlive the call; no memory is shared.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An exclusive `flock` on a directory, released when dropped (or when the
/// process dies, even by SIGKILL): what a live run holds, instead of a PID
/// that another container or a recycled PID could claim.
pub(crate) struct DirLock(#[allow(dead_code)] fs::File);

impl DirLock {
    /// Waits for the lock on `dir`.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, CliError> {
        let f = fs::File::open(dir).map_err(|e| CliError::read(dir, e))?;
        f.lock().map_err(|e| CliError::write(dir, e))?;
        Ok(DirLock(f))
    }

    /// The lock on `dir` if nobody holds it; `None` while a live run does.
    pub(crate) fn try_acquire(dir: &Path) -> Option<Self> {
        let f = fs::File::open(dir).ok()?;
        f.try_lock().ok()?;
        Some(DirLock(f))
    }

    /// Waits for the lock on the directory that is at `dir` once locked: a
    /// writer that swaps a new directory in (RENAME_EXCHANGE) leaves its
    /// waiters holding the old one, so they lock again.
    pub(crate) fn acquire_current(dir: &Path) -> Result<Self, CliError> {
        loop {
            let lock = Self::acquire(dir)?;
            if lock.is_at(dir) {
                return Ok(lock);
            }
        }
    }

    /// Waits for a shared lock on the directory at `dir`: readers share it,
    /// and wait while a writer holds the lock exclusively.
    pub(crate) fn acquire_shared_current(dir: &Path) -> Result<Self, CliError> {
        loop {
            let f = fs::File::open(dir).map_err(|e| CliError::read(dir, e))?;
            f.lock_shared().map_err(|e| CliError::read(dir, e))?;
            let lock = DirLock(f);
            if lock.is_at(dir) {
                return Ok(lock);
            }
        }
    }

    /// [`DirLock::try_acquire`] of the directory at `dir`; `None` while a live
    /// run holds it (or has just swapped it).
    pub(crate) fn try_acquire_current(dir: &Path) -> Option<Self> {
        Self::try_acquire(dir).filter(|lock| lock.is_at(dir))
    }

    /// Whether the locked directory is (still) the one at `path`.
    fn is_at(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.0.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
}

/// Removes [`write_all`]'s temp files left in `dir` by a killed run. Only
/// safe while holding the [`DirLock`] every writer of `dir` takes.
pub(crate) fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .as_bytes()
            .starts_with(TEMP_PREFIX.as_bytes())
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Creates `dir` (and parents) when missing; new directories get `mode`.
pub(crate) fn ensure_dir(dir: &Path, mode: u32) -> Result<(), CliError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| CliError::write(dir, e))
}

/// Writes one file into a directory that nobody else sees yet (a staging
/// directory): a plain create, with the mode set at creation.
pub(crate) fn write_new(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(contents)
}

/// Reads a whole regular file (up to [`MAX_READ`]), naming it in the error.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    read_limited(path, MAX_READ)
}

/// Reads a whole file of at most `limit` bytes. Only regular files: a FIFO
/// would block forever and a device such as /dev/urandom never ends.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, CliError> {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| CliError::read(path, e))?;
    let meta = f.metadata().map_err(|e| CliError::read(path, e))?;
    if !meta.is_file() {
        return Err(CliError::invalid(
            path.display(),
            "is not a regular file (expected a file, not a FIFO, device or directory)",
        ));
    }
    let too_big = || {
        CliError::invalid(
            path.display(),
            format!("is larger than {limit} bytes (expected a PEM or text file)"),
        )
    };
    if meta.len() > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&mut f)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::read(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_0600_and_not_clobbered() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pem");
        write_all(&[NewFile::secret(key.clone(), "one")], false).unwrap();
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let err = write_all(&[NewFile::secret(key.clone(), "two")], false).unwrap_err();
        assert!(matches!(err, CliError::Exists { .. }));
        assert_eq!(fs::read_to_string(&key).unwrap(), "one");
        write_all(&[NewFile::secret(key.clone(), "two")], true).unwrap();
        assert_eq!(fs::read_to_string(&key).unwrap(), "two");
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn all_or_nothing_when_one_target_exists() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&b, "old").unwrap();
        let files = [
            NewFile::public(a.clone(), "A"),
            NewFile::public(b.clone(), "B"),
        ];
        assert!(write_all(&files, false).is_err());
        assert!(!a.exists(), "nothing is written when one target exists");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files left behind");
    }

    #[test]
    fn concurrent_writers_without_force_one_wins_whole() {
        // Real interleaving: threads race to create the same pair of files.
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let (key, crt) = (dir.path().join("ca.key"), dir.path().join("ca.crt"));
            let results: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|i| {
                        let (key, crt) = (key.clone(), crt.clone());
                        s.spawn(move || {
                            let files = [
                                NewFile::secret(key, format!("key {i}")),
                                NewFile::public(crt, format!("crt {i}")),
                            ];
                            write_all(&files, false).map(|()| i)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(winners.len(), 1, "exactly one writer wins: {results:?}");
            let i = winners[0];
            assert_eq!(fs::read_to_string(&key).unwrap(), format!("key {i}"));
            assert_eq!(fs::read_to_string(&crt).unwrap(), format!("crt {i}"));
            assert!(results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|e| matches!(e, CliError::Exists { .. })));
            let mut left: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            left.sort();
            assert_eq!(left, ["ca.crt", "ca.key"], "no temp files left");
        }
    }

    #[test]
    fn rename_noreplace_refuses_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::write(&a, "A").unwrap();
        fs::write(&b, "B").unwrap();
        let e = rename_noreplace(&a, &b).unwrap_err();
        assert!(is_exists(&e), "{e}");
        assert_eq!(fs::read_to_string(&b).unwrap(), "B");
        let (d1, d2) = (dir.path().join("d1"), dir.path().join("d2"));
        fs::create_dir(&d1).unwrap();
        fs::create_dir(&d2).unwrap();
        assert!(is_exists(&rename_noreplace(&d1, &d2).unwrap_err()));
        fs::remove_dir(&d2).unwrap();
        rename_noreplace(&d1, &d2).unwrap();
        assert!(d2.is_dir() && !d1.exists());
        exchange(&a, &b).unwrap();
        assert_eq!(fs::read_to_string(&b).unwrap(), "A");
        assert_eq!(
            exchange(&a, &dir.path().join("none")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Would block forever (no writer) if opened like a file.
        let err = read(&fifo).unwrap_err().to_string();
        assert!(err.contains("is not a regular file"), "{err}");
        let err = read(Path::new("/dev/urandom")).unwrap_err().to_string();
        assert!(err.contains("/dev/urandom: is not a regular file"), "{err}");
        assert!(read(dir.path()).is_err());
        let big = dir.path().join("big");
        fs::write(&big, vec![b'x'; 2000]).unwrap();
        let err = read_limited(&big, 1000).unwrap_err().to_string();
        assert!(err.contains("is larger than 1000 bytes"), "{err}");
        assert_eq!(read_limited(&big, 2000).unwrap().len(), 2000);
    }

    #[test]
    fn a_directory_lock_is_held_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        assert!(DirLock::try_acquire(dir.path()).is_none());
        drop(held);
        assert!(DirLock::try_acquire(dir.path()).is_some());
    }

    #[test]
    fn stale_temps_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".jitr-tmp-abc"), "key copy").unwrap();
        fs::write(dir.path().join("ca.key"), "key").unwrap();
        remove_stale_temps(dir.path());
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["ca.key"]);
    }
}
