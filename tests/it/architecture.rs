//! The module arrows of ARCHITECTURE.md, enforced: every `crate::` path in
//! `src/` (in `use` lines and inline) names a top-level module the rule lets
//! its module depend on. A new arrow fails here until the rule (and
//! ARCHITECTURE.md) says it may exist. The way rust-analyzer's tidy tests
//! guard its architecture.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Which top-level modules each may use: the request flows down, from the
/// front ends through `check` to `domain`; `config`, `startup`, `cli` and
/// `telemetry` sit beside. Keep in step with ARCHITECTURE.md.
#[rustfmt::skip]
const ALLOWED: &[(&str, &[&str])] = &[
    ("cli", &["startup", "config", "check", "telemetry", "store", "domain", "proto"]),
    ("startup", &["server", "iam", "check", "assertion", "identity", "directory", "store", "config", "telemetry", "domain"]),
    ("config", &["check", "assertion", "identity", "directory", "store", "policy", "telemetry", "domain"]),
    ("server", &["iam", "check", "store", "policy", "telemetry", "domain", "proto"]),
    ("iam", &["check", "identity", "store", "policy", "telemetry", "domain"]),
    ("check", &["assertion", "identity", "directory", "store", "policy", "telemetry", "domain"]),
    ("assertion", &["domain"]),
    ("identity", &["directory", "store", "telemetry", "domain", "freshness"]),
    ("directory", &["store", "policy", "telemetry", "domain", "freshness", "shared"]),
    ("store", &["policy", "telemetry", "domain", "shared"]),
    ("policy", &["domain"]),
    ("telemetry", &[]),
    ("freshness", &[]),
    ("shared", &[]),
    ("domain", &[]),
    ("proto", &[]),
];

#[test]
fn every_module_arrow_is_allowed() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = BTreeSet::new();
    for (file, module) in rust_files(&src) {
        let Some(may) = allowed.get(module.as_str()) else {
            assert!(
                module == "lib" || module == "main",
                "{file}: module {module} has no rule"
            );
            continue;
        };
        let text = std::fs::read_to_string(src.join(&file)).unwrap();
        for target in crate_paths(&text) {
            if target != module && !may.contains(&target.as_str()) {
                wrong.insert(format!("{module} -> {target} ({file})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows the rule does not allow:\n{}",
        wrong.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// The rule itself runs one way: no module can reach itself.
#[test]
fn the_rule_has_no_cycle() {
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    fn reaches(from: &str, to: &str, allowed: &BTreeMap<&str, &[&str]>, depth: usize) -> bool {
        depth < 32
            && allowed[from]
                .iter()
                .any(|next| *next == to || reaches(next, to, allowed, depth + 1))
    }
    for module in allowed.keys() {
        assert!(
            !reaches(module, module, &allowed, 0),
            "{module} reaches itself"
        );
    }
}

/// The parser finds grouped, nested and inline paths, and skips comments.
#[test]
fn crate_paths_are_read_from_use_groups_and_inline_paths() {
    let text = "use crate::{\n    check::{a, b::{c}},\n    store::X,\n};\n\
                // crate::ignored in a comment\n\
                let x = crate::policy::rbac::f();\n";
    assert_eq!(
        crate_paths(text),
        BTreeSet::from(["check".to_owned(), "store".to_owned(), "policy".to_owned()])
    );
}

/// `(path relative to src, top-level module)` of every source file.
fn rust_files(src: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(src)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let module = rel
                    .split('/')
                    .next()
                    .unwrap()
                    .trim_end_matches(".rs")
                    .to_owned();
                out.push((rel, module));
            }
        }
    }
    out.sort();
    out
}

/// The top-level modules named after `crate::` outside comments.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            found.extend(group_heads(group));
        } else {
            found.insert(ident(rest).to_owned());
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// The first segment of each item of a `{...}` group (up to its `}`).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (i, ch) in group.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && !c.is_whitespace() => {
                heads.push(ident(&group[i..]).to_owned());
                start = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}
