//! `--repeat N`: N independent runs, each kept, read as one verdict and a distribution.
//!
//! ```text
//!  unplug scenario FILE --repeat 3 --> FILE.r1..r3.* + FILE.repeat.json {runs, passed,
//!                                      verdict, figures: {min, p50, p90, max}, allowed}
//! ```

mod common;

use common::*;

/// One short cycle, cut at once: each run ends 1.5 x keepalive after the cut (about 2 s).
#[test]
fn repeat_3_keeps_every_run_and_writes_the_distribution_of_every_figure() {
    let out = out_dir("repeat-3");
    let path = out.join("short-cut.toml");
    std::fs::write(
        &path,
        short_cut_scenario("a short cut, to repeat", 1, 1, 200),
    )
    .unwrap();
    let o = unplug(&[
        "scenario",
        path.to_str().unwrap(),
        "--repeat",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("short-cut x3: 3 of 3 passed: PASS"),
        "{stdout}"
    );
    for k in 1..=3 {
        assert!(out.join(format!("short-cut.r{k}.summary.json")).exists());
    }
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("short-cut.repeat.json")).unwrap())
            .unwrap();
    assert_eq!(
        (r["runs"].as_u64(), r["passed"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(r["verdict"], "pass");
    let will = &r["figures"]["will_after_last_packet_ms"];
    assert_eq!(will["n"], 3, "{r:#}");
    let [min, p50, p90, max] = ["min", "p50", "p90", "max"].map(|k| will[k].as_f64().unwrap());
    assert!(min <= p50 && p50 <= p90 && p90 <= max, "{will}");
    // Every run passed will-timing, so each figure lies in the window it allowed.
    let window = r["allowed"]["will_after_last_packet_ms"]
        .as_array()
        .unwrap();
    assert!(window[0].as_f64().unwrap() <= min && max <= window[1].as_f64().unwrap());
    assert_eq!(will["outside"], 0);
    assert!(out.join("short-cut.repeat.svg").exists());
    let _ = std::fs::remove_dir_all(&out);
}
