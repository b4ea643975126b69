//! docs/reference.md is what `unplug reference` writes from the code; `unplug show` gives back
//! files that run as the built-in scenarios do; a short scenario file takes the documented
//! defaults.

mod common;

use std::path::Path;

use common::{out_dir, unplug};

#[test]
fn docs_reference_md_is_what_the_code_says() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reference.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let now = unplug::reference::markdown();
    assert!(
        committed == now,
        "docs/reference.md is out of date with the code: regenerate it with \
         `cargo run -q -- reference > docs/reference.md`"
    );
}

#[test]
fn every_built_in_scenario_shown_and_given_back_is_the_same_scenario() {
    let dir = out_dir("reference-show");
    for (name, _) in unplug::scenario::BUILTIN {
        let o = unplug(&["show", name]);
        assert_eq!(o.status.code(), Some(0), "{name}");
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, &o.stdout).unwrap();
        let mut shown = unplug::scenario::load(file.to_str().unwrap()).unwrap();
        let built_in = unplug::scenario::load(name).unwrap();
        shown.source = built_in.source.clone();
        assert_eq!(format!("{shown:?}"), format!("{built_in:?}"), "{name}");
    }
    let o = unplug(&["show", "ws-last-wil"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("did you mean `ws-last-will`?"), "{e}");
    assert!(
        !e.contains("will-storm"),
        "a typo lists every scenario: {e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_five_line_scenario_file_takes_the_documented_defaults() {
    let dir = out_dir("reference-defaults");
    let file = dir.join("short.toml");
    std::fs::write(
        &file,
        "[will]\ntopic = \"test/connected\"\npayload = \"false\"\n\
         [[faults]]\nkind = \"blackhole\"\ncycle = 3\n",
    )
    .unwrap();
    let s = unplug::scenario::load(file.to_str().unwrap()).unwrap();
    let default = |key: &str| {
        unplug::scenario::TIMING
            .iter()
            .find(|t| t.key == key)
            .unwrap()
            .default as u64
    };
    assert_eq!(s.transport.as_str(), "tcp");
    assert_eq!(s.protocol.as_str(), "3.1.1");
    assert_eq!(s.keepalive.as_secs(), default("keepalive_s"));
    assert_eq!(u64::from(s.cycles), default("cycles"));
    assert_eq!(
        s.connected_for.as_millis() as u64,
        default("connected_for_ms")
    );
    assert_eq!(s.idle.as_millis() as u64, default("idle_ms"));
    assert_eq!(s.reconnect.as_millis() as u64, default("reconnect_ms"));
    // The defaults are the seed's shape, which ws-last-will and native-last-will spell out.
    let seed = unplug::scenario::load("native-last-will").unwrap();
    assert_eq!(
        (s.keepalive, s.cycles, s.connected_for, s.idle, s.reconnect),
        (
            seed.keepalive,
            seed.cycles,
            seed.connected_for,
            seed.idle,
            seed.reconnect
        )
    );
    // A key given out of range is still refused with the file, line and key.
    std::fs::write(&file, "description = \"x\"\nkeepalive_s = 0\n").unwrap();
    let e = unplug::scenario::load(file.to_str().unwrap()).unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("short.toml") && e.contains(":2") && e.contains("keepalive_s"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every spec clause the judge wrote into a committed summary is one docs/reference.md gives
/// for that check.
#[test]
fn the_judges_spec_clauses_are_the_referenced_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let mut stack = vec![root];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if !p.to_string_lossy().ends_with(".summary.json") {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            for c in v["checks"].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap();
                let base = name.split(' ').next().unwrap();
                let (_, _, clauses) = unplug::judge::CheckId::about()
                    .find(|(n, ..)| *n == base)
                    .unwrap_or_else(|| panic!("{}: check {name} has no reference", p.display()));
                for clause in c["spec"].as_str().unwrap_or("").split(", ") {
                    assert!(
                        clause.is_empty() || clauses.contains(clause),
                        "{}: {name} cites {clause}, the reference gives {clauses:?}",
                        p.display()
                    );
                }
                seen += 1;
            }
        }
    }
    assert!(seen > 1000, "only {seen} checks in results/");
}

/// `unplug completions SHELL` prints a script the shell reads, naming the commands; `unplug man`
/// a man page.
#[test]
fn completions_and_the_man_page_come_from_the_commands() {
    let dir = out_dir("reference-completions");
    let o = unplug(&["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0));
    let script = dir.join("unplug.bash");
    std::fs::write(&script, &o.stdout).unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    for word in ["scenario", "show", "proxy", "--broker"] {
        assert!(
            text.contains(word),
            "{word} missing from the bash completions"
        );
    }
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(check.success(), "bash -n refused the completion script");
    let o = unplug(&["man"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains(".TH unplug 1"));
    let o = unplug(&["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}
