//! The pictures: a run's timeline and the comparison chart, drawn from saved files.
//!
//! ```text
//!  tests/fixtures/pictures/NAME.events.jsonl + NAME.summary.json
//!        --render_run------> SVG == NAME.svg (golden), parses, names every lane and bracket,
//!                                   no label on another
//!  both summaries --render_compare--> SVG == compare.svg (golden)
//!  a real ws-last-will run --render_run--> resvg --> PNG (target/pictures/ws-last-will.png)
//! ```
//!
//! The fixtures are one real run each of ws-last-will and ws-no-will, kept as produced. When a
//! change to svg.rs is meant to change the pictures, re-bless the goldens with
//! `UNPLUG_BLESS=1 cargo nextest run --test pictures` and look at the diff.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use common::*;
use unplug::event::{read_jsonl, Record};
use unplug::report::svg::{self, render_compare, render_run, text_width, BRACKETS, LANES};
use unplug::report::Summary;

const BLESS: &str = "UNPLUG_BLESS";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pictures")
}

/// target/pictures: where a person finds the pictures the tests drew (and a golden's mismatch).
fn pictures_dir() -> PathBuf {
    // BIN is TARGET/debug/unplug (or TARGET/release/unplug), wherever TARGET is.
    let target = Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .expect("the unplug binary lives two levels under the target dir");
    let d = target.join("pictures");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A run's records and summary, as `unplug scenario NAME --out DIR` left them.
fn read_run(dir: &Path, name: &str) -> (Vec<Record>, Summary) {
    let records = read_jsonl(&dir.join(format!("{name}.events.jsonl"))).unwrap();
    let summary = Summary::read(&dir.join(format!("{name}.summary.json"))).unwrap();
    (records, summary)
}

fn fixture(name: &str) -> (Vec<Record>, Summary) {
    read_run(&fixtures(), name)
}

/// `actual` must equal the golden file `name` byte for byte; with UNPLUG_BLESS=1 it becomes it.
fn assert_golden(name: &str, actual: &str) {
    let path = fixtures().join(name);
    let rebless = format!("to accept the new picture: {BLESS}=1 cargo nextest run --test pictures");
    if std::env::var_os(BLESS).is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        eprintln!("{BLESS}=1: wrote {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}\n{rebless}", path.display()));
    if expected == actual {
        return;
    }
    let got = pictures_dir().join(name);
    std::fs::write(&got, actual).unwrap();
    let (line, want, have) = expected
        .lines()
        .map(Some)
        .chain(std::iter::repeat(None))
        .zip(actual.lines().map(Some).chain(std::iter::repeat(None)))
        .take(expected.lines().count().max(actual.lines().count()) + 1)
        .enumerate()
        .find(|(_, (e, a))| e != a)
        .map(|(i, (e, a))| (i + 1, e.unwrap_or("<end>"), a.unwrap_or("<end>")))
        .unwrap_or((
            0,
            "<same lines>",
            "<different line endings or final newline>",
        ));
    panic!(
        "{} differs from what svg.rs draws now, first at line {line}:\n  golden: {want}\n  now:    {have}\n\
         the new picture is {} (diff the two, or open both)\n{rebless}",
        path.display(),
        got.display()
    );
}

fn summaries() -> Vec<Summary> {
    vec![fixture("ws-last-will").1, fixture("ws-no-will").1]
}

const COMPARE_TITLE: &str = "ws-last-will vs ws-no-will (fixtures)";

#[test]
fn run_picture_matches_golden() {
    let (records, summary) = fixture("ws-last-will");
    assert_golden("ws-last-will.svg", &render_run(&records, &summary));
}

#[test]
fn run_picture_without_will_matches_golden() {
    let (records, summary) = fixture("ws-no-will");
    assert_golden("ws-no-will.svg", &render_run(&records, &summary));
}

#[test]
fn compare_picture_matches_golden() {
    assert_golden("compare.svg", &render_compare(COMPARE_TITLE, &summaries()));
}

