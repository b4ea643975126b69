//! The extra actors a scenario may ask for, besides willy and monit, each started or told at
//! its moment by the control loop:
//!
//! ```text
//!  facts so far, each tick --Extras::on_tick--> pubby: go (from the start, or from the cut)
//!                                          --> twin: willy's client id, `takeover.after` past the cut
//!                                          --> flaky monit: away `away_after` past the cut,
//!                                              back `back_after_drop` past the broker's drop
//!                                              (or at the will's deadline)
//!                                          --> late subscriber: once the will reached monit
//! ```

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::actor::monit::FlakySignals;
use crate::broker::profile::Profile;
use crate::broker::Endpoints;
use crate::event::Journal;
use crate::judge::{self, Facts};
use crate::scenario::{PublishFrom, Scenario};

/// A flaky monit leaves and returns when the runner says: the senders of its two signals.
pub(super) struct FlakyMonit {
    away: Option<oneshot::Sender<()>>,
    back: Option<oneshot::Sender<()>>,
}

impl FlakyMonit {
    /// The runner's side and monit's side (None: monit stays), made before monit starts.
    pub(super) fn signals(s: &Scenario) -> (FlakyMonit, Option<FlakySignals>) {
        match s.monit.flaky {
            Some(_) => {
                let (away_tx, away) = oneshot::channel();
                let (back_tx, back) = oneshot::channel();
                (
                    FlakyMonit {
                        away: Some(away_tx),
                        back: Some(back_tx),
                    },
                    Some(FlakySignals { away, back }),
                )
            }
            None => (
                FlakyMonit {
                    away: None,
                    back: None,
                },
                None,
            ),
        }
    }
}

/// pubby, the twin, a flaky monit's signals and the late subscriber of one run.
pub(super) struct Extras {
    /// pubby's go, until it is given: when pubby publishes from, and the sender.
    pubby_go: Option<(PublishFrom, oneshot::Sender<()>)>,
    pubby: Option<JoinHandle<()>>,
    flaky: FlakyMonit,
    twin: Option<JoinHandle<()>>,
    late: Option<JoinHandle<()>>,
    /// The broker's plain TCP listener (pubby, the twin) and monit's (the late subscriber).
    broker: SocketAddr,
    monit_broker: SocketAddr,
    journal: Journal,
}

impl Extras {
    /// Once monit is subscribed: pubby connects now, and goes at once if it publishes from
    /// the start.
    pub(super) fn start(
        s: &Scenario,
        endpoints: &Endpoints,
        journal: &Journal,
        flaky: FlakyMonit,
    ) -> Extras {
        let (pubby_go, pubby) = match &s.publisher {
            Some(p) => {
                let (go_tx, go_rx) = oneshot::channel();
                let task = tokio::spawn(
                    crate::actor::pubby::Pubby {
                        broker: endpoints.tcp,
                        publisher: p.clone(),
                        journal: journal.clone(),
                    }
                    .run(go_rx),
                );
                (Some((p.from, go_tx)), Some(task))
            }
            None => (None, None),
        };
        let mut extras = Extras {
            pubby_go,
            pubby,
            flaky,
            twin: None,
            late: None,
            broker: endpoints.tcp,
            monit_broker: endpoints.tcp_for(s.monit_protocol()),
            journal: journal.clone(),
        };
        extras.start_pubby(false);
        extras
    }

    /// pubby's go, once: from the start, or from the cut.
    fn start_pubby(&mut self, cut: bool) {
        if self
            .pubby_go
            .as_ref()
            .is_some_and(|(from, _)| *from == PublishFrom::Start || cut)
        {
            if let Some((_, go)) = self.pubby_go.take() {
                let _ = go.send(());
            }
        }
    }

    /// Start or tell each extra actor whose moment has come, `now_ms` into the run.
    pub(super) fn on_tick(&mut self, s: &Scenario, profile: &Profile, facts: &Facts, now: f64) {
        self.start_pubby(facts.cut_at_ms.is_some());
        if let (Some(t), Some(cut), None) = (s.takeover, facts.cut_at_ms, &self.twin) {
            if now >= cut + t.after.as_secs_f64() * 1000.0 {
                self.twin = Some(tokio::spawn(
                    crate::actor::twin::Twin {
                        broker: self.broker,
                        keepalive: s.keepalive,
                        journal: self.journal.clone(),
                    }
                    .run(),
                ));
            }
        }
        if let (Some(fl), Some(cut)) = (s.monit.flaky, facts.cut_at_ms) {
            if now >= cut + fl.away_after.as_secs_f64() * 1000.0 {
                if let Some(tx) = self.flaky.away.take() {
                    let _ = tx.send(());
                }
            }
            // Back once the broker dropped willy (its will then published while monit was
            // away), or at the will's deadline if it never does.
            let back_at = facts
                .broker_drop_ms
                .map(|d| d + fl.back_after_drop.as_secs_f64() * 1000.0)
                .or(judge::will_deadline_ms(s, profile, facts));
            if self.flaky.away.is_none() && back_at.is_some_and(|b| now >= b) {
                if let Some(tx) = self.flaky.back.take() {
                    let _ = tx.send(());
                }
            }
        }
        if s.late_subscriber && self.late.is_none() && facts.will_received_ms.is_some() {
            self.late = Some(tokio::spawn(crate::actor::monit::late_subscriber(
                self.monit_broker,
                s.monit_protocol(),
                self.journal.clone(),
            )));
        }
    }

    /// The run is over: stop every extra actor still running.
    pub(super) fn abort(self) {
        for task in [self.pubby, self.twin, self.late].into_iter().flatten() {
            task.abort();
        }
    }
}
