//! docs/reference.md, written from the code: `unplug reference` prints it and a test
//! (`tests/reference.rs`) holds the committed file to it, so the reference cannot drift.
//!
//! ```text
//!  judge::CheckId::about()   -> the checks: rule and spec clauses
//!  broker::profile::known    -> the profiles: late allowance, timing model, deviations
//!  scenario::raw::TIMING     -> the timing keys: range and default
//!  scenario::BUILTIN         -> the built-in scenarios
//!  EXIT_CODES                -> what each exit code means
//! ```

use std::fmt::Write;

use crate::broker::profile::Profile;

/// What `unplug`'s exit codes mean, for every command.
pub const EXIT_CODES: &[(u8, &str)] = &[
    (0, "every check held (or the command had nothing to judge)"),
    (
        1,
        "a check failed: the run happened and its verdict is FAIL (data, not an error)",
    ),
    (
        2,
        "no verdict: bad input (a scenario file, a flag, a journal), or the run could not start",
    ),
    (
        130,
        "interrupted by SIGINT (Ctrl-C); 143 for SIGTERM: the files so far are kept",
    ),
];

/// The whole reference, as Markdown.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str(
        "# unplug reference\n\n\
         Written by `unplug reference` from the code; `tests/reference.rs` fails when this \
         file and the code disagree (regenerate: `unplug reference > docs/reference.md`).\n\n",
    );
    exit_codes(&mut out);
    checks(&mut out);
    profiles(&mut out);
    timing_keys(&mut out);
    scenarios(&mut out);
    out
}

fn exit_codes(out: &mut String) {
    out.push_str("## Exit codes\n\n| code | meaning |\n|---|---|\n");
    for (code, meaning) in EXIT_CODES {
        let _ = writeln!(out, "| {code} | {meaning} |");
    }
    out.push('\n');
}

fn checks(out: &mut String) {
    out.push_str(
        "## Checks\n\n\
         Each run is judged by the checks its scenario calls for; a check names the normative \
         statements it tests (blank: a client's or an intermediary's behaviour, which the spec \
         does not fix). `will-on-disconnect` carries the DISCONNECT's bytes in hex.\n\n\
         | check | holds a run to | spec |\n|---|---|---|\n",
    );
    for (name, rule, spec) in crate::judge::CheckId::about() {
        let _ = writeln!(out, "| `{name}` | {rule} | {spec} |");
    }
    out.push_str(
        "\nA check's `status` in NAME.summary.json (its `pass` is false only for `fail`):\n\n\
         | status | meaning |\n|---|---|\n",
    );
    for (status, meaning) in crate::judge::Status::ALL {
        let _ = writeln!(out, "| `{}` | {meaning} |", status.as_str());
    }
    out.push('\n');
}

fn profiles(out: &mut String) {
    out.push_str(
        "## Broker profiles\n\n\
         A profile says how late a broker may close a silent client (its timer's granularity) \
         and which spec checks it is known to fail: such a failure is a `deviation`, not a \
         failed run; a pass where the profile says it always fails is `unexpected-pass`.\n\n",
    );
    for (name, p) in Profile::known() {
        profile(out, name, &p);
    }
}

fn profile(out: &mut String, name: &str, p: &Profile) {
    let _ = writeln!(out, "### `{name}` ({})\n", p.broker);
    let _ = writeln!(
        out,
        "- late allowance: {} ms after 1.5 x keepalive",
        p.keepalive_late_ms
    );
    if p.will_delay_late_ms > 0 {
        let _ = writeln!(
            out,
            "- delayed will (MQTT 5): up to {} ms late",
            p.will_delay_late_ms
        );
    }
    if p.wss_close_ms > 0 {
        let _ = writeln!(
            out,
            "- over WSS, the will up to {} ms after the keepalive close",
            p.wss_close_ms
        );
    }
    let _ = writeln!(out, "- timing model: {}", p.timing_model);
    for c in &p.cannot {
        let _ = writeln!(
            out,
            "- cannot honour `{}`: {} ({})",
            c.setting, c.reason, c.evidence
        );
    }
    if p.deviations.is_empty() {
        out.push_str("- deviations: none\n\n");
        return;
    }
    out.push_str("\n| check | when | why | evidence |\n|---|---|---|---|\n");
    for d in &p.deviations {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            d.check,
            d.applies.words(),
            d.reason,
            d.evidence
        );
    }
    out.push('\n');
}

fn timing_keys(out: &mut String) {
    out.push_str(
        "## Scenario timing keys\n\n\
         Top-level keys of a scenario file; each may be left out for its default. \
         `transport` defaults to `tcp` and `protocol` to `3.1.1`. The other keys are shown, \
         commented, by `unplug show NAME` and in docs/guide.md.\n\n\
         | key | range | default | sets |\n|---|---|---|---|\n",
    );
    for t in crate::scenario::TIMING {
        let _ = writeln!(
            out,
            "| `{}` | {}..={} | {} | {} |",
            t.key, t.min, t.max, t.default, t.meaning
        );
    }
    out.push('\n');
}

fn scenarios(out: &mut String) {
    out.push_str(
        "## Built-in scenarios\n\n`unplug show NAME` prints one as a file to start from.\n\n\
         | scenario | transport | protocol | will | description |\n|---|---|---|---|---|\n",
    );
    for (name, _) in crate::scenario::BUILTIN {
        let Ok(s) = crate::scenario::load(name) else {
            continue;
        };
        let _ = writeln!(
            out,
            "| `{name}` | {} | {} | {} | {} |",
            s.transport.as_str(),
            s.protocol.as_str(),
            if s.will.is_some() { "yes" } else { "no" },
            s.description.replace('|', "\\|")
        );
    }
}
