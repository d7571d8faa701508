//! Resource metrics from each host's `/rrd_updates` (xapi-notes.md §13): parsing an answer,
//! the mapping from data sources to metric families, and the series kept between answers.
//! Pure: [`super::rrd_collector`] does the fetching.
//!
//! Rates (CPU busy fractions, bytes per second) become counters: each row is added once, as
//! value × step, in time order, so a counter neither skips nor repeats a row as long as every
//! answer starts after the last row already added. Levels (memory) are gauges holding the
//! newest known value. `NaN` (no data) adds nothing and never replaces a known level.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::config::{ResourceMetrics, UnknownSources};

/// One `/rrd_updates` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Updates {
    /// Seconds between rows.
    pub step: i64,
    /// Time of the host's newest row, in its clock (`meta.end`).
    pub end: i64,
    /// The columns, in the answer's order.
    pub columns: Vec<Column>,
    /// Rows, oldest first (the wire has them newest first).
    pub rows: Vec<Row>,
}

/// One legend entry, `CF:class:uuid:name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// `host`, `vm` or `sr`.
    pub class: String,
    /// The object's uuid.
    pub uuid: String,
    /// The data source's name.
    pub name: String,
}

/// One row of an answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Unix time of the row.
    pub t: i64,
    /// One value per column (`NaN`: no data).
    pub values: Vec<f64>,
}

