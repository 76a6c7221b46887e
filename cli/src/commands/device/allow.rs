//! `jitr device allow --stack STACK (OUTDIR | MANIFEST.csv | CERT...)` and
//! `jitr device disallow`: the stack's allow-list (Admission=allow-list
//! admits only the certificates on it). Every input is read and checked
//! before the list is touched; the list is read first, so a repeated run
//! writes nothing and says so.

use std::path::{Path, PathBuf};

use jitr_core::aws::AwsOptions;

use crate::cloud::allow_list::{AllowListTable, OUTPUT};
use crate::cloud::Cloud;
use crate::error::CliError;
use crate::files;
use crate::issue::manifest::{self, Row};
use crate::issue::progress;
use crate::lifecycle::allow_list::{self, AllowSummary, DisallowSummary, Sorted};
use crate::report::Output;

// The arguments of both `device allow` and `device disallow` (a doc comment
// here would be clap's help text).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// An output directory of `jitr device issue` (its manifest.csv), a
    /// manifest, or device certificate files.
    #[arg(required = true, value_name = "OUTDIR|MANIFEST.csv|CERT")]
    pub(crate) inputs: Vec<PathBuf>,
    /// The CloudFormation stack of infra/ (its output AllowListTableName).
    #[arg(long, value_name = "NAME")]
    pub(crate) stack: String,
    /// Items written per second (a new on-demand DynamoDB table takes
    /// 4,000 writes a second; throttled items are sent again).
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u32).range(25..=40000))]
    pub(crate) rate: u32,
}

/// One input, by what it is on disk.
#[derive(Debug, PartialEq)]
enum Input {
    /// A manifest (OUTDIR/manifest.csv for a directory).
    Manifest(PathBuf),
    Certificate(PathBuf),
}

/// What a run works on.
struct Settings {
    stack: String,
    inputs: Vec<Input>,
    rate: u32,
}

impl Settings {
    /// The flags' one conversion: each input told apart by what it is on disk.
    fn from_args(a: &Args) -> Result<Settings, CliError> {
        let inputs = a
            .inputs
            .iter()
            .map(|p| {
                if p.is_dir() {
                    let m = p.join(manifest::FILE);
                    if !m.is_file() {
                        return Err(CliError::invalid(
                            p.display(),
                            format!(
                                "no {} here: not an output directory of `jitr device issue`",
                                manifest::FILE
                            ),
                        ));
                    }
                    Ok(Input::Manifest(m))
                } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
                    Ok(Input::Manifest(p.clone()))
                } else {
                    Ok(Input::Certificate(p.clone()))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Settings {
            stack: a.stack.clone(),
            inputs,
            rate: a.rate,
        })
    }
}

/// A manifest's rows; a malformed one is an error naming the file and row.
fn read_manifest(path: &Path) -> Result<Vec<Row>, CliError> {
    let text = files::read(path)?;
    let mut reader = csv::Reader::from_reader(text.as_slice());
    reader
        .deserialize::<Row>()
        .enumerate()
        .map(|(i, row)| {
            row.map_err(|e| CliError::invalid(format!("{} row {}", path.display(), i + 1), e))
        })
        .collect()
}

/// Reads every input (nothing is written before all are read).
fn sort(settings: &Settings) -> Result<(Sorted, Vec<String>), CliError> {
    let mut sorted = Sorted::default();
    // Every certificate id named, listed or not (what disallow takes off).
    let mut named = Vec::new();
    let now = jitr_core::clock::unix_seconds();
    for input in &settings.inputs {
        match input {
            Input::Manifest(path) => {
                let rows = read_manifest(path)?;
                named.extend(
                    rows.iter()
                        .map(|r| r.certificate_id.to_ascii_lowercase())
                        .filter(|id| jitr_core::rules::is_certificate_id(id)),
                );
                sorted.add_rows(&rows);
            }
            Input::Certificate(path) => {
                let pem = files::read_limited(path, files::MAX_PEM)?;
                let facts = jitr_core::CertFacts::from_pem(&pem)
                    .map_err(|e| CliError::invalid(path.display(), e))?;
                named.push(facts.certificate_id.clone());
                sorted.add_certificate(path.display().to_string(), &facts, now);
            }
        }
    }
    named.sort();
    named.dedup();
    Ok((sorted, named))
}

/// The stack's allow-list table, from its output.
fn table<'a>(cloud: &'a Cloud, stack: &str) -> Result<AllowListTable<'a>, CliError> {
    cloud
        .stack_allow_list(stack)
        .map_err(|e| CliError::aws(format!("reading stack {stack}"), e))?
        .ok_or_else(|| {
            CliError::invalid(
                "--stack",
                format!("stack {stack} in {} has no output {OUTPUT} (no such stack, or deployed before the allow-list: update it)", cloud.region),
            )
        })
}

