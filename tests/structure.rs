//! The source's shape, checked on its text: no import cycle among the files of src/, and the
//! spec's keepalive arithmetic only in src/judge/timing.rs.
//!
//! ```text
//!  src/**/*.rs --strip comments, strings, #[cfg(test)] items--> code
//!     code --paths: crate::, super::, a child module's name--> the file each names
//!         (an item re-exported by `pub use`, or by a glob, is followed to the file defining it)
//!     file -> file edges --strongly connected components--> every cycle, named
//! ```
//!
//! A file may use what the mod.rs of a module it sits in defines (`super::Scenario` in
//! scenario/parse.rs): a module's shared types in its mod.rs is how Rust modules are built;
//! every other edge counts, a mod.rs using its own children included. Test code is left out:
//! a `#[cfg(test)]` item (an inline `mod tests`, a test-only file) may reach anywhere. The binary's files (main.rs, cli/) form their own graph; `unplug::`
//! paths go to the library, which cannot reach back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module of one crate: its path segments (the binary's start with "<bin>").
type ModPath = Vec<String>;

struct File {
    rel: String,
    module: ModPath,
    code: String,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn module_of(rel: &Path) -> ModPath {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs").to_string();
    let mut m = Vec::new();
    if parts.first().map(String::as_str) == Some("cli") || stem == "main" {
        m.push("<bin>".to_string());
    }
    m.extend(parts);
    if !matches!(stem.as_str(), "mod" | "lib" | "main") {
        m.push(stem);
    }
    m
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

/// The code without its `#[cfg(test)]` items, and the names of test-only child modules
/// (`#[cfg(test)] mod tests;`).
fn without_tests(code: &str) -> (String, Vec<String>) {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::new();
    let mut test_mods = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let item = &rest[at + MARK.len()..];
        let semi = item.find(';');
        let brace = item.find('{');
        let end = match (semi, brace) {
            (Some(s), b) if b.map_or(true, |b| s < b) => {
                let decl = item[..s].trim();
                if let Some(name) = decl.strip_prefix("mod ") {
                    test_mods.push(name.trim().to_string());
                }
                s + 1
            }
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
    (out, test_mods)
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Expand a `use` tree (`a::{b, c::{d as e, *}}`) into paths.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    fn go(prefix: &[String], t: &str, out: &mut Vec<Vec<String>>) {
        // Split top-level commas.
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, ch) in t.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(&t[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&t[start..]);
        for p in parts.into_iter().filter(|p| !p.is_empty()) {
            match p.find('{') {
                Some(open) => {
                    let mut pre = prefix.to_vec();
                    pre.extend(
                        p[..open]
                            .split("::")
                            .filter(|s| !s.is_empty())
                            .map(str::to_string),
                    );
                    go(&pre, &p[open + 1..p.len() - 1], out);
                }
                None => {
                    let mut path = prefix.to_vec();
                    path.extend(p.split("::").filter(|s| !s.is_empty()).map(str::to_string));
                    out.push(path);
                }
            }
        }
    }
    let mut out = Vec::new();
    go(&[], &tree, &mut out);
    out
}

/// `use` trees in the code: (is it a re-export (`pub use`), the alias it binds, the path).
fn uses(code: &str) -> Vec<(bool, String, Vec<String>)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("use ") {
        let at = from + at;
        from = at + 4;
        if code[..at].chars().last().is_some_and(is_ident) {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            break;
        };
        let stmt = &code[at + 4..at + end];
        let before = code[..at].trim_end();
        // `pub use` or `pub(crate) use` (`pub(in path)`, `pub(super)`): a re-export.
        let public = before.ends_with("pub")
            || (before.ends_with(')')
                && before
                    .rfind('(')
                    .is_some_and(|o| before[..o].trim_end().ends_with("pub")));
        for path in expand_use_with_alias(stmt) {
            out.push((public, path.0, path.1));
        }
    }
    out
}

/// Like [`expand_use`], keeping each path's alias (`x as y` binds y; `self` binds the
/// module's own name).
fn expand_use_with_alias(stmt: &str) -> Vec<(String, Vec<String>)> {
    let spaced: String = stmt.replace(" as ", "\u{1}");
    expand_use(&spaced)
        .into_iter()
        .map(|mut path| {
            let last = path.pop().unwrap_or_default();
            let (name, alias) = match last.split_once('\u{1}') {
                Some((n, a)) => (n.to_string(), a.to_string()),
                None => (last.clone(), last),
            };
            if name != "self" {
                path.push(name);
            }
            let alias = if alias == "self" {
                path.last().cloned().unwrap_or_default()
            } else {
                alias
            };
            (alias, path)
        })
        .collect()
}

/// Names an item is defined under in the code (structs, fns, consts, modules, ...).
fn definitions(code: &str) -> BTreeSet<String> {
    let words: Vec<&str> = code
        .split(|c: char| !is_ident(c) && c != '!')
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = BTreeSet::new();
    for w in words.windows(2) {
        if matches!(
            w[0],
            "struct" | "enum" | "fn" | "const" | "static" | "type" | "trait" | "mod" | "union"
        ) || w[0] == "macro_rules!"
        {
            out.insert(w[1].to_string());
        }
    }
    out
}

/// Paths written inline in code (not in `use`): `crate::a::b`, `super::x`, `child::y`.
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if is_ident(chars[i]) && (i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == ':')) {
            let mut segs = Vec::new();
            let mut j = i;
            loop {
                let start = j;
                while j < chars.len() && is_ident(chars[j]) {
                    j += 1;
                }
                segs.push(chars[start..j].iter().collect::<String>());
                if j + 2 < chars.len()
                    && chars[j] == ':'
                    && chars[j + 1] == ':'
                    && is_ident(chars[j + 2])
                {
                    j += 2;
                } else {
                    break;
                }
            }
            if segs.len() > 1 {
                out.push(segs);
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}

struct Crate {
    files: Vec<File>,
    /// Module path -> index in `files`.
    by_module: BTreeMap<ModPath, usize>,
}

impl Crate {
    fn load() -> Crate {
        let root = src();
        let mut paths = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|e| e == "rs") {
                    paths.push(p);
                }
            }
        }
        paths.sort();
        let mut files = Vec::new();
        let mut test_only: Vec<ModPath> = Vec::new();
        for p in paths {
            let rel = p.strip_prefix(&root).unwrap();
            let module = module_of(rel);
            let (code, test_mods) = without_tests(&strip(&std::fs::read_to_string(&p).unwrap()));
            for t in test_mods {
                let mut m = module.clone();
                m.push(t);
                test_only.push(m);
            }
            files.push(File {
                rel: format!("src/{}", rel.display()),
                module,
                code,
            });
        }
        files.retain(|f| !test_only.iter().any(|t| f.module.starts_with(t)));
        let by_module = files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.module.clone(), i))
            .collect();
        Crate { files, by_module }
    }

    /// Make `path`, as written in the file of `module`, absolute; None: not a path into this
    /// crate (std, another crate, a local name).
    fn absolute(&self, module: &ModPath, path: &[String]) -> Option<ModPath> {
        let root: ModPath = if module.first().map(String::as_str) == Some("<bin>") {
            vec!["<bin>".to_string()]
        } else {
            Vec::new()
        };
        let first = path.first()?.as_str();
        match first {
            "crate" => Some(root.iter().chain(&path[1..]).cloned().collect()),
            "super" | "self" => {
                let mut m = module.clone();
                let mut rest = path;
                while let Some(s) = rest.first() {
                    match s.as_str() {
                        "super" => {
                            m.pop();
                        }
                        "self" => {}
                        _ => break,
                    }
                    rest = &rest[1..];
                }
                m.extend(rest.iter().cloned());
                Some(m)
            }
            child => {
                let mut m = module.clone();
                m.push(child.to_string());
                self.by_module
                    .contains_key(&m)
                    .then(|| m.into_iter().chain(path[1..].iter().cloned()).collect())
            }
        }
    }

    /// The file that defines what the absolute path `path` names.
    fn resolve(&self, path: &ModPath, depth: u32) -> Option<usize> {
        // The longest module prefix that is a file.
        let mut n = path.len();
        while n > 0 && !self.by_module.contains_key(&path[..n]) {
            n -= 1;
        }
        let m = path[..n].to_vec();
        let file = *self.by_module.get(&m)?;
        let Some(item) = path.get(n) else {
            return Some(file);
        };
        let f = &self.files[file];
        if depth > 8 || definitions(&f.code).contains(item) {
            return Some(file);
        }
        // Re-exported: follow it to where it is defined.
        for (public, alias, target) in uses(&f.code) {
            if !public {
                continue;
            }
            let glob = target.last().map(String::as_str) == Some("*");
            if alias == *item || glob {
                let mut t = target.clone();
                if glob {
                    t.pop();
                    t.push(item.clone());
                }
                if let Some(abs) = self.absolute(&f.module, &t) {
                    if let Some(found) = self.resolve(&abs, depth + 1) {
                        if !glob || definitions(&self.files[found].code).contains(item) {
                            return Some(found);
                        }
                    }
                }
            }
        }
        Some(file)
    }

    /// Every file -> file dependency: what each file's paths name.
    fn edges(&self) -> BTreeMap<usize, BTreeSet<usize>> {
        let mut edges: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
        for (i, f) in self.files.iter().enumerate() {
            let mut paths: Vec<Vec<String>> = uses(&f.code).into_iter().map(|u| u.2).collect();
            paths.extend(inline_paths(&f.code));
            for p in paths {
                let p: Vec<String> = p.into_iter().filter(|s| s != "*").collect();
                let Some(abs) = self.absolute(&f.module, &p) else {
                    continue;
                };
                if let Some(t) = self.resolve(&abs, 0) {
                    // A file inside a module may use what that module's mod.rs defines (its
                    // shared types): the way Rust modules are built, not a cycle.
                    let up = f.module.starts_with(&self.files[t].module);
                    if t != i && !up {
                        edges.entry(i).or_default().insert(t);
                    }
                }
            }
        }
        edges
    }
}

