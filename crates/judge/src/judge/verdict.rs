//! A check's verdict as the summary records it: what every family of checks, the fleet's
//! figures and the reports share, apart from the judge's entry points in `mod.rs`.

use serde::{Deserialize, Serialize};

use crate::check_id::CheckId;

/// One verdict, as the summary records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: CheckId,
    /// The normative statement it tests, where there is one.
    pub spec: Option<String>,
    /// What the run makes of it: the spec verdict, read against the broker's known deviations.
    pub status: Status,
    /// Not a failure of the run: `pass`, `deviation` or `unexpected-pass`.
    pub pass: bool,
    pub expected: String,
    pub actual: String,
}

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The spec holds.
    Pass,
    /// The spec does not hold, and the broker's profile does not expect that.
    Fail,
    /// The spec does not hold, as the broker's profile documents (not a failure of the run).
    Deviation,
    /// The profile lists a deviation for this check, but the spec held: the list needs a look.
    UnexpectedPass,
}

impl Status {
    /// Every status with what it means (docs/reference.md).
    pub const ALL: [(Status, &'static str); 4] = [
        (Status::Pass, "the spec holds"),
        (
            Status::Fail,
            "the spec does not hold, and the broker's profile does not expect that: the run fails",
        ),
        (
            Status::Deviation,
            "the spec does not hold, as the broker's profile documents: not a failure of the run",
        ),
        (
            Status::UnexpectedPass,
            "the profile lists a deviation for this check but the spec held: the list needs a look \
             (not a failure of the run)",
        ),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Deviation => "deviation",
            Status::UnexpectedPass => "unexpected-pass",
        }
    }
}
