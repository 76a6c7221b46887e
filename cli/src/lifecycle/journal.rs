//! `OUTDIR/rotation-journal.json`: the `jitr device rotate` runs of OUTDIR
//! that have not finished (killed, or stopped by an error). A run adds
//! itself before its first device changes and takes itself out when it
//! ends well; each device it rotates carries the run's id in
//! `NAME/previous/.jitr-run`, swapped in with the device. A later run tells
//! from the two what an unfinished run already did, skips it (even with
//! `--force`: that predecessor may still be in use) and rotates the rest.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::files::{self, NewFile};
use crate::lifecycle::rotation::Selection;

pub(crate) const FILE: &str = "rotation-journal.json";
/// In `NAME/previous/`: the id of the run that made it.
pub(crate) const MARKER: &str = ".jitr-run";

/// One run that has not finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Run {
    pub(crate) run: String,
    /// The CA directory as the run named it, and its certificate's id.
    pub(crate) ca: String,
    pub(crate) ca_certificate_id: String,
    /// `--all`, else the devices it named.
    pub(crate) all: bool,
    #[serde(default)]
    pub(crate) names: Vec<String>,
    pub(crate) started_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Journal {
    runs: Vec<Run>,
}

impl Run {
    pub(crate) fn new(run: String, ca: String, ca_certificate_id: String, s: &Selection) -> Run {
        let (all, names) = match s {
            Selection::All => (true, Vec::new()),
            Selection::Names { names, .. } => (false, names.clone()),
        };
        Run {
            run,
            ca,
            ca_certificate_id,
            all,
            names,
            started_at: jitr_core::facts::rfc3339(jitr_core::clock::unix_seconds()),
        }
    }

    /// Whether `finished` (a run that ended well) did all this run set out
    /// to do: same CA, and every device this one would rotate was selected
    /// by `finished` (which rotated it, or found it rotated by this one).
    fn done_by(&self, finished: &Run) -> bool {
        self.ca_certificate_id == finished.ca_certificate_id
            && (finished.all || !self.all && self.names.iter().all(|n| finished.names.contains(n)))
    }
}

/// The runs left once `finished` ended well: it, and every run it completed.
pub(crate) fn after(runs: &[Run], finished: &Run) -> Vec<Run> {
    runs.iter()
        .filter(|r| r.run != finished.run && !r.done_by(finished))
        .cloned()
        .collect()
}

/// The unfinished runs of `out` (none when there is no journal).
pub(crate) fn read(out: &Path) -> Result<Vec<Run>, CliError> {
    let path = out.join(FILE);
    match path.try_exists() {
        Ok(false) => return Ok(Vec::new()),
        Err(e) => return Err(CliError::read(&path, e)),
        Ok(true) => {}
    }
    let journal: Journal = serde_json::from_slice(&files::read(&path)?).map_err(|e| {
        CliError::invalid(
            path.display(),
            format!("not a rotation journal ({e}); expected {{\"runs\": [...]}} as `jitr device rotate` writes"),
        )
    })?;
    Ok(journal.runs)
}

/// Replaces the journal of `out` with `runs` (atomically; removed when
/// empty). The caller holds the lock on `out`.
pub(crate) fn write(out: &Path, runs: &[Run]) -> Result<(), CliError> {
    let path = out.join(FILE);
    if runs.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CliError::write(&path, e)),
            _ => Ok(()),
        };
    }
    let mut text = serde_json::to_string_pretty(&Journal {
        runs: runs.to_vec(),
    })
    .expect("runs serialize");
    text.push('\n');
    files::write_all(&[NewFile::public(path, text)], true)
}

/// The id of the run that made the predecessor in `dir/previous/`, if one recorded it.
pub(crate) fn rotated_by(previous: &Path) -> Option<String> {
    let bytes = files::read_limited(&previous.join(MARKER), 256).ok()?;
    Some(String::from_utf8_lossy(&bytes).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, ca: &str, names: Option<&[&str]>) -> Run {
        Run {
            run: id.into(),
            ca: ca.into(),
            ca_certificate_id: ca.into(),
            all: names.is_none(),
            names: names
                .unwrap_or_default()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            started_at: String::new(),
        }
    }

    fn ids(runs: &[Run]) -> Vec<&str> {
        runs.iter().map(|r| r.run.as_str()).collect()
    }

    #[test]
    fn a_run_that_ends_well_takes_out_itself_and_the_runs_it_completed() {
        let runs = [
            run("all", "ca", None),
            run("ab", "ca", Some(&["a", "b"])),
            run("other", "ca2", Some(&["a"])),
            run("me", "ca", Some(&["a"])),
        ];
        // (the run that ended well, the runs left)
        let cases: [(Run, &[&str]); 4] = [
            (run("me", "ca", Some(&["a"])), &["all", "ab", "other"]),
            (run("me", "ca", Some(&["a", "b", "c"])), &["all", "other"]),
            (run("me", "ca", None), &["other"]),
            (run("x", "ca2", None), &["all", "ab", "me"]),
        ];
        for (finished, left) in cases {
            assert_eq!(ids(&after(&runs, &finished)), left, "{finished:?}");
        }
    }

    #[test]
    fn the_journal_is_written_read_and_removed_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        assert!(read(out).unwrap().is_empty());
        let runs = vec![run("r1", "ca", None), run("r2", "ca", Some(&["a"]))];
        write(out, &runs).unwrap();
        assert_eq!(read(out).unwrap(), runs);
        write(out, &[]).unwrap();
        assert!(!out.join(FILE).exists());
        write(out, &[]).unwrap();
        std::fs::write(out.join(FILE), "[]").unwrap();
        let err = read(out).unwrap_err().to_string();
        assert!(
            err.contains("rotation-journal.json: not a rotation journal"),
            "{err}"
        );
    }
}
