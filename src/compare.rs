//! Brokers side by side: the matrix scenarios x brokers (x transports), one child process per
//! cell, then one table: the seed's question ("when does the rest of the system learn?")
//! answered per broker and transport.
//!
//! ```text
//!  plan: [scenario] x [broker] x [transport | the scenario's own] --> [ChildSpec]
//!        (each with --broker, --transport, --name SCENARIO.BROKER.TRANSPORT)
//!        x [willy x cut layer] with --willies/--cuts (--willy W --cut C, NAME.W.C)
//!  suite::run_specs --> [ChildRun] --rows--> terminal table + DIR/COMPARE.md
//! ```

use crate::broker::BrokerChoice;
use crate::driver::WillyKind;
use crate::kernelcut::CutLayer;
use crate::report::table;
use crate::scenario::Transport;
use crate::suite::{ChildRun, ChildSpec};

/// The scenarios `compare` runs when none are given: the seed's four (tcp and ws, with and
/// without a will).
pub const DEFAULT_SCENARIOS: [&str; 4] = [
    "native-no-will",
    "native-last-will",
    "ws-no-will",
    "ws-last-will",
];

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The scenario as the user named it.
    pub scenario: String,
    pub broker: BrokerChoice,
    /// The transport forced on the run; None runs the scenario's own.
    pub transport: Option<Transport>,
    /// The child's spec (its file name and arguments).
    pub spec: ChildSpec,
    /// willy's client and the cut layer, `mqttjs/kernel`, when `--willies`/`--cuts` vary
    /// them; empty for the run's defaults.
    pub client: String,
}

/// The file stem of a scenario argument (a name, or the stem of a path).
fn stem(scenario: &str) -> String {
    std::path::Path::new(scenario)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(scenario)
        .to_string()
}

/// Every cell, scenario-major, then broker, then transport. `own_transport` gives a scenario's
/// transport, for naming its files when no transport is forced.
pub fn plan(
    scenarios: &[String],
    brokers: &[BrokerChoice],
    transports: Option<&[Transport]>,
    own_transport: impl Fn(&str) -> Transport,
    extra: &[String],
) -> Vec<Cell> {
    let mut cells = Vec::new();
    for sc in scenarios {
        let forced: Vec<Option<Transport>> = match transports {
            Some(ts) => ts.iter().copied().map(Some).collect(),
            None => vec![None],
        };
        for b in brokers {
            for t in &forced {
                let shown = t.unwrap_or_else(|| own_transport(sc));
                let mut args = b.args();
                if let Some(t) = t {
                    args.extend(["--transport".to_string(), t.as_str().to_string()]);
                }
                args.extend(extra.iter().cloned());
                cells.push(Cell {
                    scenario: sc.clone(),
                    broker: b.clone(),
                    transport: *t,
                    spec: ChildSpec {
                        scenario: sc.clone(),
                        output_name: Some(format!("{}.{}.{}", stem(sc), b.label(), shown.as_str())),
                        args,
                    },
                    client: String::new(),
                });
            }
        }
    }
    cells
}

/// Every cell once per willy client and cut layer (`unplug compare --willies --cuts`); rumqttc
/// through a kernel or link cut runs as its driver (`unplug driver-rumqttc`).
pub fn across_clients(cells: Vec<Cell>, willies: &[WillyKind], cuts: &[CutLayer]) -> Vec<Cell> {
    let mut out = Vec::new();
    for c in cells {
        for w in willies {
            for cut in cuts {
                let mut cell = c.clone();
                cell.spec.args.extend([
                    "--willy".to_string(),
                    w.to_string(),
                    "--cut".to_string(),
                    cut.as_str().to_string(),
                ]);
                if let Some(n) = &mut cell.spec.output_name {
                    *n = format!("{n}.{}.{}", w.label(), cut.as_str());
                }
                cell.client = format!("{}/{}", w.label(), cut.as_str());
                out.push(cell);
            }
        }
    }
    out
}

/// Every cell `n` times (`compare --repeat N`): CELL.r1 .. CELL.rN, one after another.
pub fn repeated(cells: Vec<Cell>, n: u32) -> Vec<Cell> {
    cells
        .into_iter()
        .flat_map(|c| {
            let name = c
                .spec
                .output_name
                .clone()
                .unwrap_or_else(|| stem(&c.scenario));
            crate::suite::repeated_specs(&c.spec, &name, n)
                .into_iter()
                .map(move |spec| Cell { spec, ..c.clone() })
        })
        .collect()
}

