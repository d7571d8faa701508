//! Pure rendering of one pool's state into metric families (architecture.md §5): no I/O, no clock —
//! the scrape passes `now`. Every scrape builds fresh series, so vanished VMs vanish.
//!
//! Numeric series carry stable ids (`pool`, `host_uuid`, `vm_uuid`); human names live in the
//! `_info` series. A host the exporter has only probed (never seen in a pool record, e.g. when
//! it started while the master was down) is labelled `host_uuid="address:<address>"`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use std::fmt::Write as _;

use prometheus::proto::MetricFamily;

use crate::xapi::records::{Host, PowerState, SM_CONFIG_HOST_PREFIX};

use super::cache::Cache;
use super::rrd::{Resources, SR_PREFIX_LABEL};
use super::state::{Probe, Role, WatchStatus};

/// Everything one pool's series are computed from.
#[derive(Debug, Clone, Copy)]
pub struct PoolView<'a> {
    /// The `pool` label.
    pub name: &'a str,
    /// The cached objects.
    pub cache: &'a Cache,
    /// The watcher's status.
    pub status: &'a WatchStatus,
    /// Probe results by address.
    pub probes: &'a BTreeMap<String, Probe>,
    /// `xen_pool_up` requires an update newer than this many seconds.
    pub max_state_age: f64,
    /// Resource metrics from the hosts' RRDs.
    pub resources: &'a Resources,
}

/// A family under construction.
/// One family's header and sample lines, written straight in the text format: building the
/// client library's structures for ~10,000 series cost more than everything else in a scrape.
struct Family {
    name: &'static str,
    help: &'static str,
    body: String,
}

/// Every family xenguard renders per pool, in exposition order, with its help text.
pub const FAMILIES: &[(&str, &str)] = &[
    (
        "xen_pool_up",
        "1 if the exporter has a working session to the pool's master and its cached state is current.",
    ),
    ("xen_pool_info", "Pool identity; always 1."),
    (
        "xen_pool_master_reachable",
        "1 if the master named by the pool record answers the exporter's probe as master.",
    ),
    (
        "xen_pool_masters",
        "Hosts that currently accept a pool login as master; more than 1 is split brain.",
    ),
    (
        "xen_pool_ha_enabled",
        "1 if XAPI HA is enabled on the pool (xenguard's remediation stands down).",
    ),
    (
        "xen_pool_state_age_seconds",
        "Seconds since the cached pool state was last confirmed by the master.",
    ),
    ("xen_host_info", "Host identity; always 1."),
    (
        "xen_host_live",
        "host_metrics.live as the master sees it (false 600 s after the last heartbeat).",
    ),
    (
        "xen_host_reachable",
        "1 if the exporter's own probe of the host got a well-formed XAPI answer.",
    ),
    (
        "xen_host_last_seen_timestamp_seconds",
        "Unix time of the last probe of the host that got a well-formed XAPI answer.",
    ),
    (
        "xen_host_emergency_mode",
        "host.is_in_emergency_mode via a local session (only known for reachable hosts).",
    ),
    (
        "xen_host_is_master",
        "1 if the pool record names this host as master.",
    ),
    (
        "xen_host_orphaned",
        "1 if the host is a slave whose master is not a reachable master, or is in emergency mode: it needs pool.recover_slaves.",
    ),
    (
        "xen_host_enabled",
        "The host's scheduler flag (not liveness).",
    ),
    (
        "xen_host_stuck_vms",
        "VMs Running or Paused on this host while it is not live or not reachable.",
    ),
    (
        "xen_host_vdi_locks",
        "VDIs whose sm_config still carries this host's host_<ref> attachment tag.",
    ),
    (
        "xen_vm_stuck_running",
        "1 for each VM Running or Paused on a host that is not live or not reachable.",
    ),
    (
        "xen_vm_info",
        "VM identity (guests only: no templates, snapshots or control domains); always 1.",
    ),
    (
        "xen_vm_power_state",
        "1 for the VM's current power state (state label: Halted, Paused, Running, Suspended).",
    ),
];

