//! Keeps docs/PROTOCOL.md honest: every hex example in it is regenerated here from the code
//! and compared. `RONODE_BLESS_DOCS=1 cargo test -p ronode-proto --test protocol_doc` rewrites
//! the examples after an intended change of the wire format.
//!
//! In the document an example is a marker line `<!-- example: NAME -->` followed by a fenced
//! block; the block's content is what this test generates for NAME.

mod examples;

use std::collections::BTreeMap;
use std::path::PathBuf;

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md")
}

const MARKER: &str = "<!-- example: ";

/// Replaces the fenced block after each marker with the generated text; returns the new
/// document and the names whose block differed, plus markers with no generated example.
fn regenerate(
    doc: &str,
    generated: &BTreeMap<&'static str, String>,
) -> (String, Vec<String>, Vec<String>) {
    let mut out = String::with_capacity(doc.len());
    let mut changed = Vec::new();
    let mut unknown = Vec::new();
    let mut lines = doc.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        let Some(rest) = line.trim_end().strip_prefix(MARKER) else {
            continue;
        };
        let name = rest.trim_end_matches("-->").trim();
        let Some(text) = generated.get(name) else {
            unknown.push(name.to_owned());
            continue;
        };
        // Expect the opening fence on the next line.
        let Some(fence) = lines.next() else { break };
        out.push_str(fence);
        let mut old = String::new();
        for body in lines.by_ref() {
            if body.trim_end() == "```" {
                break;
            }
            old.push_str(body);
        }
        if old.trim_end() != text.trim_end() {
            changed.push(name.to_owned());
        }
        out.push_str(text.trim_end());
        out.push_str("\n```\n");
    }
    (out, changed, unknown)
}

#[test]
fn protocol_doc_examples_match_the_code() {
    let generated = examples::all();
    let path = doc_path();
    let doc = std::fs::read_to_string(&path).expect("docs/PROTOCOL.md exists");
    let (new_doc, changed, unknown) = regenerate(&doc, &generated);
    assert!(
        unknown.is_empty(),
        "markers without a generated example: {unknown:?}"
    );
    let missing: Vec<_> = generated
        .keys()
        .filter(|name| !doc.contains(&format!("{MARKER}{name} -->")))
        .collect();
    if std::env::var_os("RONODE_BLESS_DOCS").is_some() {
        std::fs::write(&path, new_doc).expect("rewrite docs/PROTOCOL.md");
        assert!(
            missing.is_empty(),
            "add a marker to the doc for: {missing:?}"
        );
        return;
    }
    assert!(
        missing.is_empty(),
        "examples not shown in docs/PROTOCOL.md: {missing:?}"
    );
    assert!(
        changed.is_empty(),
        "docs/PROTOCOL.md drifted from the code for {changed:?}; if the change is intended, run \
         RONODE_BLESS_DOCS=1 cargo test -p ronode-proto --test protocol_doc"
    );
}