/// The strongly connected components of more than one file (Tarjan).
fn cycles(n: usize, edges: &BTreeMap<usize, BTreeSet<usize>>) -> Vec<Vec<usize>> {
    struct T<'a> {
        edges: &'a BTreeMap<usize, BTreeSet<usize>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        let succ: Vec<usize> = t.edges.get(&v).into_iter().flatten().copied().collect();
        for w in succ {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn no_import_cycle_among_the_files_of_src() {
    let c = Crate::load();
    let edges = c.edges();
    let found = cycles(c.files.len(), &edges);
    let named: Vec<String> = found
        .iter()
        .map(|comp| {
            let mut names: Vec<&str> = comp.iter().map(|&i| c.files[i].rel.as_str()).collect();
            names.sort();
            names.join(" <-> ")
        })
        .collect();
    assert!(named.is_empty(), "import cycles:\n{}", named.join("\n"));
    // The check sees the graph: the judge reads the journal's types, the runner the judge.
    let edge = |a: &str, b: &str| {
        let (a, b) = (
            c.files.iter().position(|f| f.rel == a).unwrap(),
            c.files.iter().position(|f| f.rel == b).unwrap(),
        );
        edges.get(&a).is_some_and(|e| e.contains(&b))
    };
    assert!(edge("src/judge/facts.rs", "src/event/mod.rs"));
    assert!(edge("src/runner/mod.rs", "src/runner/stage.rs"));
    assert!(edge("src/runner/mod.rs", "src/judge/live.rs"));
    assert!(edge("src/judge/live.rs", "src/judge/facts.rs"));
    assert!(edge("src/cli/batch.rs", "src/cli/children.rs"));
    assert!(edges.values().map(BTreeSet::len).sum::<usize>() > 150);
}

#[test]
fn the_cycle_check_finds_a_cycle_through_a_re_export() {
    // judge/mod.rs re-exports LiveFacts from live.rs: a path to `crate::judge::LiveFacts`
    // names live.rs, not mod.rs.
    let c = Crate::load();
    let live = c
        .resolve(&vec!["judge".to_string(), "LiveFacts".to_string()], 0)
        .unwrap();
    assert_eq!(c.files[live].rel, "src/judge/live.rs");
    let facts = c
        .resolve(&vec!["judge".to_string(), "Facts".to_string()], 0)
        .unwrap();
    assert_eq!(c.files[facts].rel, "src/judge/facts.rs");
    let mut e: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    e.entry(0).or_default().insert(1);
    e.entry(1).or_default().insert(2);
    e.entry(2).or_default().insert(0);
    assert_eq!(cycles(3, &e).len(), 1);
}

#[test]
fn keepalive_arithmetic_is_only_in_judge_timing() {
    // The spec's factor, written as a number in code (not in comments or text), and the
    // keepalive multiplied or divided: only src/judge/timing.rs does that.
    let c = Crate::load();
    let mut found = Vec::new();
    for f in &c.files {
        if f.rel == "src/judge/timing.rs" {
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
        "keepalive arithmetic outside src/judge/timing.rs:\n{}",
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
