//! Where a run builds devices before they appear in OUTDIR: one private
//! directory per run, `OUTDIR/.jitr-run-XXXXXX/`, locked (`flock`) for as
//! long as the run lives. A device is built there whole and moved to
//! `OUTDIR/NAME` in one atomic step that never replaces a device another run
//! placed meanwhile (unless `--force`). The next run removes what a killed
//! run left: a run directory nobody holds the lock of.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::files::{self, DirLock};

const RUN_PREFIX: &str = ".jitr-run-";
/// Where the no-`renameat2` fallback parks the device it replaces (a dot:
/// never the start of a device name).
const RETIRED_PREFIX: &str = ".old-";
/// Left by versions before run directories; `NAME` is after the second dash.
const LEGACY_RETIRED: &str = ".jitr-old-";
/// Mode of device directories, whatever the umask: readable, not writable, by others.
pub(crate) const DEVICE_DIR_MODE: u32 = 0o755;

/// What placing a device did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// There was no device of that name.
    New,
    /// An existing device was replaced (`--force`).
    Replaced,
    /// Another run placed a device of that name meanwhile; it was kept.
    Existed,
}

/// This run's staging directory and the lock that says it is alive.
pub(crate) struct Staging {
    out: PathBuf,
    root: PathBuf,
    _alive: DirLock,
}

impl Staging {
    /// Cleans up after killed runs, then creates this run's directory in
    /// `out`; both under the lock on `out`, so no other run can take the new
    /// directory for a dead one before its lock is held.
    pub(crate) fn open(out: &Path) -> Result<Self, CliError> {
        let _out_lock = DirLock::acquire(out)?;
        recover(out);
        let root = tempfile::Builder::new()
            .prefix(RUN_PREFIX)
            .tempdir_in(out)
            .map_err(|e| CliError::write(out, e))?
            .keep();
        let alive = DirLock::acquire(&root)?;
        Ok(Staging {
            out: out.to_path_buf(),
            root,
            _alive: alive,
        })
    }

    /// This run's name among the runs of OUTDIR (its directory's random part).
    pub(crate) fn id(&self) -> String {
        let name = self.root.file_name().unwrap_or_default().to_string_lossy();
        name.strip_prefix(RUN_PREFIX).unwrap_or(&name).to_string()
    }

    /// Writes a device's files into a fresh directory here, then moves it to
    /// `OUTDIR/NAME`: without `force` only if no such device exists at that
    /// instant; with `force` swapping it for the existing one.
    pub(crate) fn place(
        &self,
        name: &str,
        contents: &[(&str, &[u8], u32)],
        force: bool,
    ) -> Result<Placed, CliError> {
        let staged = self.stage(name, contents)?;
        self.commit(name, &staged, force)
    }

    /// Writes a device's files into a fresh directory here and returns it,
    /// for the caller to add to before [`Staging::commit`].
    pub fn stage(&self, name: &str, contents: &[(&str, &[u8], u32)]) -> Result<PathBuf, CliError> {
        let staged = self.root.join(name);
        let target = self.out.join(name);
        let fail = |path: &Path, e| {
            let _ = fs::remove_dir_all(&staged);
            CliError::write(path, e)
        };
        fs::DirBuilder::new()
            .mode(DEVICE_DIR_MODE)
            .create(&staged)
            .map_err(|e| fail(&target, e))?;
        for (file, bytes, mode) in contents {
            files::write_new(&staged.join(file), bytes, *mode)
                .map_err(|e| fail(&target.join(file), e))?;
        }
        Ok(staged)
    }

    /// Moves a staged device to `OUTDIR/NAME`: without `force` only if no
    /// such device exists at that instant; with `force` swapping it for the
    /// existing one.
    pub fn commit(&self, name: &str, staged: &Path, force: bool) -> Result<Placed, CliError> {
        let target = self.out.join(name);
        let fail = |path: &Path, e| {
            let _ = fs::remove_dir_all(staged);
            CliError::write(path, e)
        };
        if !force {
            return match files::rename_noreplace(staged, &target) {
                Ok(()) => Ok(Placed::New),
                Err(e) if files::is_exists(&e) => {
                    let _ = fs::remove_dir_all(staged);
                    Ok(Placed::Existed)
                }
                Err(e) => Err(fail(&target, e)),
            };
        }
        // --force: swap with the existing device (then `staged` holds the old
        // one), or place it when there is none; retry if one appears between.
        for _ in 0..16 {
            match files::exchange(staged, &target) {
                Ok(()) => {
                    let _ = fs::remove_dir_all(staged);
                    return Ok(Placed::Replaced);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match files::rename_noreplace(staged, &target) {
                        Ok(()) => return Ok(Placed::New),
                        Err(e) if files::is_exists(&e) => continue,
                        Err(e) => return Err(fail(&target, e)),
                    }
                }
                Err(e) if files::unsupported(&e) => return self.replace_fallback(name, staged),
                Err(e) => return Err(fail(&target, e)),
            }
        }
        Err(fail(
            &target,
            std::io::Error::other("other runs keep replacing this device"),
        ))
    }