/// Parses an answer in xapi's JSON: numbers as strings or bare, `data` at the top or (xapi
/// 23.31 to 24.10) inside `meta`. The older, not-JSON form is refused with a clear error.
pub fn parse(body: &[u8]) -> Result<Updates, String> {
    let json: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        format!("not JSON ({e}); hosts older than xapi 23.31 write a form xenguard does not read")
    })?;
    let meta = json.get("meta").ok_or("no `meta`")?;
    let step = meta.get("step").and_then(number).ok_or("no `meta.step`")? as i64;
    let end = meta.get("end").and_then(number).ok_or("no `meta.end`")? as i64;
    let legend = meta
        .get("legend")
        .and_then(|l| l.as_array())
        .ok_or("no `meta.legend`")?;
    let columns = legend
        .iter()
        .map(|entry| {
            let entry = entry.as_str().ok_or("a legend entry is not a string")?;
            let mut parts = entry.splitn(4, ':');
            let (_cf, class, uuid, name) = (parts.next(), parts.next(), parts.next(), parts.next());
            match (class, uuid, name) {
                (Some(class), Some(uuid), Some(name)) => Ok(Column {
                    class: class.to_owned(),
                    uuid: uuid.to_owned(),
                    name: name.to_owned(),
                }),
                _ => Err(format!("legend entry {entry:?} is not CF:class:uuid:name")),
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    let data = json
        .get("data")
        .or_else(|| meta.get("data"))
        .and_then(|d| d.as_array())
        .ok_or("no `data`")?;
    let mut rows = data
        .iter()
        .map(|row| {
            let t = row.get("t").and_then(number).ok_or("a row without `t`")? as i64;
            let values = row
                .get("values")
                .and_then(|v| v.as_array())
                .ok_or("a row without `values`")?;
            if values.len() != columns.len() {
                return Err(format!(
                    "a row has {} values for {} columns",
                    values.len(),
                    columns.len()
                ));
            }
            Ok(Row {
                t,
                values: values
                    .iter()
                    .map(|v| number(v).unwrap_or(f64::NAN))
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    rows.sort_by_key(|r| r.t);
    Ok(Updates {
        step,
        end,
        columns,
        rows,
    })
}

/// A JSON number, or a string holding one (`"NaN"`, `"Infinity"` included).
fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A counter (rates summed over rows) or a gauge (the newest level).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sum of value × step.
    Counter,
    /// The newest value.
    Gauge,
}

/// Where a data source goes: family, the name of its extra label and its value, the factor to
/// base units, and its kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    /// Metric family.
    pub family: &'static str,
    /// Extra label (`cpu`, `device`, …) and its value.
    pub label: Option<(&'static str, String)>,
    /// Factor to base units (KiB to bytes: 1024).
    pub scale: f64,
    /// Counter or gauge.
    pub kind: Kind,
}

/// The families resource metrics are published in, with their help, in exposition order.
pub const FAMILIES: &[(&str, &str)] = &[
    (
        "xen_host_rrd_up",
        "1 if the host's last /rrd_updates answer was read; 0 while its resource series go stale.",
    ),
    (
        "xen_host_cpu_busy_seconds_total",
        "Seconds each physical CPU of the host was busy (RRD cpuN, busy fraction per step).",
    ),
    (
        "xen_host_cpu_utilization_ratio",
        "Average busy fraction of the host's physical CPUs (RRD cpu_avg).",
    ),
    (
        "xen_host_load_average",
        "Load average of the host's control domain (RRD loadavg).",
    ),
    (
        "xen_host_memory_total_bytes",
        "Physical memory of the host (RRD memory_total_kib).",
    ),
    (
        "xen_host_memory_free_bytes",
        "Host memory not allocated to any domain (RRD memory_free_kib).",
    ),
    (
        "xen_host_network_receive_bytes_total",
        "Bytes received per physical interface (RRD pif_<device>_rx).",
    ),
    (
        "xen_host_network_transmit_bytes_total",
        "Bytes sent per physical interface (RRD pif_<device>_tx).",
    ),
    (
        "xen_host_sr_read_bytes_total",
        "Bytes the host read from each SR it has plugged (RRD read_<sr8>).",
    ),
    (
        "xen_host_sr_written_bytes_total",
        "Bytes the host wrote to each SR it has plugged (RRD write_<sr8>).",
    ),
    (
        "xen_host_sr_read_operations_total",
        "Read requests the host made to each SR (RRD iops_read_<sr8>).",
    ),
    (
        "xen_host_sr_write_operations_total",
        "Write requests the host made to each SR (RRD iops_write_<sr8>).",
    ),
    (
        "xen_host_sr_read_latency_seconds",
        "Average latency of the host's reads from each SR (RRD read_latency_<sr8>, µs).",
    ),
    (
        "xen_host_sr_write_latency_seconds",
        "Average latency of the host's writes to each SR (RRD write_latency_<sr8>, µs).",
    ),
    (
        "xen_host_rrd_value",
        "A host data source the mapping does not know, raw (unknown_sources: generic).",
    ),
    (
        "xen_vm_cpu_busy_seconds_total",
        "Seconds each virtual CPU of the guest was busy (RRD cpuN).",
    ),
    (
        "xen_vm_memory_bytes",
        "Memory allocated to the guest's domain (RRD memory).",
    ),
    (
        "xen_vm_memory_target_bytes",
        "Memory the guest's balloon is asked to reach (RRD memory_target).",
    ),
    (
        "xen_vm_memory_internal_free_bytes",
        "Memory free inside the guest, as its agent reports it (RRD memory_internal_free).",
    ),
    (
        "xen_vm_network_receive_bytes_total",
        "Bytes the guest received per virtual interface (RRD vif_<n>_rx).",
    ),
    (
        "xen_vm_network_transmit_bytes_total",
        "Bytes the guest sent per virtual interface (RRD vif_<n>_tx).",
    ),
    (
        "xen_vm_disk_read_bytes_total",
        "Bytes the guest read per virtual disk (RRD vbd_<device>_read).",
    ),
    (
        "xen_vm_disk_written_bytes_total",
        "Bytes the guest wrote per virtual disk (RRD vbd_<device>_write).",
    ),
    (
        "xen_vm_disk_read_operations_total",
        "Read requests per virtual disk of the guest (RRD vbd_<device>_iops_read).",
    ),
    (
        "xen_vm_disk_write_operations_total",
        "Write requests per virtual disk of the guest (RRD vbd_<device>_iops_write).",
    ),
    (
        "xen_vm_rrd_value",
        "A guest data source the mapping does not know, raw (unknown_sources: generic).",
    ),
    (
        "xen_sr_rrd_value",
        "An SR data source (class sr), raw (unknown_sources: generic).",
    ),
];

/// The label of SR series before it is resolved: the SR uuid's first 8 characters, as the
/// host's data source names it. Rendering turns it into `sr_uuid`.
pub const SR_PREFIX_LABEL: &str = "sr";

/// Every pattern of a pool's `resource_metrics` names at least one family: a pattern that
/// matches none is a typo that would silently publish everything or nothing.
pub fn check_selection(selection: &ResourceMetrics) -> Result<(), String> {
    let lists = [
        ("allow", selection.allow.as_deref().unwrap_or_default()),
        ("deny", &selection.deny),
    ];
    for (key, patterns) in lists {
        for pattern in patterns {
            let only = ResourceMetrics {
                allow: Some(vec![pattern.clone()]),
                ..ResourceMetrics::default()
            };
            if !FAMILIES.iter().any(|(family, _)| only.publishes(family)) {
                return Err(format!(
                    "resource_metrics.{key}: `{pattern}` matches no resource metric family (the families are listed in the README, \"Resource metrics\")"
                ));
            }
        }
    }
    Ok(())
}

/// The mapping of one data source; `None` for sources xenguard does not publish.
pub fn map(class: &str, name: &str) -> Option<Mapped> {
    let m = |family, label: Option<(&'static str, &str)>, scale, kind| {
        Some(Mapped {
            family,
            label: label.map(|(k, v)| (k, v.to_owned())),
            scale,
            kind,
        })
    };
    let cpu = |name: &str| {
        name.strip_prefix("cpu")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
    };
    let split = |name: &str, prefix: &str, suffix: &str| {
        name.strip_prefix(prefix)?
            .strip_suffix(suffix)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
    };
    match class {
        "host" => match name {
            "cpu_avg" => m("xen_host_cpu_utilization_ratio", None, 1.0, Kind::Gauge),
            "loadavg" => m("xen_host_load_average", None, 1.0, Kind::Gauge),
            "memory_total_kib" => m("xen_host_memory_total_bytes", None, 1024.0, Kind::Gauge),
            "memory_free_kib" => m("xen_host_memory_free_bytes", None, 1024.0, Kind::Gauge),
            _ => {
                if let Some(n) = cpu(name) {
                    return m(
                        "xen_host_cpu_busy_seconds_total",
                        Some(("cpu", &n)),
                        1.0,
                        Kind::Counter,
                    );
                }
                let pif = |suffix| split(name, "pif_", suffix).filter(|d| d != "aggr");
                if let Some(d) = pif("_rx") {
                    return m(
                        "xen_host_network_receive_bytes_total",
                        Some(("device", &d)),
                        1.0,
                        Kind::Counter,
                    );
                }
                if let Some(d) = pif("_tx") {
                    return m(
                        "xen_host_network_transmit_bytes_total",
                        Some(("device", &d)),
                        1.0,
                        Kind::Counter,
                    );
                }
                let per_sr: [(&str, &'static str, f64, Kind); 6] = [
                    (
                        "read_latency_",
                        "xen_host_sr_read_latency_seconds",
                        1e-6,
                        Kind::Gauge,
                    ),
                    (
                        "write_latency_",
                        "xen_host_sr_write_latency_seconds",
                        1e-6,
                        Kind::Gauge,
                    ),
                    (
                        "iops_read_",
                        "xen_host_sr_read_operations_total",
                        1.0,
                        Kind::Counter,
                    ),
                    (
                        "iops_write_",
                        "xen_host_sr_write_operations_total",
                        1.0,
                        Kind::Counter,
                    ),
                    ("read_", "xen_host_sr_read_bytes_total", 1.0, Kind::Counter),
                    (
                        "write_",
                        "xen_host_sr_written_bytes_total",
                        1.0,
                        Kind::Counter,
                    ),
                ];
                per_sr.iter().find_map(|(prefix, family, scale, kind)| {
                    let sr8 = name.strip_prefix(prefix).filter(|s| is_sr8(s))?;
                    m(family, Some((SR_PREFIX_LABEL, sr8)), *scale, *kind)
                })
            }
        },
        "vm" => match name {
            "memory" => m("xen_vm_memory_bytes", None, 1.0, Kind::Gauge),
            "memory_target" => m("xen_vm_memory_target_bytes", None, 1.0, Kind::Gauge),
            "memory_internal_free" => m(
                "xen_vm_memory_internal_free_bytes",
                None,
                1024.0,
                Kind::Gauge,
            ),
            _ => {
                if let Some(n) = cpu(name) {
                    return m(
                        "xen_vm_cpu_busy_seconds_total",
                        Some(("vcpu", &n)),
                        1.0,
                        Kind::Counter,
                    );
                }
                let table: [(&str, &str, &'static str, &'static str); 6] = [
                    (
                        "vbd_",
                        "_iops_read",
                        "xen_vm_disk_read_operations_total",
                        "device",
                    ),
                    (
                        "vbd_",
                        "_iops_write",
                        "xen_vm_disk_write_operations_total",
                        "device",
                    ),
                    ("vif_", "_rx", "xen_vm_network_receive_bytes_total", "vif"),
                    ("vif_", "_tx", "xen_vm_network_transmit_bytes_total", "vif"),
                    ("vbd_", "_read", "xen_vm_disk_read_bytes_total", "device"),
                    (
                        "vbd_",
                        "_write",
                        "xen_vm_disk_written_bytes_total",
                        "device",
                    ),
                ];
                table.iter().find_map(|(prefix, suffix, family, label)| {
                    let d = split(name, prefix, suffix)?;
                    // `vbd_xvda_read_latency` and the like are other sources.
                    (!d.contains('_') || *prefix == "vif_")
                        .then(|| m(family, Some((label, &d)), 1.0, Kind::Counter))?
                })
            }
        },
        _ => None,
    }
}

/// Whether `s` is the 8 hexadecimal characters an SR data source is named with.
fn is_sr8(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The generic family of a class, for sources the mapping does not know.
fn generic(class: &str, name: &str) -> Option<Mapped> {
    let family = match class {
        "host" => "xen_host_rrd_value",
        "vm" => "xen_vm_rrd_value",
        "sr" => "xen_sr_rrd_value",
        _ => return None,
    };
    Some(Mapped {
        family,
        label: Some(("source", name.to_owned())),
        scale: 1.0,
        kind: Kind::Gauge,
    })
}

/// Text shared by every series that names it: a guest's uuid is stored once, not once for
/// each of its ten-odd series (less memory, and a scrape reads it from one place).
pub type Name = Arc<str>;

/// One published series: family, object (`host_uuid`, `vm_uuid` or `sr_uuid`), extra label.
pub type SeriesKey = (&'static str, Name, Option<(&'static str, Name)>);

/// What is known of one pool's resources between answers.
#[derive(Debug, Default)]
pub struct Resources {
    /// Per host uuid: the last row added and whether the last answer was read.
    pub hosts: BTreeMap<String, HostRrd>,
    /// Every series' value, with the Unix time its object was last reported.
    pub series: BTreeMap<SeriesKey, (f64, f64)>,
    /// The pool's choice of families.
    pub selection: ResourceMetrics,
    /// The uuids and label values the series share.
    names: HashSet<Name>,
}

/// One host's collection state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostRrd {
    /// The last answer was read.
    pub up: bool,
    /// Time of the newest row already added (the next request starts after it).
    pub last_row: Option<i64>,
}

impl Resources {
    /// Nothing known yet; `selection` says which families are kept.
    pub fn new(selection: ResourceMetrics) -> Resources {
        Resources {
            selection,
            ..Resources::default()
        }
    }

    /// Where a column goes, if this pool publishes it.
    fn route(&self, column: &Column) -> Option<Mapped> {
        let mapped = map(&column.class, &column.name).or_else(|| {
            (self.selection.unknown_sources == UnknownSources::Generic)
                .then(|| generic(&column.class, &column.name))?
        })?;
        self.selection.publishes(mapped.family).then_some(mapped)
    }

    /// Adds an answer of the host `host_uuid` received at `now`: the rows after the host's
    /// last row, each once, in time order.
    pub fn apply(&mut self, host_uuid: &str, updates: &Updates, now: f64) {
        let state = self.hosts.entry(host_uuid.to_owned()).or_default();
        if state.last_row.is_some_and(|last| last > updates.end) {
            // The host's newest row is older than one already added: its clock went back (or
            // its RRD was replaced). Waiting for rows after the old one would leave the
            // counters still for as long as the step back; take its rows from here on.
            state.last_row = None;
        }
        let after = state.last_row;
        state.up = true;
        let fresh: Vec<&Row> = updates
            .rows
            .iter()
            .filter(|r| after.is_none_or(|last| r.t > last))
            .collect();
        if let Some(newest) = fresh.last() {
            state.last_row = Some(newest.t);
        }
        let step = updates.step as f64;
        for (k, column) in updates.columns.iter().enumerate() {
            let Some(mapped) = self.route(column) else {
                continue;
            };
            let key = (
                mapped.family,
                intern(&mut self.names, &column.uuid),
                mapped
                    .label
                    .map(|(name, value)| (name, intern(&mut self.names, &value))),
            );
            let entry = self.series.entry(key).or_insert((0.0, now));
            entry.1 = now;
            for row in &fresh {
                let v = row.values[k];
                if !v.is_finite() {
                    continue;
                }
                match mapped.kind {
                    Kind::Counter => entry.0 += v * mapped.scale * step,
                    Kind::Gauge => entry.0 = v * mapped.scale,
                }
            }
        }
    }

    /// The host's answer could not be read: it is down until the next one is. True when this
    /// starts a failure (the last answer was read, or there was none yet).
    pub fn failed(&mut self, host_uuid: &str) -> bool {
        let known = self.hosts.contains_key(host_uuid);
        let host = self.hosts.entry(host_uuid.to_owned()).or_default();
        let starts = host.up || !known;
        host.up = false;
        starts
    }

    /// Forgets series whose object no host has reported since `before` (a halted guest, a
    /// removed host): they vanish rather than freeze.
    pub fn expire(&mut self, before: f64) {
        self.series.retain(|_, (_, seen)| *seen >= before);
        self.names.retain(|name| Arc::strong_count(name) > 1);
    }
}

/// The shared copy of `text`, made on first use.
fn intern(names: &mut HashSet<Name>, text: &str) -> Name {
    if let Some(name) = names.get(text) {
        return name.clone();
    }
    let name: Name = Arc::from(text);
    names.insert(name.clone());
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(rows: &[(i64, [&str; 3])]) -> String {
        let data: Vec<serde_json::Value> = rows
            .iter()
            .rev()
            .map(|(t, v)| serde_json::json!({"t": t.to_string(), "values": v}))
            .collect();
        serde_json::json!({
            "meta": {"start": "0", "step": "5", "end": rows.last().map_or(0, |r| r.0).to_string(), "rows": data.len().to_string(), "columns": "3",
                "legend": ["AVERAGE:host:h1:cpu0", "AVERAGE:host:h1:memory_free_kib", "AVERAGE:vm:v1:vbd_xvda_read"]},
            "data": data,
        })
        .to_string()
    }

    fn value(r: &Resources, family: &str, uuid: &str) -> f64 {
        r.series
            .iter()
            .find(|((f, u, _), _)| *f == family && &**u == uuid)
            .map(|(_, (v, _))| *v)
            .unwrap()
    }

    #[test]
    fn rows_are_added_once_in_order_and_nan_adds_nothing() {
        let mut r = Resources::default();
        let first =
            parse(body(&[(100, ["0.5", "1024", "10"]), (105, ["0.25", "NaN", "NaN"])]).as_bytes())
                .unwrap();
        assert_eq!(first.rows[0].t, 100, "oldest first after parsing");
        r.apply("h1", &first, 1.0);
        assert_eq!(value(&r, "xen_host_cpu_busy_seconds_total", "h1"), 3.75);
        assert_eq!(
            value(&r, "xen_host_memory_free_bytes", "h1"),
            1024.0 * 1024.0
        );
        assert_eq!(value(&r, "xen_vm_disk_read_bytes_total", "v1"), 50.0);
        // The next answer overlaps: row 105 is not added twice.
        let second =
            parse(body(&[(105, ["0.25", "1", "1"]), (110, ["1", "2", "2"])]).as_bytes()).unwrap();
        r.apply("h1", &second, 2.0);
        assert_eq!(value(&r, "xen_host_cpu_busy_seconds_total", "h1"), 8.75);
        assert_eq!(value(&r, "xen_host_memory_free_bytes", "h1"), 2048.0);
        assert_eq!(r.hosts["h1"].last_row, Some(110));
        // No rows at all (start past the last update): nothing changes, nothing breaks.
        let mut none = parse(body(&[]).as_bytes()).unwrap();
        none.end = 110;
        r.apply("h1", &none, 3.0);
        assert_eq!(value(&r, "xen_host_cpu_busy_seconds_total", "h1"), 8.75);
        r.expire(2.5);
        assert!(r.series.values().all(|(_, seen)| *seen == 3.0));
        // A failure is reported as starting once, and again after an answer was read.
        assert!(r.failed("h1"));
        assert!(!r.failed("h1"));
        r.apply("h1", &none, 4.0);
        assert!(r.failed("h1"));
        assert!(
            r.failed("h2"),
            "a host never read starts failing at its first error"
        );
    }

    #[test]
    fn a_host_clock_that_goes_back_does_not_stop_the_counters() {
        let mut r = Resources::default();
        r.apply(
            "h1",
            &parse(body(&[(1000, ["0.5", "1", "1"])]).as_bytes()).unwrap(),
            1.0,
        );
        // The host's clock stepped back an hour: its rows are older than the last one added.
        let back =
            parse(body(&[(-2600 + 3000, ["1", "1", "1"]), (405, ["1", "1", "1"])]).as_bytes())
                .unwrap();
        r.apply("h1", &back, 2.0);
        assert_eq!(
            value(&r, "xen_host_cpu_busy_seconds_total", "h1"),
            2.5 + 10.0
        );
        assert_eq!(r.hosts["h1"].last_row, Some(405));
    }

    #[test]
    fn the_shapes_xapi_writes_are_read_and_others_refused() {
        let bare = r#"{"meta":{"step":5,"end":10,"legend":["AVERAGE:vm:v:memory"],"data":[{"t":10,"values":[2048]}]}}"#;
        let parsed = parse(bare.as_bytes()).unwrap();
        assert_eq!((parsed.step, parsed.rows[0].values[0]), (5, 2048.0));
        let legacy = "{meta: {start:0,step:5,legend:[]},data:[]}";
        assert!(parse(legacy.as_bytes()).unwrap_err().contains("23.31"));
        let short = r#"{"meta":{"step":"5","end":"1","legend":["AVERAGE:vm:v:memory"]},"data":[{"t":"1","values":[]}]}"#;
        assert!(
            parse(short.as_bytes())
                .unwrap_err()
                .contains("0 values for 1 columns")
        );
    }

    #[test]
    fn the_mapping() {
        let family = |class, name| map(class, name).map(|m| (m.family, m.label, m.scale));
        assert_eq!(
            family("host", "cpu12"),
            Some((
                "xen_host_cpu_busy_seconds_total",
                Some(("cpu", "12".into())),
                1.0
            ))
        );
        assert_eq!(
            family("host", "cpu_avg").unwrap().0,
            "xen_host_cpu_utilization_ratio"
        );
        assert_eq!(
            family("host", "pif_eth0_rx").unwrap().1,
            Some(("device", "eth0".into()))
        );
        assert_eq!(family("host", "pif_aggr_rx"), None);
        assert_eq!(family("vm", "memory_internal_free").unwrap().2, 1024.0);
        assert_eq!(
            family("vm", "vbd_xvda_write").unwrap().0,
            "xen_vm_disk_written_bytes_total"
        );
        assert_eq!(family("vm", "vbd_xvda_read_latency"), None);
        assert_eq!(
            family("vm", "vif_0_tx").unwrap().1,
            Some(("vif", "0".into()))
        );
        assert_eq!(family("host", "CPU0-avg-freq"), None);
        assert_eq!(family("sr", "read"), None);
    }

    fn resources(selection: ResourceMetrics) -> Resources {
        let mut r = Resources::new(selection);
        let legend = [
            "AVERAGE:host:h1:cpu0",
            "AVERAGE:host:h1:memory_free_kib",
            "AVERAGE:host:h1:xapi_open_fds",
            "AVERAGE:vm:v1:memory",
            "AVERAGE:vm:v1:cpu0",
            "AVERAGE:sr:s1:physical_utilisation",
        ];
        let body = serde_json::json!({
            "meta": {"step": "5", "end": "10", "legend": legend},
            "data": [{"t": "10", "values": ["1", "2", "3", "4", "5", "6"]}],
        });
        r.apply("h1", &parse(body.to_string().as_bytes()).unwrap(), 1.0);
        r
    }

    fn families(r: &Resources) -> Vec<&'static str> {
        let mut f: Vec<_> = r.series.keys().map(|(family, _, _)| *family).collect();
        f.dedup();
        f
    }

    #[test]
    fn allow_and_deny_lists_choose_families_and_unknown_sources_are_dropped_by_default() {
        let all = resources(ResourceMetrics::default());
        assert_eq!(
            families(&all),
            [
                "xen_host_cpu_busy_seconds_total",
                "xen_host_memory_free_bytes",
                "xen_vm_cpu_busy_seconds_total",
                "xen_vm_memory_bytes"
            ]
        );
        let guests_off = resources(ResourceMetrics {
            deny: vec!["xen_vm_*".into()],
            ..ResourceMetrics::default()
        });
        assert_eq!(
            families(&guests_off),
            [
                "xen_host_cpu_busy_seconds_total",
                "xen_host_memory_free_bytes"
            ]
        );
        let memory_only = resources(ResourceMetrics {
            allow: Some(vec![
                "xen_host_memory_*".into(),
                "xen_vm_memory_bytes".into(),
            ]),
            deny: vec!["xen_vm_*".into()],
            ..ResourceMetrics::default()
        });
        assert_eq!(families(&memory_only), ["xen_host_memory_free_bytes"]);
        let generic = resources(ResourceMetrics {
            unknown_sources: UnknownSources::Generic,
            ..ResourceMetrics::default()
        });
        let raw: Vec<_> = generic
            .series
            .iter()
            .filter(|((f, _, _), _)| f.ends_with("_rrd_value"))
            .map(|((f, uuid, label), (v, _))| {
                (*f, &**uuid, label.clone().unwrap().1.to_string(), *v)
            })
            .collect();
        assert_eq!(
            raw,
            [
                ("xen_host_rrd_value", "h1", "xapi_open_fds".to_owned(), 3.0),
                (
                    "xen_sr_rrd_value",
                    "s1",
                    "physical_utilisation".to_owned(),
                    6.0
                )
            ]
        );
    }

    #[test]
    fn a_pattern_that_names_no_family_is_refused() {
        let ok = ResourceMetrics {
            allow: Some(vec!["xen_host_*".into(), "xen_vm_memory_bytes".into()]),
            deny: vec!["xen_host_sr_*".into()],
            ..ResourceMetrics::default()
        };
        assert_eq!(check_selection(&ok), Ok(()));
        let typo = ResourceMetrics {
            deny: vec!["xen_vm_cpu_seconds_total".into()],
            ..ResourceMetrics::default()
        };
        let e = check_selection(&typo).unwrap_err();
        assert!(
            e.contains("deny") && e.contains("xen_vm_cpu_seconds_total"),
            "{e}"
        );
    }

    #[test]
    fn sr_sources_of_a_host() {
        let mapped = map("host", "read_latency_0a1b2c3d").unwrap();
        assert_eq!(
            (mapped.family, mapped.label, mapped.scale, mapped.kind),
            (
                "xen_host_sr_read_latency_seconds",
                Some((SR_PREFIX_LABEL, "0a1b2c3d".into())),
                1e-6,
                Kind::Gauge
            )
        );
        assert_eq!(
            map("host", "iops_write_0a1b2c3d").unwrap().family,
            "xen_host_sr_write_operations_total"
        );
        assert_eq!(
            map("host", "write_0a1b2c3d").unwrap().family,
            "xen_host_sr_written_bytes_total"
        );
        assert_eq!(map("host", "read_notansr"), None);
        assert_eq!(
            map("vm", "vbd_xvda_iops_read").unwrap().family,
            "xen_vm_disk_read_operations_total"
        );
    }
}
