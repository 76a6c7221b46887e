//! The book's table of doctor's checks (docs/src/guide/troubleshooting.md)
//! names every check `jitr doctor` can print, and only those. The names
//! come from `cli/src/doctor/checks.rs`, which the CLI's own unit test
//! holds to every check its sources build.

use std::collections::BTreeSet;
use std::path::Path;

include!("../../cli/src/doctor/checks.rs");

/// The backticked names in the first cell of each row of the table under
/// "## What it checks".
fn table_names(page: &str) -> BTreeSet<String> {
    let section = page
        .split("## What it checks")
        .nth(1)
        .expect("troubleshooting.md has a '## What it checks' section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut names = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with('|')) {
        let first = row.split('|').nth(1).unwrap_or_default();
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 1 {
                names.insert(part.to_string());
            }
        }
    }
    names
}

#[test]
fn the_troubleshooting_table_lists_every_check_doctor_prints_and_no_other() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/guide/troubleshooting.md");
    let page = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let documented = table_names(&page);
    let produced: BTreeSet<String> = CHECKS.iter().map(|s| s.to_string()).collect();
    let undocumented: Vec<_> = produced.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&produced).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "{}: checks doctor prints but the table lacks: {undocumented:?}; rows naming no check doctor prints: {unknown:?}",
        path.display()
    );
}

#[test]
fn table_names_come_from_the_first_cell_only() {
    let page = "## What it checks\n\n| check | when | fix |\n|---|---|---|\n| `a`, `b` (WARN) | `c` | `d` |\n\n## Next\n| `e` | | |\n";
    let names: Vec<_> = table_names(page).into_iter().collect();
    assert_eq!(names, ["a", "b"]);
}
