//! `jitr` as an installed tool: its version names HEAD's commit, completions
//! for each shell, man pages for every subcommand, examples in every --help;
//! the subcommands are read from the binary's own help, not listed here.

use jitr_tests::jitr;

/// The names in a help text's `Commands:` section (clap's own `help`
/// aside): entries start two spaces in, their wrapped descriptions further.
fn commands_section(help: &str) -> Vec<String> {
    let Some((_, section)) = help.split_once("\nCommands:\n") else {
        return Vec::new();
    };
    section
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every subcommand path below `path`, depth first, as `jitr PATH... --help`
/// lists them: the command definition read through the binary, so a
/// subcommand added later is checked without editing this file.
fn subcommands_below(cwd: &std::path::Path, path: &[String]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let help = jitr(cwd, &args).success().to_string();
    let mut paths = Vec::new();
    for name in commands_section(&help) {
        let mut sub = path.to_vec();
        sub.push(name);
        paths.push(sub.clone());
        paths.extend(subcommands_below(cwd, &sub));
    }
    paths
}

/// Every subcommand path of `jitr` (groups such as `ca` and their commands).
fn subcommands(cwd: &std::path::Path) -> Vec<Vec<String>> {
    let paths = subcommands_below(cwd, &[]);
    // The walk went down: groups were expanded, not just the top level read.
    assert!(
        paths.iter().any(|p| p.len() > 1),
        "no nested subcommand found: {paths:?}"
    );
    paths
}

/// The commit HEAD is at, as build.rs records it (12 hex digits).
fn head_commit() -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "not a git checkout: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `jitr --version` is `jitr <version> (<commit>)` with HEAD's commit:
/// cli/build.rs asks git for HEAD when it builds and rebuilds when HEAD
/// moves. With uncommitted changes the version still names HEAD (build.rs
/// reads HEAD, not the work tree, and does not rebuild on every edit, so a
/// "dirty" mark could not be kept true): the commit the changes sit on. A
/// binary built before the latest commit fails here: rebuild it
/// (`cargo build --workspace --bins`; `make test` does).
#[test]
fn the_version_names_the_git_commit_it_was_built_from() {
    let tmp = tempfile::tempdir().unwrap();
    let out = jitr(tmp.path(), &["--version"]);
    let version = out.success().trim();
    let head = head_commit();
    assert_eq!(
        version,
        format!("jitr {} ({head})", env!("CARGO_PKG_VERSION")),
        "HEAD is {head}"
    );
}

#[test]
fn completions_are_printed_for_each_shell() {
    let tmp = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _jitr"),
        ("zsh", "#compdef jitr"),
        ("fish", "complete -c jitr"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = jitr(tmp.path(), &["completions", shell]);
        let script = out.success();
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("verification-cert"), "{shell}");
    }
    // bash itself accepts the script and registers the completion.
    let out = jitr_tests::run(std::process::Command::new("bash").args([
        "-c",
        &format!(
            "source <({} completions bash) && complete -p jitr",
            jitr_tests::bin("jitr").display()
        ),
    ]));
    assert!(out.success().contains("_jitr"), "{}", out.stdout);
    let out = jitr(tmp.path(), &["completions", "tcsh"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("tcsh"), "{}", out.stderr);
}

/// Hidden flags (`jitr man --markdown`, for the book) are no one's to type:
/// no shell offers them, while the visible ones are offered.
#[test]
fn completions_do_not_offer_hidden_flags() {
    let tmp = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = jitr(tmp.path(), &["completions", shell]);
        let script = out.success();
        assert!(script.contains("name-template"), "{shell}");
        assert!(!script.contains("markdown"), "{shell} offers --markdown");
    }
}

/// `jitr man` writes one page per command of the tree `--help` shows,
/// jitr.1 for the top, and nothing else.
#[test]
fn man_pages_are_written_for_every_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man/man1");
    jitr(tmp.path(), &["man", "man/man1"]).success();
    let mut expected: Vec<String> = subcommands(tmp.path())
        .iter()
        .map(|path| format!("jitr-{}.1", path.join("-")))
        .collect();
    expected.push("jitr.1".to_string());
    expected.sort();
    assert_eq!(jitr_tests::list_dir(&dir), expected);
    for page in &expected {
        let roff = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(roff.contains(".TH"), "{page}");
    }
    // A second run replaces the pages (make install re-run).
    jitr(tmp.path(), &["man", "man/man1"]).success();
    assert_eq!(jitr_tests::list_dir(&dir), expected);
}

/// Every command's `--help`, groups included, ends with examples that
/// start with its own first word.
#[test]
fn every_subcommand_help_ends_with_examples() {
    let tmp = tempfile::tempdir().unwrap();
    for path in subcommands(tmp.path()) {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = jitr(tmp.path(), &args);
        let help = out.success();
        let examples = help
            .split_once("Examples:\n")
            .unwrap_or_else(|| panic!("jitr {}: no examples\n{help}", path.join(" ")))
            .1;
        assert!(
            examples
                .trim_start()
                .starts_with(&format!("jitr {}", path[0])),
            "jitr {}: {examples}",
            path.join(" ")
        );
    }
}

