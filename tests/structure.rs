//! What the compiler cannot say about the source's shape. The workspace's crates are its floors
//! and cargo refuses a cycle between them; what is left to check here:
//! - each crate depends only on the crates on floors below it (cargo would accept a crate
//!   reaching sideways or skipping the order, e.g. the judge depending on the network);
//! - the spec's keepalive arithmetic only in `crates/model/src/timing.rs`.

use std::path::{Path, PathBuf};

/// The floors, from the ground up: a crate may depend on the crates before it, never after.
/// `net` stands beside `judge` and `report` (it knows none of them), below `run`.
const FLOORS: [&str; 6] = ["wire", "model", "judge", "report", "net", "run"];

/// The one home of the spec's arithmetic (1.5 x keepalive and every allowance).
const TIMING: &str = "crates/model/src/timing.rs";

/// Which crates the judge and the network may not reach even though they stand lower.
const APART: [(&str, &str); 2] = [("net", "judge"), ("net", "report")];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace crates `manifest` depends on (`unplug-NAME = { path = ... }` lines of its
/// `[dependencies]`), by NAME.
fn internal_dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
        } else if section == "[dependencies]" {
            if let Some(rest) = line.strip_prefix("unplug-") {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn every_crate_stands_on_the_floors_below_it() {
    let mut on_disk: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut floors = FLOORS.map(String::from).to_vec();
    floors.sort();
    assert_eq!(
        on_disk, floors,
        "crates/ holds a crate the floors don't name, or lacks one"
    );
    let mut wrong = Vec::new();
    for (floor, name) in FLOORS.iter().enumerate() {
        for dep in internal_dependencies(&root().join("crates").join(name).join("Cargo.toml")) {
            let below = FLOORS[..floor].contains(&dep.as_str());
            if !below || APART.contains(&(name, dep.as_str())) {
                wrong.push(format!("{name} -> {dep}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "a crate reaches up or sideways: {wrong:?}"
    );
    // The binary's package stands on all of them.
    let top = internal_dependencies(&root().join("Cargo.toml"));
    for name in FLOORS {
        assert!(
            top.iter().any(|d| d == name),
            "the binary does not depend on {name}"
        );
    }
}

struct Source {
    rel: String,
    code: String,
}

/// Every library and binary source of the workspace (src/ and crates/*/src/), without
/// comments, literals and `#[cfg(test)]` items; test-only files (`tests.rs`, `*_tests.rs`)
/// left out.
fn sources() -> Vec<Source> {
    let mut dirs = vec![root().join("src")];
    for e in std::fs::read_dir(root().join("crates")).unwrap() {
        dirs.push(e.unwrap().path().join("src"));
    }
    let mut out = Vec::new();
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || name == "tests.rs" || name.ends_with("_tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let rel = path
                .strip_prefix(root())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.push(Source {
                rel,
                code: without_tests(&strip(&text)),
            });
        }
    }
    assert!(out.iter().any(|s| s.rel == TIMING), "{TIMING} is gone");
    out
}

/// The code without comments, string and char literals (their insides become spaces).
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !b
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                if b[j] == '\n' {
                    out.push('\n');
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                } else if b[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), or a lifetime ('a), which stays.
            let close = if next == Some('\\') {
                (i + 2..b.len().min(i + 12)).find(|&k| b[k] == '\'')
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(k) => {
                    out.push_str("' '");
                    i = k + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The code without its `#[cfg(test)]` items (an inline `mod tests { .. }`, a `mod tests;`).
fn without_tests(code: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let item = &rest[at + MARK.len()..];
        let semi = item.find(';');
        let brace = item.find('{');
        let end = match (semi, brace) {
            (Some(s), b) if b.map_or(true, |b| s < b) => s + 1,
            (_, Some(b)) => {
                let mut depth = 0;
                let mut end = item.len();
                for (k, ch) in item[b..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            _ => item.len(),
        };
        // Keep the line count, so line numbers stay the file's.
        out.push_str(&"\n".repeat(item[..end].matches('\n').count()));
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn keepalive_arithmetic_is_only_in_model_timing() {
    // The spec's factor, written as a number in code (not in comments or text), and the
    // keepalive multiplied or divided: only crates/model/src/timing.rs does that.
    let mut found = Vec::new();
    for f in sources() {
        if f.rel == TIMING {
            continue;
        }
        for (n, line) in f.code.lines().enumerate() {
            let squeezed: String = line.chars().filter(|c| !c.is_whitespace()).collect();
            let factor = ["1.5*", "*1.5", "*3/2", "*3.0/2.0"]
                .iter()
                .any(|p| squeezed.contains(p));
            let scaled = squeezed.contains("keepalive")
                && ([
                    "keepalive*",
                    "keepalive.as_secs_f64()*",
                    "keepalive.as_millis()*",
                    "keepalive/",
                ]
                .iter()
                .any(|p| squeezed.contains(p))
                    || multiplied_from_the_left(&squeezed));
            if factor || scaled {
                found.push(format!("{}:{}: {}", f.rel, n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "keepalive arithmetic outside {TIMING}:\n{}",
        found.join("\n")
    );
}

/// `x * keepalive`, told from a dereference (`(*keepalive_s).into()`): the `*` follows an
/// operand (a name, a number or a closing bracket).
fn multiplied_from_the_left(squeezed: &str) -> bool {
    squeezed.match_indices("*keepalive").any(|(i, _)| {
        squeezed[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ')' || c == ']')
    })
}

#[test]
fn a_dereferenced_keepalive_is_not_arithmetic() {
    assert!(!multiplied_from_the_left(
        "(\"keepalive_s\",Num((*keepalive_s).into())),"
    ));
    assert!(multiplied_from_the_left("letb=3*keepalive;"));
    assert!(multiplied_from_the_left("f(x)*keepalive_ms"));
}