impl Family {
    fn new(name: &'static str) -> Family {
        let help = all_families()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, h)| *h);
        Family {
            name,
            help,
            body: String::new(),
        }
    }

    /// Appends one sample line in the text format (0.0.4).
    fn add(&mut self, labels: &[(&str, &str)], value: f64) {
        let out = &mut self.body;
        out.push_str(self.name);
        if !labels.is_empty() {
            out.push('{');
            for (k, (name, v)) in labels.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                out.push_str(name);
                out.push_str("=\"");
                escape_label_value(out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        write_value(out, value);
        out.push('\n');
    }

    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        // Counters end in `_total` (the naming guide's rule), everything else is a gauge.
        let kind = if self.name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
        out.push_str(&self.body);
    }
}

/// Label values escape `\\`, `"` and newlines (text format 0.0.4).
fn escape_label_value(out: &mut String, value: &str) {
    // Almost every value (uuids, names, states) needs no escape: copy it whole. (What this
    // costs is mostly reading the value at all: a byte loop measured no faster than memchr.)
    let clean = memchr::memchr3(b'\\', b'"', b'\n', value.as_bytes()).is_none();
    if clean {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value == 0.0 {
        out.push('0');
    } else if value == 1.0 {
        out.push('1');
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        // Counts and timestamps in whole seconds: integer formatting, same text, faster.
        let _ = write!(out, "{}", value as i64);
    } else {
        // The shortest text that reads back as the same number, as `{value}` would give
        // but without the formatting machinery (resource counters are mostly fractional).
        out.push_str(zmij::Buffer::new().format_finite(value));
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// The pool families, then the resource families, in exposition order.
fn all_families() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    FAMILIES.iter().chain(super::rrd::FAMILIES)
}

/// Renders several pools into the text exposition (one family per name, HELP and TYPE first).
pub fn render(pools: &[PoolView<'_>], now: f64) -> String {
    let mut families: BTreeMap<&'static str, Family> = all_families()
        .map(|(name, _)| (*name, Family::new(name)))
        .collect();
    for pool in pools {
        render_pool(pool, now, &mut families);
    }
    let mut out = String::with_capacity(families.values().map(|f| f.body.len() + 200).sum());
    for (name, _) in all_families() {
        if let Some(family) = families.get(name).filter(|f| !f.body.is_empty()) {
            family.write(&mut out);
        }
    }
    out
}

/// A host as the series see it: from the pool record, or only from a probe.
struct HostRow<'a> {
    uuid: String,
    reference: Option<&'a str>,
    record: Option<&'a Host>,
    address: String,
}

/// Adds a sample to the family of that name.
fn adder<'f>(
    families: &'f mut BTreeMap<&'static str, Family>,
) -> impl FnMut(&'static str, &[(&str, &str)], f64) + 'f {
    |name, labels, value| {
        if let Some(family) = families.get_mut(name) {
            family.add(labels, value);
        }
    }
}

fn render_pool(pool: &PoolView<'_>, now: f64, families: &mut BTreeMap<&'static str, Family>) {
    let mut f = adder(families);
    let name = pool.name;
    let cache = pool.cache;
    let record = cache.pool();

    let age = pool.status.last_update.map(|t| (now - t).max(0.0));
    let up = pool.status.connected && age.is_some_and(|a| a <= pool.max_state_age);
    f("xen_pool_up", &[("pool", name)], flag(up));
    if let Some(age) = age {
        f("xen_pool_state_age_seconds", &[("pool", name)], age);
    }

    let master_ref = record.map(|p| p.master.as_str()).unwrap_or_default();
    let master_address = cache.hosts.get(master_ref).map(|h| h.address.as_str());
    let probe_master = |address: &str| {
        pool.probes
            .get(address)
            .is_some_and(|p| p.role == Role::Master)
    };
    let masters = pool
        .probes
        .values()
        .filter(|p| p.role == Role::Master)
        .count();
    let master_reachable = match master_address {
        Some(address) => probe_master(address),
        None => masters > 0,
    };
    if let Some(p) = record {
        let master_uuid = cache
            .hosts
            .get(master_ref)
            .map(|h| h.uuid.as_str())
            .unwrap_or_default();
        f(
            "xen_pool_info",
            &[
                ("pool", name),
                ("pool_uuid", &p.uuid),
                ("name_label", &p.name_label),
                ("master_uuid", master_uuid),
            ],
            1.0,
        );
        f("xen_pool_ha_enabled", &[("pool", name)], flag(p.ha_enabled));
    }
    f(
        "xen_pool_master_reachable",
        &[("pool", name)],
        flag(master_reachable),
    );
    f("xen_pool_masters", &[("pool", name)], masters as f64);

    let mut rows: Vec<HostRow<'_>> = cache
        .hosts
        .iter()
        .map(|(r, h)| HostRow {
            uuid: h.uuid.clone(),
            reference: Some(r),
            record: Some(h),
            address: h.address.clone(),
        })
        .collect();
    let known: BTreeSet<&str> = cache.hosts.values().map(|h| h.address.as_str()).collect();
    for address in pool.probes.keys().filter(|a| !known.contains(a.as_str())) {
        rows.push(HostRow {
            uuid: format!("address:{address}"),
            reference: None,
            record: None,
            address: address.clone(),
        });
    }

    let mut locks: BTreeMap<&str, usize> = BTreeMap::new();
    for vdi in cache.vdis.values() {
        for key in vdi.sm_config.keys() {
            if let Some(host) = key.strip_prefix(SM_CONFIG_HOST_PREFIX) {
                *locks.entry(host).or_default() += 1;
            }
        }
    }

    let mut down: HashSet<&str> = HashSet::new();
    for row in &rows {
        let labels = [("pool", name), ("host_uuid", row.uuid.as_str())];
        let probe = pool.probes.get(&row.address);
        let reachable = probe.is_some_and(Probe::reachable);
        let name_label = row
            .record
            .map(|h| h.name_label.as_str())
            .unwrap_or_default();
        f(
            "xen_host_info",
            &[
                ("pool", name),
                ("host_uuid", &row.uuid),
                ("name_label", name_label),
                ("address", &row.address),
            ],
            1.0,
        );
        if let Some(probe) = probe {
            f("xen_host_reachable", &labels, flag(reachable));
            if let Some(seen) = probe.last_seen {
                f("xen_host_last_seen_timestamp_seconds", &labels, seen);
            }
            if let Some(emergency) = probe.emergency {
                f("xen_host_emergency_mode", &labels, flag(emergency));
            }
            let orphaned = match &probe.role {
                Role::Slave(master) => !probe_master(master),
                Role::Emergency(_) => true,
                _ => probe.emergency == Some(true),
            };
            f("xen_host_orphaned", &labels, flag(orphaned));
        }
        let (Some(reference), Some(host)) = (row.reference, row.record) else {
            continue;
        };
        let live = cache.live(host);
        if let Some(live) = live {
            f("xen_host_live", &labels, flag(live));
        }
        f("xen_host_is_master", &labels, flag(reference == master_ref));
        f("xen_host_enabled", &labels, flag(host.enabled));
        f(
            "xen_host_vdi_locks",
            &labels,
            locks.get(reference).copied().unwrap_or(0) as f64,
        );
        // Not reachable counts only once a probe has run: an unprobed host is not evidence.
        if live == Some(false) || probe.is_some_and(|p| !p.reachable()) {
            down.insert(reference);
        }
    }

    drop(f);
    let stuck_per_host = render_vms(pool, &down, families);
    let mut f = adder(families);
    for (reference, host) in &cache.hosts {
        let stuck = stuck_per_host.get(reference.as_str()).copied().unwrap_or(0);
        f(
            "xen_host_stuck_vms",
            &[("pool", name), ("host_uuid", &host.uuid)],
            stuck as f64,
        );
    }
    drop(f);
    render_resources(pool, families);
}

/// The resource series (`xen_host_rrd_up` and the families of [`super::rrd::FAMILIES`]). A
/// host's SR series name the SR by its uuid's first 8 characters; they are published under the
/// SR's full `sr_uuid` when exactly one SR of the pool has that prefix, and not at all when
/// none or several do (a series that cannot say which SR it measures misleads). The series are
/// ordered by family, so each family is looked up once, not once per series (there are ten
/// resource series per guest).
fn render_resources(pool: &PoolView<'_>, families: &mut BTreeMap<&'static str, Family>) {
    if let Some(up) = families.get_mut("xen_host_rrd_up") {
        for (uuid, host) in &pool.resources.hosts {
            up.add(&[("pool", pool.name), ("host_uuid", uuid)], flag(host.up));
        }
    }
    // Each SR once per render, not once per series: prefix -> its SR, or None when shared.
    let mut by_prefix: HashMap<&str, Option<&str>> = HashMap::new();
    for sr in pool.cache.srs.values() {
        if let Some(prefix) = sr.uuid.get(..8) {
            by_prefix
                .entry(prefix)
                .and_modify(|only| *only = None)
                .or_insert(Some(sr.uuid.as_str()));
        }
    }
    let sr_uuid = |prefix: &str| by_prefix.get(prefix).copied().flatten();
    let mut current: Option<(&'static str, &mut Family)> = None;
    for ((family, uuid, label), (value, _)) in &pool.resources.series {
        if current.as_ref().is_none_or(|(name, _)| name != family) {
            current = families.get_mut(family).map(|f| (*family, f));
        }
        let Some((_, out)) = current.as_mut() else {
            continue;
        };
        let object = match family.split('_').nth(1) {
            Some("vm") => "vm_uuid",
            Some("sr") => "sr_uuid",
            _ => "host_uuid",
        };
        match label {
            Some((SR_PREFIX_LABEL, prefix)) => {
                if let Some(sr) = sr_uuid(prefix) {
                    out.add(
                        &[("pool", pool.name), (object, uuid), ("sr_uuid", sr)],
                        *value,
                    );
                }
            }
            Some((name, v)) => out.add(&[("pool", pool.name), (object, uuid), (name, v)], *value),
            None => out.add(&[("pool", pool.name), (object, uuid)], *value),
        }
    }
}

/// The guests' series; returns how many guests are stuck on each down host. The families are
/// looked up once, not per guest: this loop is most of a large pool's scrape.
fn render_vms<'a>(
    pool: &PoolView<'a>,
    down: &HashSet<&str>,
    families: &mut BTreeMap<&'static str, Family>,
) -> BTreeMap<&'a str, usize> {
    let name = pool.name;
    let cache = pool.cache;
    let mut take = |family: &str| families.remove(family).expect("a declared family");
    let (mut info, mut power, mut stuck) = (
        take("xen_vm_info"),
        take("xen_vm_power_state"),
        take("xen_vm_stuck_running"),
    );
    let mut stuck_per_host: BTreeMap<&str, usize> = BTreeMap::new();
    for vm in cache.vms.values().filter(|v| v.is_guest()) {
        info.add(
            &[
                ("pool", name),
                ("vm_uuid", &vm.uuid),
                ("name_label", &vm.name_label),
            ],
            1.0,
        );
        power.add(
            &[
                ("pool", name),
                ("vm_uuid", &vm.uuid),
                ("state", vm.power_state.as_str()),
            ],
            1.0,
        );
        let active = matches!(vm.power_state, PowerState::Running | PowerState::Paused);
        let host = vm.resident_on.as_str();
        if active && down.contains(host) {
            *stuck_per_host.entry(host).or_default() += 1;
            let host_uuid = cache.hosts.get(host).map_or(host, |h| h.uuid.as_str());
            stuck.add(
                &[
                    ("pool", name),
                    ("vm_uuid", &vm.uuid),
                    ("host_uuid", host_uuid),
                ],
                1.0,
            );
        }
    }
    for family in [info, power, stuck] {
        families.insert(family.name, family);
    }
    stuck_per_host
}

/// Encodes families in the Prometheus text format (0.0.4).
pub fn encode(families: &[MetricFamily]) -> String {
    let mut out = Vec::with_capacity(64 * 1024);
    // Text encoding of well-formed gauge families cannot fail.
    let _ = prometheus::Encoder::encode(&prometheus::TextEncoder::new(), families, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xapi::records::{HostMetrics, Pool, Ref, Sr, Vm};

    /// The pool "lab" rendered at t = 100 s, its state at most 60 s old to be up.
    fn render_lab(
        cache: &Cache,
        status: &WatchStatus,
        probes: &BTreeMap<String, Probe>,
        resources: &Resources,
    ) -> String {
        let view = PoolView {
            name: "lab",
            cache,
            status,
            probes,
            max_state_age: 60.0,
            resources,
        };
        render(&[view], 100.0)
    }

    fn pool_with_dead_slave() -> (Cache, BTreeMap<String, Probe>) {
        let mut cache = Cache::default();
        cache.pools.insert(
            "p".into(),
            Pool {
                uuid: "pu".into(),
                master: Ref::new("h1"),
                ..Pool::default()
            },
        );
        for (r, m, addr, live) in [
            ("h1", "m1", "10.0.0.1", true),
            ("h2", "m2", "10.0.0.2", false),
        ] {
            cache.hosts.insert(
                r.into(),
                Host {
                    uuid: format!("{r}-uuid"),
                    address: addr.into(),
                    metrics: Ref::new(m),
                    enabled: true,
                    ..Host::default()
                },
            );
            cache.host_metrics.insert(
                m.into(),
                HostMetrics {
                    live,
                    ..HostMetrics::default()
                },
            );
        }
        cache.vms.insert(
            "v1".into(),
            Vm {
                uuid: "v1-uuid".into(),
                power_state: PowerState::Running,
                resident_on: Ref::new("h2"),
                ..Vm::default()
            },
        );
        cache.vms.insert(
            "dom0".into(),
            Vm {
                power_state: PowerState::Running,
                resident_on: Ref::new("h2"),
                is_control_domain: true,
                ..Vm::default()
            },
        );
        let mut probes = BTreeMap::new();
        probes.insert(
            "10.0.0.1".into(),
            Probe {
                role: Role::Master,
                emergency: Some(false),
                last_seen: Some(99.0),
                error: None,
            },
        );
        probes.insert(
            "10.0.0.2".into(),
            Probe {
                role: Role::Unreachable,
                emergency: None,
                last_seen: Some(10.0),
                error: Some("timeout"),
            },
        );
        (cache, probes)
    }

    #[test]
    fn a_dead_slave_shows_its_stuck_vms() {
        let (cache, probes) = pool_with_dead_slave();
        let status = WatchStatus {
            connected: true,
            last_update: Some(95.0),
            ..WatchStatus::default()
        };
        let text = render_lab(&cache, &status, &probes, &Resources::default());
        for line in [
            "xen_pool_up{pool=\"lab\"} 1",
            "xen_pool_masters{pool=\"lab\"} 1",
            "xen_pool_master_reachable{pool=\"lab\"} 1",
            "xen_pool_state_age_seconds{pool=\"lab\"} 5",
            "xen_host_reachable{pool=\"lab\",host_uuid=\"h2-uuid\"} 0",
            "xen_host_live{pool=\"lab\",host_uuid=\"h2-uuid\"} 0",
            "xen_host_stuck_vms{pool=\"lab\",host_uuid=\"h2-uuid\"} 1",
            "xen_host_stuck_vms{pool=\"lab\",host_uuid=\"h1-uuid\"} 0",
            "xen_vm_stuck_running{pool=\"lab\",vm_uuid=\"v1-uuid\",host_uuid=\"h2-uuid\"} 1",
            "xen_host_is_master{pool=\"lab\",host_uuid=\"h1-uuid\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert_eq!(
            text.matches("xen_vm_info{").count(),
            1,
            "control domains are not inventory"
        );
    }

    #[test]
    fn stale_state_is_not_up_and_orphans_are_flagged() {
        let (cache, mut probes) = pool_with_dead_slave();
        probes.insert(
            "10.0.0.1".into(),
            Probe {
                role: Role::Unreachable,
                emergency: None,
                last_seen: None,
                error: Some("timeout"),
            },
        );
        probes.insert(
            "10.0.0.3".into(),
            Probe {
                role: Role::Slave("10.0.0.1".into()),
                emergency: Some(false),
                last_seen: Some(99.0),
                error: None,
            },
        );
        let status = WatchStatus {
            connected: true,
            last_update: Some(0.0),
            ..WatchStatus::default()
        };
        let text = render_lab(&cache, &status, &probes, &Resources::default());
        assert!(text.contains("xen_pool_up{pool=\"lab\"} 0"), "{text}");
        assert!(text.contains("xen_pool_master_reachable{pool=\"lab\"} 0"));
        assert!(
            text.contains("xen_host_orphaned{pool=\"lab\",host_uuid=\"address:10.0.0.3\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn sr_series_name_the_sr_only_when_its_prefix_is_unambiguous() {
        let (mut cache, probes) = pool_with_dead_slave();
        for (reference, uuid) in [
            ("OpaqueRef:sr1", "aaaa1111-0000-4000-8000-000000000001"),
            ("OpaqueRef:sr2", "bbbb2222-0000-4000-8000-000000000002"),
            ("OpaqueRef:sr3", "bbbb2222-0000-4000-8000-000000000003"),
        ] {
            cache.srs.insert(
                reference.into(),
                Sr {
                    uuid: uuid.into(),
                    ..Sr::default()
                },
            );
        }
        let mut resources = Resources::default();
        let legend = ["aaaa1111", "bbbb2222", "cccc3333"]
            .map(|sr8| format!("\"AVERAGE:host:h1-uuid:read_{sr8}\""))
            .join(",");
        let body = format!(
            r#"{{"meta":{{"step":"5","end":"10","legend":[{legend}]}},"data":[{{"t":"10","values":["100","200","300"]}}]}}"#
        );
        resources.apply(
            "h1-uuid",
            &super::super::rrd::parse(body.as_bytes()).unwrap(),
            1.0,
        );
        let status = WatchStatus::default();
        let text = render_lab(&cache, &status, &probes, &resources);
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("xen_host_sr_read_bytes_total{"))
            .collect();
        assert_eq!(
            lines,
            [
                "xen_host_sr_read_bytes_total{pool=\"lab\",host_uuid=\"h1-uuid\",sr_uuid=\"aaaa1111-0000-4000-8000-000000000001\"} 500"
            ],
            "two SRs share bbbb2222 and none starts with cccc3333"
        );
    }

    #[test]
    fn values_read_back_as_the_same_number() {
        for v in [
            0.1,
            1234.5678901234567,
            1e-7,
            2.5e21,
            -0.000123,
            123456789012345.6,
            1e15,
            4096.0,
            f64::MIN_POSITIVE,
        ] {
            let mut out = String::new();
            write_value(&mut out, v);
            assert_eq!(out.parse::<f64>(), Ok(v), "{v} written as {out:?}");
        }
        let mut out = String::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, 1.0, 42.0] {
            write_value(&mut out, v);
            out.push(' ');
        }
        assert_eq!(out, "NaN +Inf -Inf 0 1 42 ");
    }

    #[test]
    fn label_values_are_escaped_whatever_their_length() {
        for n in [0, 1, 36, 64, 65, 200] {
            let plain = "a".repeat(n);
            let mut out = String::new();
            escape_label_value(&mut out, &plain);
            assert_eq!(out, plain);
            let odd = format!("{plain}\\\"\n{plain}");
            let mut out = String::new();
            escape_label_value(&mut out, &odd);
            assert_eq!(out, format!("{plain}\\\\\\\"\\n{plain}"));
        }
    }
}
