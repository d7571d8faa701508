//! The confirmation's decision, apart from the reading that feeds it. The confirmation step
//! first gathers a [`Confirmation`] (the probes' findings, the journal's history, the guards'
//! [`Facts`]), then [`decide`] says what follows, and only then is anything taken or written.
//! Everything here is pure: table tests cover every outcome and every clock step.

use std::time::Duration;

use super::guards::{self, Facts, Limits, Reason};

/// Everything the confirmation decides on, read before anything is decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirmation {
    /// The guards' facts.
    pub facts: Facts,
    /// What the confirmation itself could not establish (no inventory, no survivor, ...).
    pub problems: Vec<Reason>,
    /// A remediation of the same host that finished after this one was planned.
    pub recovered_by: Option<i64>,
    /// For a dead slave: how many VMs XAPI records running on it, or why that could not be
    /// read. `None` when it does not matter (a master: its database is gone with it), and
    /// until everything else allows: the count costs a master call, so it is read last.
    pub resident_vms: Option<Result<usize, String>>,
}

/// What follows a confirmation.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing to do, and nothing wrong: the step says why.
    Superseded(String),
    /// Something stands in the way: every reason.
    Refused(Vec<Reason>),
    /// Confirmed: take the pool's lease (a slave) and record the run state.
    Proceed,
}

/// The decision. In this order: a recovery of the same death finished meanwhile (moot); the
/// guards and the confirmation's own problems (every reason, never just the first); a slave
/// with no VM on it (nothing to recover, so no fence); a slave whose VMs cannot be read
/// (refused: failing closed).
pub fn decide(c: &Confirmation, limits: &Limits) -> Decision {
    if let Some(earlier) = c.recovered_by {
        return Decision::Superseded(format!("host already recovered by remediation {earlier}"));
    }
    let mut reasons = guards::decide(&c.facts, limits).err().unwrap_or_default();
    reasons.extend(c.problems.iter().cloned());
    if !reasons.is_empty() {
        return Decision::Refused(reasons);
    }
    match &c.resident_vms {
        Some(Ok(0)) => Decision::Superseded(
            "nothing to recover: XAPI records no VM running on the host".into(),
        ),
        Some(Err(_)) => Decision::Refused(vec![Reason::Unknown("the host's VMs")]),
        Some(Ok(_)) | None => Decision::Proceed,
    }
}

/// What the journal (wall clock, kept across restarts) knows of a pool's fences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JournaledFences {
    /// Fences of the pool since the window's start by the wall clock.
    pub in_window: u32,
    /// Unix time of the suspect's last fence; `None` when no suspect is known.
    pub last_of_suspect: Option<Option<f64>>,
}

/// The guards' fence facts: how many fences fall in the window, and when the suspect was last
/// acted on. Two records feed them: the journal's wall-clock times, and the fences this run
/// issued, aged by the monotonic clock (`here`: host uuid and age, already limited to the
/// window). The larger count and the more recent time count, so a wall clock stepped forward
/// can shorten neither the fence window nor a host's cooldown.
pub fn fence_facts(
    now: f64,
    suspect: Option<&str>,
    journal: JournaledFences,
    here: &[(String, Duration)],
) -> (Option<u32>, Option<Option<f64>>) {
    let in_window = journal.in_window.max(here.len() as u32);
    let last = suspect.and(journal.last_of_suspect).map(|journaled| {
        let here = here
            .iter()
            .filter(|(host, _)| Some(host.as_str()) == suspect)
            .map(|(_, age)| now - age.as_secs_f64())
            .reduce(f64::max);
        match (journaled, here) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    });
    (Some(in_window), last)
}