/// The header of `compare --repeat`'s table: a row per cell, each figure as its distribution.
pub const REPEAT_HEADER: [&str; 8] = [
    "scenario",
    "broker",
    "transport",
    "passed",
    "last pkt -> broker drop (ms)",
    "last pkt -> will at monit (ms)",
    "cut -> willy notices (ms)",
    "verdict",
];

/// `compare --repeat`: the runs grouped by cell (their names without `.rK`), each read as a
/// distribution; one row per cell.
pub fn repeat_rows(
    cells: &[Cell],
    runs: &[ChildRun],
) -> (Vec<Vec<String>>, Vec<crate::repeat::Repeated>) {
    let mut groups: Vec<(&Cell, String, Vec<&ChildRun>)> = Vec::new();
    for (c, r) in cells.iter().zip(runs) {
        let base = crate::repeat::base_name(&r.name).to_string();
        match groups.iter_mut().find(|g| g.1 == base) {
            Some(g) => g.2.push(r),
            None => groups.push((c, base, vec![r])),
        }
    }
    let mut rows = Vec::new();
    let mut all = Vec::new();
    for (c, base, rs) in groups {
        let r = crate::repeat::Repeated::of(&base, &rs);
        let fig = |k: &str| crate::repeat::cell(r.figures.get(k));
        rows.push(vec![
            shown(c),
            c.broker.label().to_string(),
            c.transport.map_or("-", |t| t.as_str()).to_string(),
            format!("{}/{}", r.passed, r.runs),
            fig("drop_after_last_packet_ms"),
            fig("will_after_last_packet_ms"),
            fig("client_detect_after_cut_ms"),
            r.verdict.to_uppercase(),
        ]);
        all.push(r);
    }
    (rows, all)
}

/// A cell's name in the table: the scenario, and its client and cut when they vary.
fn shown(c: &Cell) -> String {
    match c.client.as_str() {
        "" => stem(&c.scenario),
        client => format!("{} [{client}]", stem(&c.scenario)),
    }
}

/// The table's rows, one per cell; a run without a verdict says why.
pub fn rows(cells: &[Cell], runs: &[ChildRun]) -> Vec<Vec<String>> {
    cells
        .iter()
        .zip(runs)
        .map(|(c, r)| {
            let transport = c.transport.map_or("-", |t| t.as_str());
            row(&shown(c), c.broker.label(), transport, r)
        })
        .collect()
}

/// One run's row: `shown` is its scenario column, `broker` and `transport` (the forced one, or
/// `-`) fill a row without a verdict, which says why.
pub fn row(shown: &str, broker: &str, transport: &str, r: &ChildRun) -> Vec<String> {
    match (&r.summary, r.problem()) {
        (Some(s), None) => table::compare_row(shown, s),
        (_, problem) => {
            let mut row = vec![shown.to_string(), broker.to_string(), transport.to_string()];
            row.resize(table::COMPARE_HEADER.len() - 1, "-".to_string());
            row.push(problem.unwrap_or_default());
            row
        }
    }
}

/// The plan as a shard records it (`--partition`): each cell's names for its table row and
/// picture, `labels` from [`labels`].
pub fn planned(cells: &[Cell], labels: &[(String, String)]) -> Vec<crate::shard::PlannedRun> {
    cells
        .iter()
        .zip(labels)
        .map(|(c, l)| crate::shard::PlannedRun {
            name: c
                .spec
                .output_name
                .clone()
                .unwrap_or_else(|| stem(&c.scenario)),
            scenario: c.scenario.clone(),
            shown: shown(c),
            broker: c.broker.label().to_string(),
            transport: c.transport.map_or("-", |t| t.as_str()).to_string(),
            picture: l.clone(),
        })
        .collect()
}

/// Each cell's broker and transport, for a picture row without a summary.
pub fn labels(cells: &[Cell], own_transport: impl Fn(&str) -> Transport) -> Vec<(String, String)> {
    cells
        .iter()
        .map(|c| {
            let t = c.transport.unwrap_or_else(|| own_transport(&c.scenario));
            let broker = match c.client.as_str() {
                "" => c.broker.label().to_string(),
                client => format!("{} {client}", c.broker.label()),
            };
            (broker, t.as_str().to_string())
        })
        .collect()
}

