//! Records the git commit `jitr --version` prints, so a binary on someone's
//! PATH says which source it was built from.
// A build script talks to cargo through stdout: println! is its interface.
#![allow(clippy::disallowed_macros)]

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    // A source tarball (no .git) may still name its commit through the environment.
    println!("cargo:rerun-if-env-changed=JITR_GIT_COMMIT");
    let commit = std::env::var("JITR_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown commit".to_string());
    println!("cargo:rustc-env=JITR_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself (branch switch) and the ref it names
    // (a new commit); worktrees keep them in different directories.
    for file in ["HEAD", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", file]) {
            rerun_if_exists(&path);
        }
    }
    if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &head_ref]) {
            rerun_if_exists(&path);
        }
    }
}

fn rerun_if_exists(path: &str) {
    let path = Path::new(path);
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap().join(path)
    };
    if abs.exists() {
        println!("cargo:rerun-if-changed={}", abs.display());
    }
}
