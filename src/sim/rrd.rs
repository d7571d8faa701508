//! `GET /rrd_updates` of one host, as xcp-rrdd answers it (xapi-notes.md §13): the host's own
//! data sources and those of the guests whose domains really run on it, never another host's.
//! The values are derived from the ground truth (a guest's columns appear on the host that
//! runs it, and move with it), in xapi's current JSON: every number a string, `NaN` where the
//! archive holds no data (rows from before the host's last boot), rows newest first.
//!
//! Modelled: the 5 s `AVERAGE` archive (120 rows, ten minutes), `start` (negative: relative
//! to the last update), `host=true`, `cf`, `interval` up to 86400, `session_id` as a query
//! parameter, and xapi's answers to bad requests (400 without `start`, 401 for a bad session,
//! 500 for an unparsable `start`, `cf=LAST`, a too large `interval` or an empty selection).
//! Not modelled: the 60 s, hourly and daily archives (a `start` older than ten minutes gets
//! the ten minutes there are), `MIN`/`MAX` (answered 500), the XML form, basic
//! authentication, dom0's columns and the `sr` class's own. The host's per-SR sources
//! (`read_<sr8>`, latency, iops) are there for every SR it has plugged, and one source
//! xenguard's mapping does not know (`xapi_open_fds`), as real hosts have dozens.

use super::model::{DOM0_MEMORY, HOST_MEMORY, Model, Role, SimHost};
use super::padding::HOST_CPUS;

/// The archive's step and length.
const STEP: i64 = 5;
const ROWS: i64 = 120;

/// What the host answers.
#[derive(Debug, PartialEq)]
pub enum RrdAnswer {
    /// 200 with this JSON body.
    Json(String),
    /// An error status with xapi's body (empty for 400).
    Error(u16, String),
    /// The host cannot check the session (its master is unreachable): the request waits.
    Hang,
}

fn internal(why: &str) -> RrdAnswer {
    RrdAnswer::Error(
        500,
        format!("<html><body><h1>HTTP 500 internal server error</h1>{why}</body></html>"),
    )
}

/// Answers `GET /rrd_updates?<query>` on host `i` at simulated time `now`.
pub fn rrd_updates(model: &Model, i: usize, query: &str, now: f64) -> RrdAnswer {
    let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let param = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    // xapi's forwarder checks only that `start` is there; xcp-rrdd parses it.
    let Some(start) = param("start") else {
        return RrdAnswer::Error(400, String::new());
    };
    match session_ok(model, i, param("session_id").unwrap_or_default()) {
        Some(true) => {}
        Some(false) => {
            return RrdAnswer::Error(
                401,
                "<html><body><h1>HTTP 401 unauthorised</h1></body></html>".into(),
            );
        }
        None => return RrdAnswer::Hang,
    }
    let Ok(start) = start.parse::<i64>() else {
        return internal("Failure(\"Int64.of_string\")");
    };
    let interval: i64 = param("interval").and_then(|v| v.parse().ok()).unwrap_or(0);
    if interval > 86_400 {
        return internal("Rrd.No_RRA_Available");
    }
    // Any spelling xapi does not know means "every consolidation function".
    match param("cf") {
        Some("LAST") => return internal("Rrd.No_RRA_Available"),
        Some("MIN" | "MAX") => return internal("Rrd.No_RRA_Available (not simulated)"),
        _ => {}
    }
    let host = &model.hosts[i];
    let last_update = (now.floor() as i64).max(0);
    let end = last_update / STEP * STEP;
    let start = if start < 0 {
        last_update + start
    } else {
        start
    };

    let mut columns: Vec<(String, Source)> = Vec::new();
    let vms = guests_here(model, i);
    if param("host") == Some("true") {
        let prefix = format!("AVERAGE:host:{}:", host.uuid);
        let vcpus: i64 = vms.iter().map(|g| g.vcpus).sum();
        let busy = (vcpus as f64 / HOST_CPUS as f64 * 0.4).min(1.0);
        for core in 0..HOST_CPUS {
            columns.push((
                format!("{prefix}cpu{core}"),
                Source::Wave(busy, core as u64),
            ));
        }
        columns.push((format!("{prefix}cpu_avg"), Source::Fixed(busy)));
        columns.push((
            format!("{prefix}loadavg"),
            Source::Fixed(vcpus as f64 * 0.4),
        ));
        let used: i64 = DOM0_MEMORY + vms.iter().map(|g| g.memory).sum::<i64>();
        columns.push((
            format!("{prefix}memory_total_kib"),
            Source::Fixed((HOST_MEMORY / 1024) as f64),
        ));
        columns.push((
            format!("{prefix}memory_free_kib"),
            Source::Fixed(((HOST_MEMORY - used).max(0) / 1024) as f64),
        ));
        let traffic = 1e5 * (1 + vms.len()) as f64;
        columns.push((format!("{prefix}pif_eth0_rx"), Source::Wave(traffic, 100)));
        columns.push((
            format!("{prefix}pif_eth0_tx"),
            Source::Wave(traffic / 2.0, 101),
        ));
        // Storage, per SR plugged here, named by the SR uuid's first 8 characters.
        for (n, sr8) in plugged_srs(host).iter().enumerate() {
            let seed = 400 + 10 * n as u64;
            let io = 2e5 * (1 + vms.len()) as f64;
            let per_sr = [
                ("read", Source::Wave(io, seed)),
                ("write", Source::Wave(io / 2.0, seed + 1)),
                ("iops_read", Source::Wave(io / 4096.0, seed + 2)),
                ("iops_write", Source::Wave(io / 8192.0, seed + 3)),
                ("read_latency", Source::Wave(250.0, seed + 4)),
                ("write_latency", Source::Wave(900.0, seed + 5)),
            ];
            for (name, source) in per_sr {
                columns.push((format!("{prefix}{name}_{sr8}"), source));
            }
        }
        // One of the many sources xenguard's mapping does not know.
        columns.push((
            format!("{prefix}xapi_open_fds"),
            Source::Fixed(40.0 + vms.len() as f64),
        ));
    }
    for guest in &vms {
        let prefix = format!("AVERAGE:vm:{}:", guest.uuid);
        for vcpu in 0..guest.vcpus {
            columns.push((
                format!("{prefix}cpu{vcpu}"),
                Source::Wave(0.3, guest.seed + vcpu as u64),
            ));
        }
        let levels = [
            ("memory", Source::Fixed(guest.memory as f64)),
            (
                "memory_internal_free",
                Source::Fixed((guest.memory / 4 / 1024) as f64),
            ),
            ("vif_0_rx", Source::Wave(5e4, guest.seed + 200)),
            ("vif_0_tx", Source::Wave(2e4, guest.seed + 201)),
            ("vbd_xvda_read", Source::Wave(1e5, guest.seed + 300)),
            ("vbd_xvda_write", Source::Wave(4e4, guest.seed + 301)),
            ("vbd_xvda_iops_read", Source::Wave(25.0, guest.seed + 302)),
            ("vbd_xvda_iops_write", Source::Wave(10.0, guest.seed + 303)),
            ("memory_target", Source::Fixed(guest.memory as f64)),
        ];
        for (name, source) in levels {
            columns.push((format!("{prefix}{name}"), source));
        }
    }
    if columns.is_empty() {
        return internal("Rrd.No_RRA_Available");
    }

    let booted = host.booted_at.floor() as i64;
    let rows: Vec<serde_json::Value> = (0..ROWS)
        .map(|k| end - k * STEP)
        .take_while(|t| *t >= start)
        .map(|t| {
            let values: Vec<String> = columns
                .iter()
                .map(|(_, source)| match t < booted {
                    true => "NaN".to_owned(),
                    false => number(source.at(t)),
                })
                .collect();
            serde_json::json!({"t": t.to_string(), "values": values})
        })
        .collect();
    let body = serde_json::json!({
        "meta": {
            "start": (start.div_euclid(STEP) * STEP + STEP).to_string(),
            "step": STEP.to_string(),
            "end": end.to_string(),
            "rows": rows.len().to_string(),
            "columns": columns.len().to_string(),
            "legend": columns.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(),
        },
        "data": rows,
    });
    RrdAnswer::Json(body.to_string())
}