/// COMPARE.md: the table, then each broker's timing model (what "late" was allowed and why).
pub fn markdown(rows: &[Vec<String>], runs: &[ChildRun]) -> String {
    let mut out = String::from("# Brokers side by side\n\n");
    out += &table::render_markdown(&table::COMPARE_HEADER, rows);
    out += "\nTimes are from willy's last packet through the proxy (`last pkt`) or from the cut. \
            Each broker's timing model, as its profile documents it:\n\n";
    let mut seen = Vec::new();
    for s in runs.iter().filter_map(|r| r.summary.as_ref()) {
        if !seen.contains(&s.broker) {
            seen.push(s.broker.clone());
            out += &format!("- {}: {}\n", s.broker, s.timing_model);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(s: &str) -> Transport {
        if s.starts_with("ws") {
            Transport::Ws
        } else {
            Transport::Tcp
        }
    }

    #[test]
    fn every_cell_gets_its_own_file_name() {
        let cells = plan(
            &["native-last-will".into()],
            &[BrokerChoice::Builtin, BrokerChoice::Mosquitto { bin: None }],
            Some(&[Transport::Tcp, Transport::Ws]),
            own,
            &["--keepalive".into(), "2".into()],
        );
        let names: Vec<_> = cells
            .iter()
            .map(|c| c.spec.output_name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "native-last-will.builtin.tcp",
                "native-last-will.builtin.ws",
                "native-last-will.mosquitto.tcp",
                "native-last-will.mosquitto.ws"
            ]
        );
        assert_eq!(
            cells[3].spec.args,
            [
                "--broker",
                "mosquitto",
                "--transport",
                "ws",
                "--keepalive",
                "2"
            ]
        );
    }

    #[test]
    fn a_shards_plan_rebuilds_the_rows_the_cells_give() {
        let cells = plan(
            &["native-last-will".into(), "ws-no-will".into()],
            &[BrokerChoice::Builtin, BrokerChoice::Mosquitto { bin: None }],
            Some(&[Transport::Tcp]),
            own,
            &[],
        );
        let labels = labels(&cells, own);
        let planned = planned(&cells, &labels);
        assert_eq!(planned[3].name, "ws-no-will.mosquitto.tcp");
        assert_eq!(planned[3].picture, labels[3]);
        let runs: Vec<ChildRun> = cells
            .iter()
            .map(|c| ChildRun {
                name: c.spec.output_name.clone().unwrap(),
                exit: Some(2),
                summary: None,
                error: String::new(),
                status: crate::suite::RunStatus::Error("no broker".into()),
            })
            .collect();
        let again: Vec<Vec<String>> = planned
            .iter()
            .zip(&runs)
            .map(|(p, r)| row(&p.shown, &p.broker, &p.transport, r))
            .collect();
        assert_eq!(again, rows(&cells, &runs));
        assert_eq!(again[1][1], "mosquitto");
    }

    #[test]
    fn without_transports_each_scenario_keeps_its_own() {
        let cells = plan(
            &["ws-no-will".into()],
            &[BrokerChoice::Builtin],
            None,
            own,
            &[],
        );
        assert_eq!(cells.len(), 1);
        assert_eq!(
            cells[0].spec.output_name.as_deref(),
            Some("ws-no-will.builtin.ws")
        );
        assert!(!cells[0].spec.args.contains(&"--transport".to_string()));
    }

    #[test]
    fn clients_multiply_the_cells_rumqttc_included_in_the_kernel_cut() {
        let cells = plan(
            &["ws-last-will".to_string()],
            &[BrokerChoice::Builtin],
            None,
            own,
            &[],
        );
        let willies: Vec<WillyKind> = ["rumqttc", "mqttjs"].map(|w| w.parse().unwrap()).into();
        let cells = across_clients(cells, &willies, &[CutLayer::Proxy, CutLayer::Kernel]);
        let names: Vec<_> = cells
            .iter()
            .map(|c| c.spec.output_name.clone().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ws-last-will.builtin.ws.rumqttc.proxy",
                "ws-last-will.builtin.ws.rumqttc.kernel",
                "ws-last-will.builtin.ws.mqttjs.proxy",
                "ws-last-will.builtin.ws.mqttjs.kernel"
            ]
        );
        assert_eq!(shown(&cells[1]), "ws-last-will [rumqttc/kernel]");
        assert!(cells[3].spec.args.ends_with(&[
            "--willy".to_string(),
            "mqttjs".to_string(),
            "--cut".to_string(),
            "kernel".to_string()
        ]));
        assert_eq!(shown(&cells[3]), "ws-last-will [mqttjs/kernel]");
    }
}
