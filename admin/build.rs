//! Records the git commit the admin plane reports in `/version` as `RONODE_GIT`.
//!
//! Never fails: without git, outside a work tree (a source tarball) or on any error, the commit
//! is `unknown`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = git(&manifest_dir, &["rev-parse", "--short", "HEAD"]);
    if commit.is_some() {
        // Rerun when HEAD moves: HEAD itself (a checkout), the branch it points to (a commit)
        // and packed-refs. `--git-path` resolves each in worktrees too.
        let mut paths = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
        paths.extend(git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"]));
        for path in paths {
            if let Some(file) = git(&manifest_dir, &["rev-parse", "--git-path", &path]) {
                let file = manifest_dir.join(file);
                if file.exists() {
                    println!("cargo:rerun-if-changed={}", file.display());
                }
            }
        }
    }
    println!(
        "cargo:rustc-env=RONODE_GIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
}
