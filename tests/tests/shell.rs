//! `jitr` as an installed tool: its version names the commit, completions
//! for each shell, man pages for every subcommand, examples in every --help.

use jitr_tests::jitr;

/// Every subcommand path, as `jitr help` lists them.
const SUBCOMMANDS: &[&[&str]] = &[
    &["ca", "create"],
    &["ca", "import"],
    &["ca", "verification-cert"],
    &["ca", "register"],
    &["ca", "list"],
    &["ca", "show"],
    &["ca", "activate"],
    &["ca", "deactivate"],
    &["ca", "auto-registration"],
    &["ca", "crl"],
    &["ca", "deregister"],
    &["device", "issue"],
    &["device", "register"],
    &["device", "rotate"],
    &["device", "revoke"],
    &["check"],
    &["endpoint"],
    &["connect"],
    &["provision"],
    &["reconcile"],
    &["doctor"],
    &["fleet", "status"],
    &["completions"],
    &["man"],
];

#[test]
fn the_version_names_the_git_commit_it_was_built_from() {
    let tmp = tempfile::tempdir().unwrap();
    let out = jitr(tmp.path(), &["--version"]);
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    let version = out.success().trim();
    assert!(version.starts_with("jitr 0."), "{version}");
    // The binary may predate the newest commit; it names a commit of this repository.
    let commit = version
        .rsplit_once('(')
        .and_then(|(_, c)| c.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no commit in {version}"));
    assert_eq!(commit.len(), 12, "{version}");
    let known = std::process::Command::new("git")
        .args(["cat-file", "-e", &format!("{commit}^{{commit}}")])
        .status()
        .unwrap();
    assert!(known.success(), "{version} (HEAD is {head})");
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

#[test]
fn man_pages_are_written_for_every_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man/man1");
    jitr(tmp.path(), &["man", "man/man1"]).success();
    for path in SUBCOMMANDS {
        let page = dir.join(format!("jitr-{}.1", path.join("-")));
        let roff =
            std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(roff.contains(".TH"), "{}", page.display());
    }
    assert!(dir.join("jitr.1").exists());
    // A second run replaces the pages (make install re-run).
    jitr(tmp.path(), &["man", "man/man1"]).success();
}

#[test]
fn every_subcommand_help_ends_with_examples() {
    let tmp = tempfile::tempdir().unwrap();
    for path in SUBCOMMANDS {
        let mut args = path.to_vec();
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