/// When the pool last stood down for a storm: the journal's wall-clock time, or this run's
/// record aged by the monotonic clock (`here`), whichever is more recent, so a wall clock
/// stepped forward cannot end a storm's cooldown early.
pub fn last_storm(now: f64, journaled: Option<f64>, here: Option<Duration>) -> Option<f64> {
    let here = here.map(|age| now - age.as_secs_f64());
    match (journaled, here) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// How many of the pool's hosts count as unhealthy for the storm limit: the suspect, the other
/// hosts silent now, and the hosts the pool's recent remediations are about, each once.
pub fn unhealthy_hosts(suspect: &str, silent: &[String], recent: &[String]) -> usize {
    let mut hosts: Vec<&str> = std::iter::once(suspect)
        .chain(silent.iter().map(String::as_str))
        .chain(recent.iter().map(String::as_str))
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remediation::clock::{Clock, ManualClock};

    use crate::remediation::guards::fixtures::{clear, limits};

    fn confirmation() -> Confirmation {
        Confirmation {
            facts: clear(1e9),
            problems: vec![],
            recovered_by: None,
            resident_vms: Some(Ok(3)),
        }
    }

    #[test]
    fn every_outcome_in_its_order() {
        let with = |f: &dyn Fn(&mut Confirmation)| {
            let mut c = confirmation();
            f(&mut c);
            decide(&c, &limits())
        };
        assert_eq!(with(&|_| {}), Decision::Proceed);
        assert_eq!(with(&|c| c.resident_vms = None), Decision::Proceed);
        assert!(
            matches!(with(&|c| c.resident_vms = Some(Ok(0))), Decision::Superseded(why) if why.starts_with("nothing to recover"))
        );
        assert_eq!(
            with(&|c| c.resident_vms = Some(Err("timeout".into()))),
            Decision::Refused(vec![Reason::Unknown("the host's VMs")])
        );
        // A finished recovery of the same death wins over everything, guards included.
        assert_eq!(
            with(&|c| {
                c.recovered_by = Some(7);
                c.facts.kill_switch = Some(true);
            }),
            Decision::Superseded("host already recovered by remediation 7".into())
        );
        // Guards and problems come before the VM count, all reported together.
        assert_eq!(
            with(&|c| {
                c.facts.kill_switch = Some(true);
                c.problems = vec![Reason::Unknown("the pool's survivors")];
                c.resident_vms = Some(Ok(0));
            }),
            Decision::Refused(vec![
                Reason::KillSwitch,
                Reason::Unknown("the pool's survivors")
            ])
        );
    }

    /// The fence facts across clock steps: a fence this run issued 10 minutes ago (monotonic)
    /// and journaled then, read after the wall clock moved.
    #[test]
    fn a_stepped_wall_clock_shortens_neither_the_window_nor_the_cooldown() {
        const HOST: &str = "h1";
        let window = limits().fence_window;
        // (wall step in seconds, what the journal's window query finds)
        let cases = [
            (0.0, 1),
            (2.0 * 3600.0, 0), // forward: the journal's fence falls outside the window
            (-2.0 * 3600.0, 1), // back: the journal's fence lies in the future
        ];
        for (step, journal_count) in cases {
            let clock = ManualClock::new(1e9);
            let fenced_at_wall = clock.unix();
            let fenced_at = clock.monotonic();
            clock.advance(Duration::from_secs(600));
            clock.step_wall(step);
            let now = clock.unix();
            let age = clock.monotonic() - fenced_at;
            let here = [(HOST.to_owned(), age)];
            assert!(age < window);
            let journal = JournaledFences {
                in_window: journal_count,
                last_of_suspect: Some(Some(fenced_at_wall)),
            };
            let (in_window, last) = fence_facts(now, Some(HOST), journal, &here);
            assert_eq!(in_window, Some(1), "step {step}");
            let mut facts = clear(now);
            facts.fences_in_window = in_window;
            facts.last_action_on_host = last;
            let blocked = guards::cooldown(&facts, &limits());
            if step < 0.0 {
                // Journaled in the future: the cooldown cannot tell the age, so it blocks.
                assert!(
                    matches!(blocked, Err(Reason::Unknown(_))),
                    "step {step}: {blocked:?}"
                );
            } else {
                assert!(
                    matches!(blocked, Err(Reason::HostCooldown { remaining }) if (remaining - 3000.0).abs() < 1.0),
                    "step {step}: {blocked:?}"
                );
            }
        }
    }

    /// The storm cooldown, like the fence cooldown: a wall clock stepped forward two hours
    /// makes the journaled stand-down look old, and this run's monotonic record keeps the
    /// pool down; stepped back, the journaled time lies in the future and blocks as unknown.
    #[test]
    fn a_stepped_wall_clock_does_not_end_a_storm_cooldown() {
        let cooldown = limits().storm_cooldown.as_secs_f64();
        for step in [0.0, 2.0 * 3600.0, -2.0 * 3600.0] {
            let clock = ManualClock::new(1e9);
            let stood_down_wall = clock.unix();
            let stood_down = clock.monotonic();
            clock.advance(Duration::from_secs(600));
            clock.step_wall(step);
            let now = clock.unix();
            let here = clock.monotonic() - stood_down;
            let mut facts = clear(now);
            facts.last_storm = Some(last_storm(now, Some(stood_down_wall), Some(here)));
            let verdict = guards::storm(&facts, &limits());
            if step < 0.0 {
                assert!(
                    matches!(verdict, Err(Reason::Unknown(_))),
                    "step {step}: {verdict:?}"
                );
            } else {
                assert!(
                    matches!(verdict, Err(Reason::StormCooldown { remaining }) if (remaining - (cooldown - 600.0)).abs() < 1.0),
                    "step {step}: {verdict:?}"
                );
            }
            // With the journal alone, the forward step would have ended the cooldown.
            if step > 0.0 {
                facts.last_storm = Some(last_storm(now, Some(stood_down_wall), None));
                assert_eq!(guards::storm(&facts, &limits()), Ok(()));
            }
        }
        assert_eq!(last_storm(1e9, None, None), None);
        assert_eq!(
            last_storm(1e9, None, Some(Duration::from_secs(5))),
            Some(1e9 - 5.0)
        );
    }

    #[test]
    fn unhealthy_hosts_count_each_host_once() {
        let s = |v: &[&str]| v.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        assert_eq!(unhealthy_hosts("a", &[], &[]), 1);
        assert_eq!(
            unhealthy_hosts("a", &s(&["b", "c"]), &s(&["a", "c", "d"])),
            4
        );
    }

    #[test]
    fn fence_facts_without_a_suspect_or_a_record() {
        let none = JournaledFences {
            in_window: 0,
            last_of_suspect: None,
        };
        assert_eq!(fence_facts(1e9, None, none, &[]), (Some(0), None));
        let never = JournaledFences {
            in_window: 0,
            last_of_suspect: Some(None),
        };
        assert_eq!(
            fence_facts(1e9, Some("h1"), never, &[]),
            (Some(0), Some(None))
        );
        // Another host's fence counts in the window, not in this host's cooldown.
        let other = [("h2".to_owned(), Duration::from_secs(5))];
        assert_eq!(
            fence_facts(1e9, Some("h1"), never, &other),
            (Some(1), Some(None))
        );
    }
}