#[test]
fn same_files_draw_the_same_bytes() {
    for name in ["ws-last-will", "ws-no-will"] {
        let (records, summary) = fixture(name);
        assert!(
            render_run(&records, &summary) == render_run(&records, &summary),
            "{name}: two renders differ"
        );
    }
    let runs = summaries();
    assert!(
        render_compare(COMPARE_TITLE, &runs) == render_compare(COMPARE_TITLE, &runs),
        "compare: two renders differ"
    );
}

/// The `<g id=ID>` group, or a panic naming the ids there are.
fn group<'a, 'i>(doc: &'a roxmltree::Document<'i>, id: &str) -> roxmltree::Node<'a, 'i> {
    doc.descendants()
        .find(|n| n.has_tag_name("g") && n.attribute("id") == Some(id))
        .unwrap_or_else(|| {
            let ids: Vec<&str> = doc
                .descendants()
                .filter_map(|n| n.attribute("id"))
                .collect();
            panic!("no <g id=\"{id}\"> in the picture; its ids: {ids:?}")
        })
}

/// Whether `node` has a descendant `<tag class=...>` whose classes include `class`.
fn has(node: roxmltree::Node, tag: &str, class: &str) -> bool {
    node.descendants().any(|n| {
        n.has_tag_name(tag)
            && n.attribute("class")
                .is_some_and(|c| c.split_whitespace().any(|c| c == class))
    })
}

fn texts(node: roxmltree::Node) -> Vec<String> {
    node.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").to_string())
        .collect()
}

/// The height the root `<svg>` declares.
fn declared_height(doc: &roxmltree::Document) -> f64 {
    let root = doc.root_element();
    assert!(root.has_tag_name("svg"), "root is <{:?}>", root.tag_name());
    assert_eq!(root.attribute("width"), Some("1200.0"));
    root.attribute("height")
        .and_then(|h| h.parse().ok())
        .expect("the root <svg> has a numeric height")
}

#[test]
fn run_picture_has_every_lane_and_bracket() {
    let (records, summary) = fixture("ws-last-will");
    let text = render_run(&records, &summary);
    let doc = roxmltree::Document::parse(&text).expect("the picture is well-formed XML");
    assert!(declared_height(&doc) > 300.0);
    for (id, name, _) in LANES {
        assert!(
            texts(doc.root_element()).iter().any(|t| t == name),
            "{name}"
        );
        assert!(
            group(&doc, id).has_children(),
            "lane {id} is drawn but empty"
        );
    }
    assert_eq!(
        LANES.map(|l| l.0),
        ["lane-willy", "lane-wire", "lane-mqtt", "lane-monit"]
    );
    for id in [
        "cycles",
        "faults",
        "keepalive-grid",
        "axis",
        "legend",
        "checks",
    ] {
        group(&doc, id);
    }
    // The marks the brackets measure: the broker's drop and the will at monit.
    assert!(has(group(&doc, "lane-mqtt"), "line", "drop"));
    assert!(has(group(&doc, "lane-monit"), "polygon", "will"));
    assert!(has(group(&doc, "faults"), "rect", "fault"));
    assert!(has(group(&doc, "keepalive-grid"), "line", "grid"));

    // Each bracket: its group, its line in its own dash, and a label saying what it measures.
    assert_eq!(
        BRACKETS,
        [
            "bracket-last-packet",
            "bracket-drop",
            "bracket-will",
            "bracket-bound"
        ]
    );
    let last = texts(group(&doc, "bracket-last-packet")).join("|");
    assert!(
        last.contains("willy's last packet") && last.contains("PUBLISH"),
        "{last}"
    );
    for (id, class, says) in [
        (
            "bracket-drop",
            "b-drop",
            "last packet → broker drops willy: 3.00 s",
        ),
        (
            "bracket-will",
            "b-will",
            "last packet → will at monit: 3.00 s",
        ),
        (
            "bracket-bound",
            "b-bound",
            "bound: 1.5 × keepalive = 3.00 s",
        ),
    ] {
        let g = group(&doc, id);
        assert!(has(g, "line", class), "{id} has no <line class={class}>");
        let label = texts(g).join("|");
        assert!(label.contains(says), "{id} says {label:?}, not {says:?}");
    }
    // Guides through the lanes down to the brackets.
    let root = doc.root_element();
    for class in ["g-last", "g-drop", "g-will", "g-bound"] {
        assert!(has(root, "line", class), "no guide line .{class}");
    }
}

