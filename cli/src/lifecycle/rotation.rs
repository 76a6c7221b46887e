//! Which devices `jitr device rotate` gives a successor certificate, decided
//! before anything is written: every named device must be in OUTDIR and
//! issued by the CA; a device that already holds a predecessor in
//! `previous/` is rotated again only with `--force` (which drops that older
//! predecessor, key included), unless a run that has not finished made that
//! predecessor: then the device is done and is never rotated again by a
//! later run of the same job (see [`crate::lifecycle::journal`]).

use jitr_core::KeyKind;

use crate::error::CliError;
use crate::pki::keys::KeyAlg;

/// A device directory found in OUTDIR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnDisk {
    pub name: String,
    /// `NAME/previous/` holds a predecessor from an earlier rotation.
    pub has_previous: bool,
    /// Its current certificate was issued by the rotating CA.
    pub ours: bool,
    /// The run that made `previous/`, when that run recorded itself there.
    pub rotated_by: Option<String>,
}

/// What the command line asked to rotate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// `--name` or `--names FILE`; `flag` names where they came from.
    Names { names: Vec<String>, flag: String },
    /// `--all`: every device of the CA in OUTDIR.
    All,
}

/// The devices to rotate, those `--all` left alone (another CA's), and
/// those an unfinished run already rotated.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub rotate: Vec<String>,
    pub other_ca: Vec<String>,
    pub finished_earlier: Vec<String>,
}

/// Decides what to rotate; `unfinished` are the ids of runs that did not
/// finish; `out` and `ca` name OUTDIR and the CA in errors.
pub fn plan(
    selection: &Selection,
    disk: &[OnDisk],
    force: bool,
    unfinished: &[String],
    out: &str,
    ca: &str,
) -> Result<Plan, CliError> {
    let earlier = |d: &OnDisk| {
        d.has_previous
            && d.rotated_by
                .as_ref()
                .is_some_and(|run| unfinished.contains(run))
    };
    let again = |d: &OnDisk| {
        CliError::invalid(
            format!("{out}/{}", d.name),
            format!("was rotated before and {}/previous/ still holds its predecessor (the device may still use it); pass --force to drop that one and rotate again", d.name),
        )
    };
    let mut plan = Plan::default();
    match selection {
        Selection::All => {
            for d in disk {
                if !d.ours {
                    plan.other_ca.push(d.name.clone());
                } else if earlier(d) {
                    plan.finished_earlier.push(d.name.clone());
                } else if d.has_previous && !force {
                    return Err(again(d));
                } else {
                    plan.rotate.push(d.name.clone());
                }
            }
            if plan.rotate.is_empty() && plan.finished_earlier.is_empty() {
                return Err(CliError::invalid(
                    "--all",
                    format!("{out} holds no device issued by the CA {ca}"),
                ));
            }
        }
        Selection::Names { names, flag } => {
            for name in names {
                let Some(d) = disk.iter().find(|d| &d.name == name) else {
                    return Err(CliError::invalid(
                        format!("{flag} {name}"),
                        format!("no device \"{name}\" in {out} (expected a directory made by `jitr device issue`)"),
                    ));
                };
                if !d.ours {
                    return Err(CliError::invalid(
                        format!("{flag} {name}"),
                        format!("{out}/{name} was not issued by the CA {ca}"),
                    ));
                }
                if earlier(d) {
                    plan.finished_earlier.push(name.clone());
                } else if d.has_previous && !force {
                    return Err(again(d));
                } else {
                    plan.rotate.push(name.clone());
                }
            }
        }
    }
    Ok(plan)
}