    /// `--force` where the filesystem cannot swap: park the old device in
    /// this run's directory (put back by [`recover`] if the run dies before
    /// the new one lands), then move the new one in.
    fn replace_fallback(&self, name: &str, staged: &Path) -> Result<Placed, CliError> {
        let target = self.out.join(name);
        let retired = self.root.join(format!("{RETIRED_PREFIX}{name}"));
        let replaced = match fs::rename(&target, &retired) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(CliError::write(&target, e)),
        };
        files::rename_noreplace(staged, &target).map_err(|e| CliError::write(&target, e))?;
        let _ = fs::remove_dir_all(&retired);
        Ok(if replaced {
            Placed::Replaced
        } else {
            Placed::New
        })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// Removes what killed runs left in `out` (caller holds the lock on `out`):
/// run directories whose lock nobody holds (a parked device whose
/// replacement never landed is put back first), and `write_all`'s temp
/// files beside the manifest.
fn recover(out: &Path) {
    let Ok(entries) = fs::read_dir(out) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.starts_with(RUN_PREFIX) {
            let Some(lock) = DirLock::try_acquire(&path) else {
                continue; // a live run owns it
            };
            put_back_retired(out, &path);
            drop(lock);
            let _ = fs::remove_dir_all(&path);
        } else if let Some(rest) = name.strip_prefix(LEGACY_RETIRED) {
            match rest.split_once('-') {
                Some((_, device)) if !out.join(device).exists() => {
                    let _ = files::rename_noreplace(&path, &out.join(device));
                }
                _ => {
                    let _ = fs::remove_dir_all(&path);
                }
            }
        } else if name.starts_with(files::TEMP_PREFIX) {
            // Manifest temp files, or staging directories of versions before
            // run directories; every run now writes them under the lock on `out`.
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
    }
}

fn put_back_retired(out: &Path, run: &Path) {
    let Ok(entries) = fs::read_dir(run) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(device) = name.strip_prefix(RETIRED_PREFIX) {
            let _ = files::rename_noreplace(&entry.path(), &out.join(device));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(out: &Path, name: &str) -> String {
        fs::read_to_string(out.join(name).join("device.crt")).unwrap_or_default()
    }

    fn hidden(out: &Path) -> Vec<String> {
        fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    }

    #[test]
    fn placing_keeps_or_swaps_and_cleans_up() {
        let out = tempfile::tempdir().unwrap();
        let out = out.path();
        let staging = Staging::open(out).unwrap();
        let put = |text: &str, force| {
            staging.place("d", &[("device.crt", text.as_bytes(), 0o644)], force)
        };
        assert_eq!(put("one", false).unwrap(), Placed::New);
        assert_eq!(put("two", false).unwrap(), Placed::Existed);
        assert_eq!(device(out, "d"), "one", "kept without force");
        assert_eq!(put("three", true).unwrap(), Placed::Replaced);
        assert_eq!(device(out, "d"), "three");
        assert_eq!(
            staging
                .replace_fallback("d", &{
                    let s = staging.root.join("d");
                    fs::create_dir(&s).unwrap();
                    fs::write(s.join("device.crt"), "four").unwrap();
                    s
                })
                .unwrap(),
            Placed::Replaced
        );
        assert_eq!(device(out, "d"), "four");
        assert_eq!(fs::read_dir(&staging.root).unwrap().count(), 0);
        drop(staging);
        assert!(hidden(out).is_empty(), "{:?}", hidden(out));
    }

    #[test]
    fn a_dead_runs_parked_device_is_put_back() {
        let out = tempfile::tempdir().unwrap();
        let out = out.path();
        // A run killed between parking "d" and moving its replacement in.
        let dead = out.join(".jitr-run-dead00");
        fs::create_dir_all(dead.join(".old-d")).unwrap();
        fs::write(dead.join(".old-d/device.crt"), "old").unwrap();
        fs::create_dir_all(dead.join("d")).unwrap();
        fs::write(dead.join("d/device.crt"), "half").unwrap();
        fs::write(out.join(".jitr-tmp-manifest"), "partial").unwrap();
        let staging = Staging::open(out).unwrap();
        assert_eq!(device(out, "d"), "old");
        assert_eq!(
            hidden(out).len(),
            1,
            "only this run's directory: {:?}",
            hidden(out)
        );
        drop(staging);
    }
}
