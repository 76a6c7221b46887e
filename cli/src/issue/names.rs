//! Which devices to issue: a name template, a names file (plain or CSV), or one name.

use std::path::Path;

use crate::error::CliError;
use crate::pki::subject::{self, Attribute};

/// One device to issue: its name (subject CN, future thing name) and any
/// per-device subject attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub name: String,
    pub subject: Vec<Attribute>,
}

impl DeviceSpec {
    pub(crate) fn named(name: impl Into<String>) -> Self {
        DeviceSpec {
            name: name.into(),
            subject: Vec::new(),
        }
    }
}

/// Checks a device name: it becomes the thing name, so it must be one.
pub(crate) fn check_name(name: &str, what: &str) -> Result<(), CliError> {
    if jitr_core::rules::is_thing_name(name) {
        Ok(())
    } else {
        Err(CliError::invalid(
            what,
            format!("\"{name}\" is not a valid thing name (expected 1-128 characters of a-z A-Z 0-9 : _ -)"),
        ))
    }
}

/// A parsed `--name-template` such as `robot-{n:05}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    prefix: String,
    width: usize,
    suffix: String,
}

impl Template {
    /// Parses a template with exactly one `{n}` or `{n:0W}` placeholder.
    pub fn parse(text: &str) -> Result<Self, CliError> {
        let bad = |why: &str| {
            CliError::invalid(
                "--name-template",
                format!("\"{text}\": {why} (expected one {{n}} or {{n:0W}} placeholder, e.g. 'robot-{{n:05}}')"),
            )
        };
        let open = text.find('{').ok_or_else(|| bad("no placeholder"))?;
        let close = text[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or_else(|| bad("unclosed '{'"))?;
        let (prefix, inner, suffix) = (&text[..open], &text[open + 1..close], &text[close + 1..]);
        if suffix.contains(['{', '}']) || prefix.contains('}') {
            return Err(bad("more than one placeholder"));
        }
        let width = match inner {
            "n" => 0,
            _ => {
                let spec = inner
                    .strip_prefix("n:")
                    .ok_or_else(|| bad(&format!("unknown placeholder {{{inner}}}")))?;
                // As in Rust's and Python's format strings, a width without
                // the 0 pads with spaces, which no thing name may contain:
                // refused rather than read as the zero padding it is not.
                let Some(digits) = spec.strip_prefix('0') else {
                    return Err(CliError::invalid(
                        "--name-template",
                        format!("\"{text}\": {{n:{spec}}} would pad with spaces, which a thing name cannot contain; write {{n:0{spec}}} for zero padding (e.g. 'robot-{{n:0{spec}}}')"),
                    ));
                };
                digits
                    .parse::<usize>()
                    .ok()
                    .filter(|w| *w <= 20)
                    .ok_or_else(|| bad(&format!("bad width \"{spec}\"")))?
            }
        };
        let t = Template {
            prefix: prefix.into(),
            width,
            suffix: suffix.into(),
        };
        check_name(&t.render(1), "--name-template")?;
        Ok(t)
    }

    /// The name for number `n`.
    pub(crate) fn render(&self, n: u64) -> String {
        format!(
            "{}{:0width$}{}",
            self.prefix,
            n,
            self.suffix,
            width = self.width
        )
    }
}

/// The devices of `--count N --name-template T --start S`.
pub fn from_template(
    template: &Template,
    start: u64,
    count: u64,
) -> Result<Vec<DeviceSpec>, CliError> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let last = start.checked_add(count - 1).ok_or_else(|| {
        CliError::invalid(
            "--start",
            format!(
                "{start} + {count} devices goes past the largest number, {}",
                u64::MAX
            ),
        )
    })?;
    let specs: Vec<DeviceSpec> = (start..=last)
        .map(|n| DeviceSpec::named(template.render(n)))
        .collect();
    if let Some(last) = specs.last() {
        check_name(&last.name, "--name-template")?;
    }
    Ok(specs)
}