/// The key type of a successor: the predecessor's (`None` when jitr cannot
/// generate such a key; then `--key` chooses).
pub fn same_key(kind: &KeyKind) -> Option<KeyAlg> {
    match kind {
        KeyKind::EcP256 => Some(KeyAlg::EcP256),
        KeyKind::EcP384 => Some(KeyAlg::EcP384),
        KeyKind::Rsa { bits: 2048 } => Some(KeyAlg::Rsa2048),
        KeyKind::Rsa { bits: 3072 } => Some(KeyAlg::Rsa3072),
        KeyKind::Rsa { bits: 4096 } => Some(KeyAlg::Rsa4096),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str, has_previous: bool, ours: bool) -> OnDisk {
        OnDisk {
            name: name.into(),
            has_previous,
            ours,
            rotated_by: has_previous.then(|| "old-run".into()),
        }
    }

    fn names(n: &[&str]) -> Selection {
        Selection::Names {
            names: n.iter().map(|s| s.to_string()).collect(),
            flag: "--name".into(),
        }
    }

    #[test]
    fn what_is_rotated() {
        let disk = [
            d("a", false, true),
            d("b", true, true),
            d("x", false, false),
        ];
        // (selection, force, rotated, left to another CA, or the error's words)
        type Expected = Result<(&'static [&'static str], &'static [&'static str]), &'static str>;
        let cases: [(Selection, bool, Expected); 8] = [
            (names(&["a"]), false, Ok((&["a"], &[]))),
            (names(&["b"]), false, Err("pass --force to drop that one")),
            (names(&["b"]), true, Ok((&["b"], &[]))),
            (
                names(&["zz"]),
                false,
                Err("--name zz: no device \"zz\" in out"),
            ),
            (
                names(&["x"]),
                true,
                Err("out/x was not issued by the CA ca"),
            ),
            (names(&["a", "zz"]), false, Err("no device \"zz\"")),
            (Selection::All, false, Err("out/b: was rotated before")),
            (Selection::All, true, Ok((&["a", "b"], &["x"]))),
        ];
        for (sel, force, expected) in cases {
            let got = plan(&sel, &disk, force, &[], "out", "ca");
            match expected {
                Ok((rotate, other)) => {
                    let p = got.unwrap_or_else(|e| panic!("{sel:?}: {e}"));
                    assert_eq!(p.rotate, rotate, "{sel:?}");
                    assert_eq!(p.other_ca, other, "{sel:?}");
                }
                Err(words) => {
                    let e = got.unwrap_err().to_string();
                    assert!(e.contains(words), "{sel:?}: {e}");
                }
            }
        }
        let err = plan(
            &Selection::All,
            &[d("x", false, false)],
            false,
            &[],
            "out",
            "ca",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("holds no device issued by the CA ca"), "{err}");
    }

    #[test]
    fn what_an_unfinished_run_rotated_is_done_even_with_force() {
        let mut killed = d("k", true, true);
        killed.rotated_by = Some("killed".into());
        let disk = [d("a", false, true), killed, d("b", true, true)];
        let unfinished = ["killed".to_string()];
        let p = plan(&Selection::All, &disk[..2], false, &unfinished, "out", "ca").unwrap();
        assert_eq!(p.rotate, ["a"]);
        assert_eq!(p.finished_earlier, ["k"]);
        // b's predecessor is from a finished run: --force as ever.
        let err = plan(&Selection::All, &disk, false, &unfinished, "out", "ca").unwrap_err();
        assert!(
            err.to_string().contains("out/b: was rotated before"),
            "{err}"
        );
        let p = plan(&Selection::All, &disk, true, &unfinished, "out", "ca").unwrap();
        assert_eq!(p.rotate, ["a", "b"]);
        assert_eq!(p.finished_earlier, ["k"]);
        let p = plan(&names(&["k"]), &disk, false, &unfinished, "out", "ca").unwrap();
        assert!(p.rotate.is_empty() && p.finished_earlier == ["k"]);
        // Once that run is finished, k is a device rotated before.
        let err = plan(&names(&["k"]), &disk, false, &[], "out", "ca").unwrap_err();
        assert!(err.to_string().contains("was rotated before"), "{err}");
        // Nothing left to rotate, but an unfinished run to finish: not an error.
        let p = plan(
            &Selection::All,
            &disk[1..2],
            false,
            &unfinished,
            "out",
            "ca",
        )
        .unwrap();
        assert!(p.rotate.is_empty() && p.finished_earlier == ["k"]);
    }

    #[test]
    fn the_successor_keeps_the_key_type() {
        assert_eq!(same_key(&KeyKind::EcP256), Some(KeyAlg::EcP256));
        assert_eq!(same_key(&KeyKind::EcP384), Some(KeyAlg::EcP384));
        assert_eq!(
            same_key(&KeyKind::Rsa { bits: 3072 }),
            Some(KeyAlg::Rsa3072)
        );
        assert_eq!(same_key(&KeyKind::Rsa { bits: 1024 }), None);
        assert_eq!(same_key(&KeyKind::EcP521), None);
    }
}
