//! The journal's lines are a format: every committed journal in results/ read back into typed
//! records and written again gives the same bytes, the JSON line and the log line alike (the
//! wire tap's packets are typed in memory and spelled as they always were on disk). A scenario
//! run's journal is in time order: its files are written again from the records at its end.

use std::path::{Path, PathBuf};

use unplug::event::Record;

fn journals(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            journals(&p, out);
        } else if p.to_string_lossy().ends_with(".events.jsonl") {
            out.push(p);
        }
    }
}

#[test]
fn every_committed_journal_line_is_written_again_byte_for_byte() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("results");
    let mut files = Vec::new();
    journals(&root, &mut files);
    assert!(files.len() > 10, "journals in results/: {}", files.len());
    let (mut lines, mut logs, mut packets) = (0, 0, 0);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let log_path = PathBuf::from(path.to_string_lossy().replace(".events.jsonl", ".log"));
        // The log is written beside the JSONL, record by record: line n is record n's.
        let log = std::fs::read_to_string(&log_path).ok();
        let mut log_lines = log.as_deref().map(str::lines);
        let run = text.contains(r#""event":"scenario_recorded""#);
        let mut last_ms = 0.0;
        for (n, line) in text.lines().enumerate() {
            let rec: Record = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1));
            let again = serde_json::to_string(&rec).unwrap();
            assert_eq!(again, line, "{}:{}", path.display(), n + 1);
            if run {
                assert!(
                    rec.ms >= last_ms,
                    "{}:{}: {} ms after a record at {last_ms} ms",
                    path.display(),
                    n + 1,
                    rec.ms
                );
                last_ms = rec.ms;
            }
            lines += 1;
            packets += usize::from(line.contains(r#""event":"packet""#));
            if let Some(l) = log_lines.as_mut().and_then(|it| it.next()) {
                // `unplug proxy`'s journals name the device and the upstream.
                let naming = if run {
                    unplug::event::Naming::Run
                } else {
                    unplug::event::Naming::Device
                };
                assert_eq!(
                    rec.log_line_as(naming),
                    l,
                    "{}:{}",
                    log_path.display(),
                    n + 1
                );
                logs += 1;
            }
        }
    }
    assert!(packets > 1000, "{packets} packet records in {lines} lines");
    assert!(logs > 1000, "{logs} log lines compared");
}