/// Reads `--names FILE`: one name per line (blank lines and `#` comments
/// skipped), or CSV whose header has a `name` column and optional subject
/// columns (O, OU, C, ST, L, serialNumber, dnQualifier).
pub(crate) fn from_file(path: &Path) -> Result<Vec<DeviceSpec>, CliError> {
    let text = String::from_utf8(crate::files::read(path)?)
        .map_err(|_| CliError::invalid(path.display(), "not UTF-8 text"))?;
    from_text(&text, path)
}

/// Parses the text of a names file; `path` names it in errors (the fuzz
/// target's entry point, no file needed).
pub fn from_text(text: &str, path: &Path) -> Result<Vec<DeviceSpec>, CliError> {
    // Excel and Notepad start UTF-8 files with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .unwrap_or("");
    let is_csv = first
        .split(',')
        .any(|c| c.trim().eq_ignore_ascii_case("name"));
    let specs = if is_csv {
        from_csv(text, path)?
    } else {
        from_lines(text, path)?
    };
    if specs.is_empty() {
        return Err(CliError::invalid(path.display(), "no device names found"));
    }
    let mut seen = std::collections::HashSet::new();
    for s in &specs {
        if !seen.insert(s.name.as_str()) {
            return Err(CliError::invalid(
                path.display(),
                format!("device \"{}\" is listed twice", s.name),
            ));
        }
    }
    Ok(specs)
}

fn from_lines(text: &str, path: &Path) -> Result<Vec<DeviceSpec>, CliError> {
    let mut specs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() || name.starts_with('#') {
            continue;
        }
        check_name(name, &format!("{} line {}", path.display(), i + 1))?;
        specs.push(DeviceSpec::named(name));
    }
    Ok(specs)
}

