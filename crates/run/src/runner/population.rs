//! Who a run puts on the stage: one willy (rumqttc in this process, a child, or a driver)
//! with monit and the extras, or a fleet of N willies with its monit (`crate::fleet`). The
//! runner's steps are the same for both; each step asks the population what it does.
//!
//! ```text
//!                 One                               Fleet
//!  of             -                                 open files raised (fleet::prepare)
//!  enter          Actors::wire (stage.rs)           monit, the waves (fleet::gather)
//!  play           watch: the control loop (mod.rs)  the cut, the wills (Crowd::play)
//!  tear_down      Actors::stop                      Crowd::stop        -> the proxy settled
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

use super::stage::{Actors, Stage};
use super::{watch, End, RunOptions};
use crate::event::Journal;
use crate::fleet::{Crowd, Prepared};
use crate::lifeline::Interrupts;
use crate::scenario::Scenario;

/// Who plays, before the stage is set.
pub(super) enum Population {
    One,
    /// Made once per run: boxed so that `One` stays small.
    Fleet(Box<Prepared>),
}

/// Who plays, on the stage.
pub(super) enum Cast {
    One(Actors),
    Fleet(Crowd),
}

impl Population {
    /// One willy, or a fleet with its open files raised. A fleet listens for signals itself
    /// from the start (`driving`): it has no cycles before which a signal stops the run.
    pub(super) fn of(
        s: &Scenario,
        opts: &RunOptions,
        journal: &Journal,
        driving: &AtomicBool,
    ) -> anyhow::Result<Population> {
        if s.fleet.is_none() {
            return Ok(Population::One);
        }
        driving.store(true, Ordering::SeqCst);
        let prepared = crate::fleet::prepare(
            s,
            &opts.broker,
            journal,
            opts.echo.stdout,
            opts.fleet_shard.as_ref(),
        )?;
        Ok(Population::Fleet(Box::new(prepared)))
    }

    /// On the stage: one willy's actors wired, or the fleet connected.
    pub(super) async fn enter(
        self,
        s: &Scenario,
        stage: &Stage,
        journal: &Journal,
        interrupts: &Interrupts,
    ) -> anyhow::Result<Cast> {
        Ok(match self {
            Population::One => Cast::One(Actors::wire(s, stage, journal).await?),
            Population::Fleet(prepared) => {
                let upstream = stage.broker.endpoints.tcp_for(s.protocol);
                let crowd = crate::fleet::gather(
                    s,
                    *prepared,
                    upstream,
                    stage.proxy.addr,
                    journal,
                    interrupts,
                )
                .await?;
                Cast::Fleet(crowd)
            }
        })
    }
}

impl Cast {
    /// The run itself, until it ends: one willy's cycles under the control loop, or the
    /// fleet's cut and its wills.
    pub(super) async fn play(
        &mut self,
        s: &Scenario,
        opts: &RunOptions,
        stage: &Stage,
        journal: &Journal,
        interrupts: &Interrupts,
    ) -> anyhow::Result<End> {
        match self {
            Cast::One(actors) => {
                Ok(watch(s, opts, &stage.broker, actors, journal, interrupts).await)
            }
            Cast::Fleet(crowd) => {
                let played = crowd.play(s, &stage.proxy, journal, interrupts).await?;
                Ok(End {
                    reason: played.reason.clone(),
                    interrupted: played.interrupted,
                    refused: None,
                    fleet: Some(played),
                })
            }
        }
    }

    /// Stop every actor (or willy of the fleet), then let the proxy record what it forwarded
    /// so far: it records on its own thread, a little after forwarding, and all of it must be
    /// in the journal before the run is judged.
    pub(super) async fn tear_down(self, stage: &Stage) {
        match self {
            Cast::One(actors) => actors.stop(),
            Cast::Fleet(crowd) => crowd.stop(),
        }
        stage.proxy.settle().await;
    }
}
