//! Writing a CA directory as one atomic step. The new CA is built complete
//! in a staging directory beside DIR and swapped in with
//! `renameat2(RENAME_EXCHANGE)`, so after a crash at any moment DIR holds the
//! whole old CA or the whole new one, never a new key beside an old
//! certificate. Every writer holds DIR's lock; what a killed run leaves (its
//! staging directory, temp copies of a key) is removed by the next run that
//! gets the lock, including one that only loads the CA to sign.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ca_files::{self, AWS_FILE, CERT_FILE, CHAIN_FILE, KEY_FILE};
use super::store::{self, REF_FILE};
use crate::error::CliError;
use crate::files::{self, DirLock, NewFile};

/// Between DIR's name and the random part of its staging siblings' names.
const STAGING_TAG: &str = ".jitr-ca-";
/// Length of the random part of a staging directory's name.
const RANDOM_LEN: usize = 6;

/// Writes the CA files `new` (paths inside `dir`) as one step: under DIR's
/// lock, refusing an existing CA unless `force`. Other entries of DIR (not
/// CA files) are kept. Filesystems without RENAME_EXCHANGE get per-file
/// no-clobber renames instead.
pub(crate) fn write(dir: &Path, new: &[NewFile], force: bool) -> Result<(), CliError> {
    files::ensure_dir(dir, 0o700)?;
    // Swap the real directory, not a symlink that points at it.
    let real = fs::canonicalize(dir).map_err(|e| CliError::read(dir, e))?;
    let _lock = DirLock::acquire_current(&real)?;
    tidy(&real);
    refuse_existing(dir, force)?;
    match swap_in(&real, new) {
        Err(Swap::Unsupported) => files::write_all(new, force),
        Err(Swap::Failed(e)) => Err(e),
        Ok(()) => Ok(()),
    }
}