#[test]
fn run_picture_without_will_says_so() {
    let (records, summary) = fixture("ws-no-will");
    let text = render_run(&records, &summary);
    let doc = roxmltree::Document::parse(&text).expect("the picture is well-formed XML");
    for (id, _, _) in LANES {
        group(&doc, id);
    }
    for id in BRACKETS {
        group(&doc, id);
    }
    let will = texts(group(&doc, "bracket-will")).join("|");
    assert!(will.contains("no will configured"), "{will}");
    assert!(!has(group(&doc, "lane-monit"), "polygon", "will"));
    assert!(has(group(&doc, "lane-mqtt"), "line", "drop"));
    assert!(has(group(&doc, "bracket-drop"), "line", "b-drop"));
    assert!(has(group(&doc, "bracket-bound"), "line", "b-bound"));
}

/// One `<text>`'s estimated box: (x0, y0, x1, y1), and what it says.
struct Label {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    text: String,
}

/// Every text's box, sized from svg.rs's own width estimate and the classes in its stylesheet.
fn labels(doc: &roxmltree::Document) -> Vec<Label> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            let classes: Vec<&str> = n
                .attribute("class")
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let is = |c: &str| classes.contains(&c);
            let size = if is("title") {
                16.0
            } else if is("lane") {
                13.0
            } else if is("small") || is("lanesub") {
                10.0
            } else {
                11.0
            };
            let bold = ["title", "lane", "bold", "pass", "fail"]
                .iter()
                .any(|c| is(c));
            let text = n.text().unwrap_or("").to_string();
            let w = text_width(&text, size) * if bold { 1.12 } else { 1.0 };
            let num = |a: &str| -> f64 {
                n.attribute(a)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("<text> {text:?} has no numeric {a}"))
            };
            let (x, y) = (num("x"), num("y"));
            let x0 = if n.attribute("text-anchor") == Some("end") {
                x - w
            } else {
                x
            };
            // DejaVu Sans: ascent about 0.76 em, descent about 0.24 em.
            Label {
                x0,
                y0: y - 0.76 * size,
                x1: x0 + w,
                y1: y + 0.24 * size,
                text,
            }
        })
        .collect()
}

/// Labels that run off the picture, and pairs that overlap (by more than half a pixel).
fn label_clashes(svg_text: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg_text).expect("the picture is well-formed XML");
    let height = declared_height(&doc);
    let all = labels(&doc);
    let mut bad = Vec::new();
    for l in &all {
        if l.x0 < 0.0 || l.x1 > svg::WIDTH || l.y0 < 0.0 || l.y1 > height {
            bad.push(format!(
                "{:?} at ({:.0}..{:.0}, {:.0}..{:.0}) leaves the {} x {height} picture",
                l.text,
                l.x0,
                l.x1,
                l.y0,
                l.y1,
                svg::WIDTH
            ));
        }
    }
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            let dx = a.x1.min(b.x1) - a.x0.max(b.x0);
            let dy = a.y1.min(b.y1) - a.y0.max(b.y0);
            if dx > 0.5 && dy > 0.5 {
                bad.push(format!(
                    "{:?} at ({:.0}, {:.0}) overlaps {:?} at ({:.0}, {:.0}) by {dx:.0} x {dy:.0} px",
                    a.text, a.x0, a.y1, b.text, b.x0, b.y1
                ));
            }
        }
    }
    bad
}