/// `make build-lambda` installs the cross tools (zig, the rustup target) before
/// it cross-builds for arm64. The build itself is too long for the test suite;
/// `make -n` shows the wiring without running it.
#[test]
fn make_build_lambda_installs_the_cross_tools_then_builds_for_arm64() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("make")
        .args(["-n", "build-lambda"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let plan = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = plan.lines().collect();
    let at = |cmd: &str| {
        lines
            .iter()
            .position(|l| l.trim() == cmd)
            .unwrap_or_else(|| panic!("`{cmd}` not in make build-lambda:\n{plan}"))
    };
    let cross = at("./scripts/deps.sh --cross");
    let build = at("cargo lambda build --release --arm64 -p jitr-lambda");
    assert!(cross < build, "{plan}");
}

/// `make test-slow` runs exactly the tests marked `#[ignore = "slow"]`: it
/// passes `--ignored` to the test files (or, in one test binary, the
/// modules: `NAME::`) it names, so those must be exactly the files holding
/// such marks, with nothing else ignored in them (a benchmark left
/// `#[ignore]` there would run in the slow tier; a slow test in a file not
/// named would run nowhere).
#[test]
fn make_test_slow_runs_exactly_the_tests_marked_slow() {
    let root = jitr_tests::lambda::workspace();
    let mut marked = std::collections::BTreeSet::new();
    let mut ignores = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(root.join("tests/tests")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let file_ignores: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("#[ignore"))
            .map(str::to_string)
            .collect();
        if file_ignores.iter().any(|l| l == "#[ignore = \"slow\"]") {
            marked.insert(name.clone());
        }
        ignores.insert(name, file_ignores);
    }
    let out = std::process::Command::new("make")
        .args(["-n", "test-slow"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let plan = String::from_utf8(out.stdout).unwrap();
    let line = plan
        .lines()
        .find(|l| l.starts_with("cargo test"))
        .unwrap_or_else(|| panic!("no `cargo test` in make test-slow:\n{plan}"));
    let (cargo_args, test_args) = line
        .split_once(" -- ")
        .unwrap_or_else(|| panic!("no test arguments: {line}"));
    let cargo_args: Vec<&str> = cargo_args.split_whitespace().collect();
    let test_args: Vec<&str> = test_args.split_whitespace().collect();
    assert!(test_args.contains(&"--ignored"), "{line}");
    let mut selected: std::collections::BTreeSet<String> = cargo_args
        .windows(2)
        .filter(|w| w[0] == "--test" && w[1] != "tests")
        .map(|w| w[1].to_string())
        .collect();
    selected.extend(
        test_args
            .iter()
            .filter_map(|a| a.strip_suffix("::"))
            .map(str::to_string),
    );
    assert!(!marked.is_empty(), "no test is marked slow");
    assert_eq!(selected, marked, "{line}");
    for name in &selected {
        let others: Vec<&String> = ignores[name]
            .iter()
            .filter(|l| *l != "#[ignore = \"slow\"]")
            .collect();
        assert!(
            others.is_empty(),
            "tests/tests/{name}.rs: {others:?} would run in the slow tier"
        );
    }
}

/// How `jitr ARGS` (in `cwd`) ended with its stdout going to `stdout`.
fn jitr_to(cwd: &std::path::Path, args: &[&str], stdout: std::process::Stdio) -> jitr_tests::Run {
    jitr_tests::run(
        std::process::Command::new(jitr_tests::bin("jitr"))
            .args(args)
            .current_dir(cwd)
            .stdout(stdout),
    )
}

/// A pipe whose reading end is already closed (`| head -1` after its line).
fn closed_pipe() -> std::process::Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

/// stdout that cannot be written never panics (exit 101): a reader gone
/// (broken pipe) ends jitr quietly with the status of its work; any other
/// write error (a full disk) is one sentence on stderr and exit 1, the
/// command's files written all the same.
#[test]
fn output_that_cannot_be_written_never_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    jitr(d, &["ca", "create", "root"]).success();
    jitr_tests::issue_device(d, "root", "dev", "robot-0");
    let full = || {
        std::fs::File::options()
            .write(true)
            .open("/dev/full")
            .unwrap()
            .into()
    };
    let commands: &[&[&str]] = &[
        &["check", "root/ca.crt", "dev/robot-0/device-and-ca.crt"],
        &["--json", "check", "root/ca.crt"],
        &["completions", "bash"],
        &["ca", "create", "NEW"],
        &[
            "--json", "device", "issue", "--ca", "root", "--out", "NEW", "--name", "robot-1",
        ],
        &["--json", "doctor", "--help"],
        &["--help"],
        &["--version"],
        &["ca", "--help"],
        &["help", "ca"],
    ];
    for (n, command) in commands.iter().enumerate() {
        for (sink, broken_pipe) in [("full", false), ("pipe", true)] {
            let dir = format!("{sink}-{n}");
            let args: Vec<&str> = command
                .iter()
                .map(|a| if *a == "NEW" { dir.as_str() } else { a })
                .collect();
            let out = jitr_to(d, &args, if broken_pipe { closed_pipe() } else { full() });
            let what = format!("jitr {} > {sink}: {out:?}", args.join(" "));
            assert!(!out.stderr.contains("panicked"), "{what}");
            if broken_pipe {
                assert_eq!(out.code, Some(0), "{what}");
                assert_eq!(out.stderr, "", "{what}");
            } else {
                assert_eq!(out.code, Some(1), "{what}");
                assert_eq!(
                    out.stderr.trim_end(),
                    "jitr: error: cannot write standard output: No space left on device (os error 28)",
                    "{what}"
                );
            }
            if command.contains(&"NEW") {
                // The work itself was done: the files are there.
                assert!(d.join(&dir).read_dir().unwrap().next().is_some(), "{what}");
            }
        }
    }
    // A failing command keeps its own error (and exit code) whatever stdout does.
    for broken_pipe in [false, true] {
        let out = jitr_to(
            d,
            &["--json", "check", "missing.crt"],
            if broken_pipe { closed_pipe() } else { full() },
        );
        assert_eq!(out.code, Some(1), "{out:?}");
        assert!(
            out.stderr
                .starts_with("jitr: error: cannot read missing.crt"),
            "{out:?}"
        );
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
    // stderr gone: a broken pipe ends jitr as SIGPIPE would (141), a full one with 1.
    for (stderr, code) in [(closed_pipe(), 141), (full(), 1)] {
        let status = std::process::Command::new(jitr_tests::bin("jitr"))
            .args(["check", "missing.crt"])
            .current_dir(d)
            .stdin(std::process::Stdio::null())
            .stderr(stderr)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(code));
    }
}

#[test]
fn the_mqtt_endpoint_and_the_aws_api_endpoint_say_which_is_which() {
    let tmp = tempfile::tempdir().unwrap();
    let help = jitr(tmp.path(), &["connect", "--help"])
        .success()
        .to_string();
    let flag = |name: &str| {
        let start = help
            .find(&format!("  --{name} "))
            .unwrap_or_else(|| panic!("no --{name} in {help}"));
        let rest = &help[start + 4..];
        let end = rest.find("\n  -").unwrap_or(rest.len());
        // As one line: clap wraps the text to the terminal's width.
        rest[..end].split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let endpoint = flag("endpoint");
    assert!(endpoint.contains("MQTT"), "{endpoint}");
    let url = flag("endpoint-url");
    assert!(
        url.contains("AWS API") && url.contains("every AWS service") && !url.contains("moto"),
        "{url}"
    );
    assert!(
        url.contains("Not the MQTT endpoint devices connect to"),
        "{url}"
    );
    assert!(endpoint.contains("Not the AWS API endpoint"), "{endpoint}");
}

#[test]
fn the_license_the_crates_declare_is_in_the_repository() {
    let root = jitr_tests::lambda::workspace();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let declared = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("license = "))
        .expect("the workspace declares a license")
        .trim_matches('"')
        .to_string();
    // The standard texts' first lines, per SPDX id.
    let text_of = |id: &str| match id {
        "Apache-2.0" => "Apache License\n                           Version 2.0, January 2004",
        "MIT" => "Permission is hereby granted, free of charge",
        other => panic!("no known text for {other}"),
    };
    let ids: Vec<&str> = declared.split(" OR ").collect();
    for id in &ids {
        let file = match (ids.len(), *id) {
            (1, _) => "LICENSE".to_string(),
            (_, "Apache-2.0") => "LICENSE-APACHE".to_string(),
            (_, other) => format!("LICENSE-{other}"),
        };
        let text = std::fs::read_to_string(root.join(&file))
            .unwrap_or_else(|e| panic!("{file} for the declared {declared}: {e}"));
        assert!(text.contains(text_of(id)), "{file} is not the {id} text");
    }
    for member in ["cli", "core", "lambda", "tests"] {
        let m = std::fs::read_to_string(root.join(member).join("Cargo.toml")).unwrap();
        assert!(m.contains("license.workspace = true"), "{member}");
    }
}

/// With one test binary per crate (`autotests = false` in tests/ and
/// core/), a file of tests runs only if its crate's `tests.rs` names it: a
/// file left out would compile and run nowhere, silently.
#[test]
fn every_test_file_is_a_module_of_its_crates_one_test_binary() {
    let root = jitr_tests::lambda::workspace();
    for dir in ["tests/tests", "core/tests"] {
        let mut files = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let module = if path.is_dir() {
                path.join("mod.rs").exists()
            } else {
                path.extension().is_some_and(|e| e == "rs") && name != "tests"
            };
            if module {
                files.insert(name);
            }
        }
        let listing = std::fs::read_to_string(root.join(dir).join("tests.rs")).unwrap();
        let listed: std::collections::BTreeSet<String> = listing
            .lines()
            .filter_map(|l| l.trim().strip_prefix("mod "))
            .filter_map(|l| l.strip_suffix(';'))
            .map(str::to_string)
            .collect();
        assert!(!files.is_empty(), "{dir}: no test files");
        assert_eq!(
            files, listed,
            "{dir}: the files (left) and the modules {dir}/tests.rs names (right) differ"
        );
    }
}