fn from_csv(text: &str, path: &Path) -> Result<Vec<DeviceSpec>, CliError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| CliError::invalid(path.display(), e))?
        .clone();
    let mut name_col = None;
    let mut columns: Vec<(usize, &'static str)> = Vec::new();
    let twice = |h: &str| {
        CliError::invalid(
            path.display(),
            format!("column \"{h}\" appears twice in the header (expected each column once)"),
        )
    };
    for (i, h) in headers.iter().enumerate() {
        if h.eq_ignore_ascii_case("name") {
            if name_col.replace(i).is_some() {
                return Err(twice(h));
            }
        } else if let Some(attr) = subject::canonical_name(h).filter(|a| *a != "CN") {
            if columns.iter().any(|(_, a)| *a == attr) {
                return Err(twice(h));
            }
            columns.push((i, attr));
        } else {
            return Err(CliError::invalid(
                path.display(),
                format!("unknown column \"{h}\" (expected name, O, OU, C, ST, L, serialNumber, dnQualifier)"),
            ));
        }
    }
    // The plain/CSV guess reads lines as Rust does; the CSV reader also ends
    // records at a lone '\r', so its header may lack the column (fuzzing).
    let name_col = name_col.ok_or_else(|| {
        CliError::invalid(path.display(), "the CSV header has no \"name\" column")
    })?;
    let mut specs = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record =
            record.map_err(|e| CliError::invalid(format!("{} line {line}", path.display()), e))?;
        let name = record.get(name_col).unwrap_or("").to_string();
        check_name(&name, &format!("{} line {line}", path.display()))?;
        let mut spec = DeviceSpec::named(name);
        for (col, attr) in &columns {
            match record.get(*col) {
                Some(v) if !v.is_empty() => {
                    spec.subject.push(subject::validated(attr, v).map_err(|e| {
                        CliError::invalid(format!("{} line {line}", path.display()), e)
                    })?)
                }
                _ => {}
            }
        }
        specs.push(spec);
    }
    Ok(specs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = Template::parse("robot-{n:05}").unwrap();
        assert_eq!(t.render(7), "robot-00007");
        assert_eq!(t.render(123456), "robot-123456");
        assert_eq!(Template::parse("d{n}").unwrap().render(42), "d42");
        assert_eq!(Template::parse("{n:03}-x").unwrap().render(5), "005-x");
        // A width without the 0 pads with spaces in format strings: refused, naming the fix.
        let err = Template::parse("robot-{n:5}").unwrap_err().to_string();
        assert!(
            err.contains("{n:5}") && err.contains("spaces") && err.contains("{n:05}"),
            "{err}"
        );
        for bad in [
            "robot",
            "robot-{x}",
            "robot-{n:abc}",
            "r{n}{n}",
            "bad name {n}",
            "r{n",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        let err = Template::parse("robot").unwrap_err().to_string();
        assert!(err.starts_with("--name-template:"), "{err}");
    }

    #[test]
    fn numbered_run() {
        let t = Template::parse("r-{n:03}").unwrap();
        let names: Vec<_> = from_template(&t, 9, 3)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["r-009", "r-010", "r-011"]);
    }

    #[test]
    fn a_run_may_end_at_the_largest_number() {
        let t = Template::parse("r{n}").unwrap();
        let names: Vec<_> = from_template(&t, u64::MAX - 1, 2)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(
            names,
            [format!("r{}", u64::MAX - 1), format!("r{}", u64::MAX)]
        );
        let err = from_template(&t, u64::MAX - 1, 3).unwrap_err().to_string();
        assert!(err.starts_with("--start:"), "{err}");
        assert_eq!(from_template(&t, u64::MAX, 1).unwrap().len(), 1);
    }

    #[test]
    fn csv_with_a_byte_order_mark_and_duplicate_columns() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("excel.csv");
        std::fs::write(&csv, "\u{feff}name,O\r\nalpha,Acme\r\n").unwrap();
        let specs = from_file(&csv).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].name, "alpha");
        assert_eq!(specs[0].subject[0].value, "Acme");
        let plain = dir.path().join("names.txt");
        std::fs::write(&plain, "\u{feff}alpha\nbeta\n").unwrap();
        assert_eq!(from_file(&plain).unwrap()[0].name, "alpha");
        for header in ["name,O,o", "name,Name,O", "name,serialNumber,SERIALNUMBER"] {
            std::fs::write(&csv, format!("{header}\na,b,c\n")).unwrap();
            let err = from_file(&csv).unwrap_err().to_string();
            assert!(err.contains("appears twice"), "{header}: {err}");
        }
        std::fs::write(&csv, "name,O\na,\"x\u{0}y\"\n").unwrap();
        let err = from_file(&csv).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("control character"),
            "{err}"
        );
    }

    #[test]
    fn names_files_plain_and_csv() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("names.txt");
        std::fs::write(&plain, "# line 3\nalpha\n\n beta \n").unwrap();
        let names: Vec<_> = from_file(&plain)
            .unwrap()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["alpha", "beta"]);

        let csv = dir.path().join("names.csv");
        std::fs::write(
            &csv,
            "name,O,serialNumber\nalpha,\"Acme, Inc.\",SN1\nbeta,,SN2\n",
        )
        .unwrap();
        let specs = from_file(&csv).unwrap();
        assert_eq!(specs[0].subject.len(), 2);
        assert_eq!(specs[0].subject[0].value, "Acme, Inc.");
        assert_eq!(specs[1].subject.len(), 1);

        std::fs::write(&csv, "name,colour\nalpha,red\n").unwrap();
        assert!(from_file(&csv)
            .unwrap_err()
            .to_string()
            .contains("unknown column \"colour\""));
        std::fs::write(&plain, "ok\nnot ok\n").unwrap();
        let err = from_file(&plain).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains("not a valid thing name"),
            "{err}"
        );
        std::fs::write(&plain, "a\na\n").unwrap();
        assert!(from_file(&plain)
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
    }

    #[test]
    fn csv_header_cut_by_a_lone_cr_is_an_error() {
        // Fuzzing found this panicking: a lone CR ends the CSV header
        // before the name column the line-based guess saw.
        let err = from_text("O\r,name\nalpha\n", Path::new("n.csv"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("n.csv: the CSV header has no \"name\" column"),
            "{err}"
        );
    }
}