#[test]
fn labels_neither_overlap_nor_leave_the_picture() {
    let mut bad = Vec::new();
    for name in ["ws-last-will", "ws-no-will"] {
        let (records, summary) = fixture(name);
        bad.extend(
            label_clashes(&render_run(&records, &summary))
                .into_iter()
                .map(|b| format!("{name}: {b}")),
        );
    }
    bad.extend(
        label_clashes(&render_compare(COMPARE_TITLE, &summaries()))
            .into_iter()
            .map(|b| format!("compare: {b}")),
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn real_run_rasterises_to_a_readable_png() {
    let out = out_dir("pictures-png");
    let (code, _) = run_scenario("ws-last-will", &out, &[]);
    assert!(code == 0 || code == 1, "exit code {code}: a harness error");
    let (records, summary) = read_run(&out, "ws-last-will");
    let text = render_run(&records, &summary);
    // The picture is drawn from the files alone: the run's own drawing is the same.
    let drawn = out.join("ws-last-will.svg");
    let own =
        std::fs::read_to_string(&drawn).unwrap_or_else(|e| panic!("{}: {e}", drawn.display()));
    assert!(
        own == text,
        "{} differs from render_run of the run's saved records and summary",
        drawn.display()
    );
    let doc = roxmltree::Document::parse(&text).expect("the picture is well-formed XML");
    let height = declared_height(&doc);

    let mut opt = resvg::usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    if opt.fontdb.is_empty() {
        eprintln!("\n*** no system fonts found: the PNG will have no text ***\n");
    }
    let tree = resvg::usvg::Tree::from_str(&text, &opt).expect("usvg reads the picture");
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    assert_eq!(pixmap.width(), 1200);
    assert_eq!(pixmap.height(), height.ceil() as u32);

    let pixels = pixmap.pixels();
    let inked = pixels
        .iter()
        .filter(|p| p.red().min(p.green()).min(p.blue()) < 245)
        .count();
    let colours: HashSet<[u8; 4]> = pixels
        .iter()
        .map(|p| [p.red(), p.green(), p.blue(), p.alpha()])
        .collect();
    let share = inked as f64 / pixels.len() as f64;
    assert!(
        share >= 0.05,
        "only {:.1}% of pixels are not white",
        share * 100.0
    );
    assert!(colours.len() >= 8, "only {} colours", colours.len());

    let png = out.join("ws-last-will.png");
    pixmap.save_png(&png).unwrap();
    let shown = pictures_dir().join("ws-last-will.png");
    std::fs::copy(&png, &shown).unwrap();
    eprintln!("the picture: {}", shown.display());
}

/// `unplug index` over a directory of runs: every run listed with its verdict and checks, every
/// link relative and pointing at a file that is there, nothing fetched from a network.
#[test]
fn index_lists_every_run_with_working_relative_links() {
    let out = out_dir("index");
    let set = out.join("seed");
    std::fs::create_dir_all(&set).unwrap();
    for name in ["ws-last-will", "ws-no-will"] {
        for ext in ["events.jsonl", "summary.json", "svg"] {
            let f = format!("{name}.{ext}");
            std::fs::copy(fixtures().join(&f), set.join(&f)).unwrap();
        }
        std::fs::write(set.join(format!("{name}.log")), "a log\n").unwrap();
    }
    let o = unplug(&["index", out.to_str().unwrap(), "--title", "two runs"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("<title>two runs</title>"));
    assert!(html.contains("2 runs, 0 failed"), "{html}");
    for check in ["keepalive-drop", "will-timing", "no-news-without-will"] {
        assert!(html.contains(check), "{check} missing");
    }
    assert!(!html.contains("http://") && !html.contains("https://"));
    // Every href and src resolves to a file under the index's directory.
    let mut links = 0;
    for attr in ["href=\"", "src=\""] {
        for piece in html.split(attr).skip(1) {
            let target = piece.split('"').next().unwrap();
            if target.starts_with('#') {
                continue;
            }
            assert!(out.join(target).is_file(), "{target} is not there");
            links += 1;
        }
    }
    assert!(links >= 2 * 5, "only {links} links");
}

#[test]
fn index_of_a_missing_directory_is_exit_2() {
    let o = unplug(&["index", "/nonexistent/unplug-runs"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/unplug-runs"));
}