/// Writes a new CA's directory (`ca create`, `ca import`) with [`write`]:
/// its certificate, the file its key store keeps (`ca.key` or `key.json`)
/// and its chain. A key file of the store the CA was kept in before
/// (`--force`) goes.
pub(crate) fn write_ca(
    dir: &Path,
    cert_pem: &str,
    key: NewFile,
    chain_pem: &str,
    force: bool,
) -> Result<(), CliError> {
    // --force over a CA kept in another store: its key file would shadow ours.
    // (The directory swap drops it already; the per-file fallback does not.)
    let stale = store::stale_files(dir, &key);
    let new = vec![
        key,
        NewFile::public(dir.join(CERT_FILE), cert_pem),
        NewFile::public(dir.join(CHAIN_FILE), chain_pem),
    ];
    write(dir, &new, force)?;
    for path in stale {
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(CliError::write(&path, e)),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a directory that already holds a CA (its key, key reference or
/// certificate) unless `force`. Checked early by commands, to fail before
/// any work, and again under the lock by [`write`].
pub(crate) fn refuse_existing(dir: &Path, force: bool) -> Result<(), CliError> {
    if force {
        return Ok(());
    }
    for name in [KEY_FILE, REF_FILE, CERT_FILE] {
        let path = dir.join(name);
        if path.exists() {
            return Err(CliError::Exists { path });
        }
    }
    Ok(())
}

/// Rewrites (`Some`) or removes (`None`) `DIR/aws.json` under DIR's lock,
/// only while `DIR/ca.crt` is still the CA `certificate_id` names: a CA
/// replaced meanwhile (`ca create --force`) never gets the old one's record.
pub(crate) fn record(
    dir: &Path,
    certificate_id: &str,
    contents: Option<Vec<u8>>,
) -> Result<(), CliError> {
    let left = format!("{AWS_FILE} left as it was");
    under_same_ca(dir, certificate_id, &left, |_| {
        let path = dir.join(AWS_FILE);
        match contents {
            Some(bytes) => files::write_all(&[NewFile::public(path, bytes)], true),
            None => match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(CliError::write(&path, e)),
                _ => Ok(()),
            },
        }
    })
}

/// Adds revocations to `DIR/revoked.json` (what `jitr ca crl` signs) under
/// DIR's lock, only while `DIR/ca.crt` is still the CA `certificate_id`
/// names; returns how many were new.
pub(crate) fn record_revoked(
    dir: &Path,
    certificate_id: &str,
    new: &[crate::pki::revoked::Revoked],
) -> Result<usize, CliError> {
    under_same_ca(dir, certificate_id, "revocations not recorded", |real| {
        crate::pki::revoked::add_to(real, new)
    })
}

/// Runs `change` (given DIR's real path) under DIR's lock, only while
/// `DIR/ca.crt` is still the CA `certificate_id` names; otherwise an error
/// that ends with `left` (what was not done).
pub(crate) fn under_same_ca<T>(
    dir: &Path,
    certificate_id: &str,
    left: &str,
    change: impl FnOnce(&Path) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let real = fs::canonicalize(dir).map_err(|e| CliError::read(dir, e))?;
    let _lock = DirLock::acquire_current(&real)?;
    tidy(&real);
    let cert_path = dir.join(CERT_FILE);
    let (_, facts) = ca_files::read_ca_certificate(
        &files::read_limited(&cert_path, files::MAX_PEM)?,
        &cert_path,
    )?;
    if facts.certificate_id != certificate_id {
        return Err(CliError::invalid(
            cert_path.display(),
            format!(
                "was replaced meanwhile (it is now certificate {}, not {certificate_id}); {left}",
                facts.certificate_id
            ),
        ));
    }
    change(&real)
}

/// Locks the CA in `dir` for reading its files, so they all come from one
/// CA even while a writer swaps in another; hold it until they are read.
/// When no other run holds the directory, what killed runs left around it
/// is removed first (a live run's leftovers are that run's to clean).
/// `None` when `dir` cannot be opened: the caller reports that.
pub(crate) fn lock_for_reading(dir: &Path) -> Option<DirLock> {
    let real = fs::canonicalize(dir).ok()?;
    if let Some(lock) = DirLock::try_acquire_current(&real) {
        tidy(&real);
        return Some(lock);
    }
    DirLock::acquire_shared_current(&real).ok()
}

/// Under DIR's lock: removes temp files in DIR and staging siblings. A
/// sibling is either a new CA never swapped in, or the old CA swapped out
/// whose subdirectories may not have been moved back yet.
fn tidy(dir: &Path) {
    files::remove_stale_temps(dir);
    let (Some(parent), Some(prefix)) = (dir.parent(), staging_prefix(dir)) else {
        return;
    };
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let ours = name
            .as_bytes()
            .strip_prefix(prefix.as_bytes())
            .is_some_and(|random| {
                random.len() == RANDOM_LEN && random.iter().all(u8::is_ascii_alphanumeric)
            });
        if !ours || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Some(_held) = DirLock::try_acquire(&path) {
            move_back_subdirs(&path, dir);
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// `.NAME.jitr-ca-`: the names of DIR's staging siblings start with it.
fn staging_prefix(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    Some(format!(".{name}{STAGING_TAG}"))
}

enum Swap {
    /// No staging beside DIR, or no RENAME_EXCHANGE here: nothing changed.
    Unsupported,
    Failed(CliError),
}

/// Builds the new CA beside `dir` and exchanges it with `dir`.
fn swap_in(dir: &Path, new: &[NewFile]) -> Result<(), Swap> {
    let (Some(parent), Some(prefix)) = (dir.parent(), staging_prefix(dir)) else {
        return Err(Swap::Unsupported);
    };
    let staging = tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(RANDOM_LEN)
        .tempdir_in(parent)
        .map_err(|_| Swap::Unsupported)?
        .keep();
    // Held until the old CA is gone: nobody tidies it away from under us.
    let _staging_lock = DirLock::try_acquire(&staging);
    let built = build(&staging, dir, new).and_then(|()| {
        files::exchange(&staging, dir).map_err(|e| {
            // EXDEV, EBUSY: DIR is a mount point.
            if files::unsupported(&e)
                || matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::EBUSY))
            {
                Swap::Unsupported
            } else {
                Swap::Failed(CliError::write(dir, e))
            }
        })
    });
    if let Err(e) = built {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    // Swapped: the new CA is in place whatever follows, so nothing below
    // fails the run; a failed sync only makes the swap less durable.
    let _ = sync_dir(parent);
    // `staging` now holds the old CA.
    move_back_subdirs(&staging, dir);
    let _ = fs::remove_dir_all(&staging);
    Ok(())
}

/// Fills `staging` with the new CA files and hard links to DIR's other
/// files, with DIR's mode; everything synced before the swap.
fn build(staging: &Path, dir: &Path, new: &[NewFile]) -> Result<(), Swap> {
    let failed = |path: &Path| {
        let path = path.to_path_buf();
        move |e| Swap::Failed(CliError::write(&path, e))
    };
    let mode = fs::metadata(dir).map_err(failed(dir))?.permissions().mode();
    fs::set_permissions(staging, fs::Permissions::from_mode(mode & 0o7777)).map_err(failed(dir))?;
    let mut names = Vec::with_capacity(new.len());
    for f in new {
        let name = f.path.file_name().ok_or(Swap::Unsupported)?;
        write_synced(&staging.join(name), &f.contents, f.mode).map_err(failed(&f.path))?;
        names.push(name.to_os_string());
    }
    for entry in fs::read_dir(dir).map_err(failed(dir))? {
        let entry = entry.map_err(failed(dir))?;
        let name = entry.file_name();
        // Files that describe one CA: a new CA never inherits the old one's.
        let owned = ca_files::describes_the_ca(&name)
            || names.contains(&name)
            || name.as_bytes().starts_with(files::TEMP_PREFIX.as_bytes());
        // Subdirectories cannot be linked: they are moved after the swap.
        if owned || entry.file_type().map_err(failed(dir))?.is_dir() {
            continue;
        }
        fs::hard_link(entry.path(), staging.join(&name)).map_err(|e| {
            if e.raw_os_error() == Some(libc::EXDEV) {
                Swap::Unsupported
            } else {
                Swap::Failed(CliError::write(&entry.path(), e))
            }
        })?;
    }
    sync_dir(staging).map_err(failed(dir))
}

/// Moves the subdirectories of `from` that `to` lacks into `to`.
fn move_back_subdirs(from: &Path, to: &Path) {
    let Ok(entries) = fs::read_dir(from) else {
        return;
    };
    for entry in entries.flatten() {
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type().is_ok_and(|t| t.is_dir()) && fs::symlink_metadata(&target).is_err() {
            let _ = files::rename_noreplace(&entry.path(), &target);
        }
    }
}

/// Creates `path` with `mode`, writes and syncs it.
fn write_synced(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    // The umask may have narrowed `mode`: keys stay 0600, certificates 0644.
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.write_all(contents)?;
    f.sync_all()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn ca_files(dir: &Path, tag: &str) -> Vec<NewFile> {
        vec![
            NewFile::secret(dir.join(KEY_FILE), format!("key {tag}")),
            NewFile::public(dir.join(CERT_FILE), format!("crt {tag}")),
            NewFile::public(dir.join(CHAIN_FILE), format!("chain {tag}")),
        ]
    }

    #[test]
    fn a_forced_write_replaces_the_ca_keeps_other_entries_and_drops_the_old_record() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("root");
        write(&dir, &ca_files(&dir, "old"), false).unwrap();
        fs::write(dir.join(AWS_FILE), "old record").unwrap();
        fs::write(dir.join("notes.txt"), "mine").unwrap();
        fs::create_dir(dir.join("archive")).unwrap();
        fs::write(dir.join("archive/x"), "x").unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
        let err = write(&dir, &ca_files(&dir, "new"), false).unwrap_err();
        assert!(matches!(err, CliError::Exists { .. }), "{err}");
        write(&dir, &ca_files(&dir, "new"), true).unwrap();
        assert_eq!(fs::read_to_string(dir.join(KEY_FILE)).unwrap(), "key new");
        assert_eq!(fs::read_to_string(dir.join(CERT_FILE)).unwrap(), "crt new");
        assert_eq!(fs::read_to_string(dir.join("notes.txt")).unwrap(), "mine");
        assert_eq!(fs::read_to_string(dir.join("archive/x")).unwrap(), "x");
        assert_eq!(
            names(&dir),
            ["archive", "ca.crt", "ca.key", "chain.pem", "notes.txt"]
        );
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o750, "the directory keeps its mode");
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert_eq!(names(tmp.path()), ["root"], "no staging left beside it");
    }

    #[test]
    fn a_symlinked_directory_stays_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        let link = tmp.path().join("link");
        fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write(&link, &ca_files(&link, "one"), false).unwrap();
        write(&link, &ca_files(&link, "two"), true).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(fs::read_to_string(real.join(KEY_FILE)).unwrap(), "key two");
        assert_eq!(names(tmp.path()), ["link", "real"]);
    }

    #[test]
    fn what_a_killed_run_left_is_swept_unless_a_live_run_holds_the_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("root");
        write(&dir, &ca_files(&dir, "cur"), false).unwrap();
        // A run killed before its swap, one killed after it (the old CA with
        // a subdirectory not yet moved back), a temp copy of a key.
        let unswapped = tmp.path().join(".root.jitr-ca-AAAAAA");
        let swapped_out = tmp.path().join(".root.jitr-ca-BBbb12");
        fs::create_dir(&unswapped).unwrap();
        fs::write(unswapped.join(KEY_FILE), "key new").unwrap();
        fs::create_dir_all(swapped_out.join("archive")).unwrap();
        fs::write(swapped_out.join(KEY_FILE), "key old").unwrap();
        fs::write(dir.join(".jitr-tmp-x1"), "key copy").unwrap();
        // Another CA's staging, and a name jitr never makes, are not ours.
        fs::create_dir(tmp.path().join(".other.jitr-ca-CCCCCC")).unwrap();
        fs::create_dir(tmp.path().join(".root.jitr-ca-kept.by-me")).unwrap();

        // Another live run reads the CA: a reader shares, never sweeps.
        let held = DirLock::acquire_shared_current(&dir).unwrap();
        assert!(lock_for_reading(&dir).is_some());
        assert!(unswapped.exists() && dir.join(".jitr-tmp-x1").exists());
        drop(held);
        drop(lock_for_reading(&dir));
        assert_eq!(
            names(tmp.path()),
            [".other.jitr-ca-CCCCCC", ".root.jitr-ca-kept.by-me", "root"],
            "both stagings removed"
        );
        assert_eq!(
            names(&dir),
            ["archive", "ca.crt", "ca.key", "chain.pem"],
            "temp removed, the subdirectory moved back"
        );
        assert_eq!(fs::read_to_string(dir.join(KEY_FILE)).unwrap(), "key cur");
    }

    #[test]
    fn the_record_is_written_only_for_the_ca_still_in_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // A real CA certificate: `record` reads its id.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        fs::write(dir.join(CERT_FILE), cert.pem()).unwrap();
        let id = jitr_core::CertFacts::from_der(cert.der())
            .unwrap()
            .certificate_id;
        let err = record(dir, &"0".repeat(64), Some(b"{}".to_vec()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("was replaced meanwhile"), "{err}");
        assert!(!dir.join(AWS_FILE).exists());
        record(dir, &id, Some(b"{}".to_vec())).unwrap();
        assert_eq!(fs::read_to_string(dir.join(AWS_FILE)).unwrap(), "{}");
        record(dir, &id, None).unwrap();
        assert!(!dir.join(AWS_FILE).exists());
    }
}