/// `jitr device allow`.
pub(crate) fn allow(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let settings = Settings::from_args(a)?;
    let (sorted, _) = sort(&settings)?;
    let cloud = Cloud::connect(aws)?;
    let table = table(&cloud, &settings.stack)?;
    let ids: Vec<String> = sorted
        .candidates
        .iter()
        .map(|c| c.certificate_id.clone())
        .collect();
    let bar = progress::bar(out.chatty(), ids.len(), "checking");
    let held = table
        .held(&ids, |n| bar.inc(n as u64))
        .map_err(|e| CliError::aws(format!("reading allow-list {}", table.table), e))?;
    bar.finish_and_clear();
    let writes = allow_list::writes(sorted.candidates, &held);
    let to_write: Vec<_> = writes.add.iter().chain(&writes.update).cloned().collect();
    let bar = progress::bar(out.chatty(), to_write.len(), "allowing");
    table
        .put(&to_write, settings.rate, |n| bar.inc(n as u64))
        .map_err(|e| CliError::aws(format!("writing allow-list {}", table.table), e))?;
    bar.finish_and_clear();
    let summary = AllowSummary {
        table: table.table.clone(),
        added: writes.add.len(),
        updated: writes.update.len(),
        already_there: writes.already_there,
        refused: sorted.refused,
    };
    out.result(&summary, || {
        let mut text = String::new();
        for r in &summary.refused {
            text += &format!("  refused  {}: {}\n", r.item, r.reason);
        }
        text + &format!(
            "{} added, {} updated, {} already there, {} refused (allow-list {})\n",
            summary.added,
            summary.updated,
            summary.already_there,
            summary.refused.len(),
            summary.table
        )
    });
    Ok(())
}

/// `jitr device disallow`.
pub(crate) fn disallow(a: &Args, aws: &AwsOptions, out: &Output) -> Result<(), CliError> {
    let settings = Settings::from_args(a)?;
    let (sorted, named) = sort(&settings)?;
    let cloud = Cloud::connect(aws)?;
    let table = table(&cloud, &settings.stack)?;
    let bar = progress::bar(out.chatty(), named.len(), "checking");
    let held = table
        .held(&named, |n| bar.inc(n as u64))
        .map_err(|e| CliError::aws(format!("reading allow-list {}", table.table), e))?;
    bar.finish_and_clear();
    let on_list: Vec<String> = named
        .iter()
        .filter(|id| held.contains_key(*id))
        .cloned()
        .collect();
    let bar = progress::bar(out.chatty(), on_list.len(), "disallowing");
    table
        .delete(&on_list, settings.rate, |n| bar.inc(n as u64))
        .map_err(|e| CliError::aws(format!("writing allow-list {}", table.table), e))?;
    bar.finish_and_clear();
    // Only inputs that name no certificate at all are refused here.
    let refused = sorted
        .refused
        .into_iter()
        .filter(|r| r.reason.contains("not 64 hex digits"))
        .collect();
    let summary = DisallowSummary {
        table: table.table.clone(),
        removed: on_list.len(),
        not_there: named.len() - on_list.len(),
        refused,
    };
    out.result(&summary, || {
        format!(
            "{} removed, {} not there, {} refused (allow-list {})\n",
            summary.removed,
            summary.not_there,
            summary.refused.len(),
            summary.table
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_told_apart_and_a_directory_needs_its_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("devices");
        std::fs::create_dir(&out).unwrap();
        let args = |inputs: Vec<PathBuf>| Args {
            inputs,
            stack: "jitr".into(),
            rate: 4000,
        };
        let e = Settings::from_args(&args(vec![out.clone()])).err().unwrap();
        assert!(e.to_string().contains("no manifest.csv here"), "{e}");
        std::fs::write(out.join(manifest::FILE), "").unwrap();
        let s = Settings::from_args(&args(vec![
            out.clone(),
            tmp.path().join("other.CSV"),
            tmp.path().join("robot.crt"),
        ]))
        .unwrap();
        assert_eq!(
            s.inputs,
            [
                Input::Manifest(out.join(manifest::FILE)),
                Input::Manifest(tmp.path().join("other.CSV")),
                Input::Certificate(tmp.path().join("robot.crt")),
            ]
        );
    }
}
