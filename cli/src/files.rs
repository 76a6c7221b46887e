//! Writing files the way secrets deserve: atomically (temp file + rename),
//! with the final mode set before any byte is written, never clobbering
//! unless asked to.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::CliError;

/// Mode of private key files.
pub const SECRET: u32 = 0o600;
/// Mode of certificates and other public files.
pub const PUBLIC: u32 = 0o644;

/// One file to be written: where, what, and with which mode.
pub struct NewFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub mode: u32,
}

impl NewFile {
    pub fn secret(path: PathBuf, contents: impl Into<Vec<u8>>) -> Self {
        NewFile {
            path,
            contents: contents.into(),
            mode: SECRET,
        }
    }
    pub fn public(path: PathBuf, contents: impl Into<Vec<u8>>) -> Self {
        NewFile {
            path,
            contents: contents.into(),
            mode: PUBLIC,
        }
    }
}

/// Writes every file or none: all are staged as temp files beside their
/// targets first, and renamed into place only when every one was written.
/// Without `force`, any existing target is refused before anything is written.
pub fn write_all(files: &[NewFile], force: bool) -> Result<(), CliError> {
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
            .prefix(".jitr-tmp-")
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
    for (tmp, path) in staged {
        tmp.persist(path)
            .map_err(|e| CliError::write(path, e.error))?;
    }
    Ok(())
}

/// Creates `dir` (and parents) when missing; new directories get `mode`.
pub fn ensure_dir(dir: &Path, mode: u32) -> Result<(), CliError> {
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
pub fn write_new(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(contents)
}

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    fs::read(path).map_err(|e| CliError::read(path, e))
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
}