/// Whether `session` is a valid session here; `None` when only an unreachable master could
/// tell (a slave checks pool sessions in the master's database).
fn session_ok(model: &Model, i: usize, session: &str) -> Option<bool> {
    let host = &model.hosts[i];
    if host.local_sessions.contains(session) {
        return Some(true);
    }
    match host.role {
        Role::Master => Some(host.sessions.contains(session)),
        Role::Slave(_) => model
            .database_host(i)
            .map(|m| model.hosts[m].sessions.contains(session)),
    }
}

/// The first 8 characters of the uuid of every SR plugged on the host, in uuid order.
fn plugged_srs(host: &SimHost) -> Vec<String> {
    let db = &host.db;
    let mut srs: Vec<String> = db
        .pbd
        .iter()
        .map(|(_, pbd)| pbd)
        .filter(|pbd| pbd.currently_attached && pbd.host.as_str() == host.reference)
        .filter_map(|pbd| db.sr.get(pbd.sr.as_str()))
        .map(|sr| sr.uuid.chars().take(8).collect())
        .collect();
    srs.sort();
    srs
}

/// A guest whose domain runs on the host.
struct Guest {
    uuid: String,
    vcpus: i64,
    memory: i64,
    seed: u64,
}

fn guests_here(model: &Model, i: usize) -> Vec<Guest> {
    let host = &model.hosts[i];
    let db = &host.db;
    let mut guests: Vec<Guest> = db
        .vm
        .iter()
        .filter(|(_, vm)| {
            model
                .running
                .get(&vm.uuid)
                .is_some_and(|hosts| hosts.contains(&host.uuid))
        })
        .map(|(_, vm)| Guest {
            uuid: vm.uuid.clone(),
            vcpus: vm.vcpus_at_startup.max(1),
            memory: vm.memory_static_max,
            seed: vm
                .uuid
                .bytes()
                .fold(7_u64, |h, b| h.wrapping_mul(31) ^ b as u64),
        })
        .collect();
    guests.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    guests
}

/// How a column's values are made up.
enum Source {
    /// The same value in every row.
    Fixed(f64),
    /// Around a level, varying by row and by a seed (never negative).
    Wave(f64, u64),
}

impl Source {
    fn at(&self, t: i64) -> f64 {
        match *self {
            Source::Fixed(v) => v,
            Source::Wave(level, seed) => {
                let phase = (t as f64 / 60.0) + (seed % 97) as f64;
                let v = level * (1.0 + 0.25 * phase.sin());
                // CPU fractions stay within 0..=1, as xcp-rrdd clamps them.
                if level <= 1.0 { v.clamp(0.0, 1.0) } else { v }
            }
        }
    }
}

/// xcp-rrdd's number format (`%0.15g`, zero as `0.0`).
fn number(v: f64) -> String {
    if v == 0.0 {
        "0.0".to_owned()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.15}");
        let s = s.trim_end_matches('0');
        s.trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_xcp_rrdd_writes_them() {
        assert_eq!(number(0.0), "0.0");
        assert_eq!(number(8_589_934_592.0), "8589934592");
        assert_eq!(number(0.25), "0.25");
    }
}
