//! The demo's landing page (`GET /` on 127.0.0.1:9881): the simulator's ground truth beside
//! the exporter's view of each host, where every VM really runs, and the receiver's journal,
//! as plain HTML that reloads itself.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;

use super::POOL;
use super::alerts::{host_series, pool_series};
use crate::exporter::Exporter;
use crate::remediation::Receiver;
use crate::sim::control::{HostView, Truth};

/// Seconds between the landing page's reloads.
pub(super) const PAGE_REFRESH_SECONDS: u32 = 3;

/// `HH:MM:SS` (UTC) of a Unix time.
fn clock_time(unix: f64) -> String {
    let compact = crate::xapi::typed::DateTime::from_unix(unix as i64).0;
    compact[9..17].to_owned()
}

/// What the landing page reads from.
pub(super) struct Page {
    /// Base URL of the simulator's control API.
    pub(super) control: String,
    pub(super) exporter: Arc<Exporter>,
    pub(super) receiver: Arc<Receiver>,
    pub(super) http: reqwest::Client,
    pub(super) auto: bool,
    pub(super) exporter_at: SocketAddr,
    pub(super) receiver_at: SocketAddr,
}

impl Page {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.control);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        response.json().await.map_err(|e| e.to_string())
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table cell, marked bad (red) or good (green) when `good` says so.
fn cell(text: &str, good: Option<bool>) -> String {
    let class = match good {
        Some(true) => " class=\"ok\"",
        Some(false) => " class=\"bad\"",
        None => "",
    };
    format!("<td{class}>{}</td>", escape(text))
}

/// A 0/1 metric as yes/no, `-` when absent.
fn flag(value: Option<&f64>) -> &'static str {
    match value {
        Some(v) if *v > 0.0 => "yes",
        Some(_) => "no",
        None => "-",
    }
}

/// `GET /` of the landing page: the pool (simulator's truth and exporter's view), the VMs and
/// the remediation journal; plain HTML reloading itself.
pub(super) async fn landing(State(page): State<Arc<Page>>) -> Html<String> {
    let hosts: Result<Vec<HostView>, String> = page.get("/hosts").await;
    let truth: Result<Truth, String> = page.get("/truth").await;
    let exposition = page.exporter.render();
    let names: BTreeMap<String, String> = hosts
        .as_ref()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.uuid.clone(), h.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let name_of = |uuid: &str| names.get(uuid).cloned().unwrap_or_else(|| uuid.to_owned());
    let mode = if page.auto { "auto" } else { "observe" };
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{PAGE_REFRESH_SECONDS}\">\
         <title>xenguard demo</title><style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;margin-bottom:1em}}\
         td,th{{border:1px solid #bbb;padding:3px 8px;text-align:left}}th{{background:#eee}}.ok{{background:#dfd}}.bad{{background:#fcc}}\
         code{{background:#f4f4f4}}</style></head><body><h1>xenguard demo</h1><p>Receiver mode <b>{mode}</b>: {}. This page reloads every {PAGE_REFRESH_SECONDS} s.</p>",
        if page.auto {
            "a host whose VMs stay stuck is confirmed dead, fenced through its simulated BMC, and its VMs are restarted elsewhere"
        } else {
            "recovery plans are journaled, nothing is done (run <code>xenguard demo --auto</code> to let it act)"
        }
    );
    let pool_up = pool_series(&exposition, "xen_pool_up");
    let masters = pool_series(&exposition, "xen_pool_masters");
    let _ = write!(
        html,
        "<h2>Pool <code>{POOL}</code></h2><p>Exporter: pool up <b>{}</b>, hosts claiming master <b>{}</b>.</p>",
        flag(pool_up.as_ref()),
        masters.map_or("-".to_owned(), |m| m.to_string())
    );
    let series: BTreeMap<&str, BTreeMap<String, f64>> = [
        "xen_host_reachable",
        "xen_host_live",
        "xen_host_is_master",
        "xen_host_emergency_mode",
        "xen_host_orphaned",
        "xen_host_stuck_vms",
        "xen_host_vdi_locks",
    ]
    .into_iter()
    .map(|metric| (metric, host_series(&exposition, metric)))
    .collect();
    match &hosts {
        Err(e) => {
            let _ = write!(
                html,
                "<p class=\"bad\">The simulator's control API did not answer: {}</p>",
                escape(e)
            );
        }
        Ok(hosts) => {
            html.push_str(
                "<table><tr><th colspan=\"6\">simulator (ground truth)</th><th colspan=\"7\">exporter's view</th></tr>\
                 <tr><th>host</th><th>address</th><th>power</th><th>network</th><th>xapi</th><th>role</th>\
                 <th>reachable</th><th>live</th><th>master</th><th>emergency</th><th>orphaned</th><th>stuck VMs</th><th>VDI locks</th></tr>",
            );
            for h in hosts {
                let get = |metric: &str| series.get(metric).and_then(|m| m.get(&h.uuid));
                let role = if h.emergency {
                    format!("{} (emergency)", h.role)
                } else {
                    h.role.clone()
                };
                let stuck = get("xen_host_stuck_vms");
                let _ = write!(
                    html,
                    "<tr>{}{}{}{}{}{}{}{}{}{}{}{}{}</tr>",
                    cell(&h.name, None),
                    cell(&h.address, None),
                    cell(&h.power, Some(h.power == "on")),
                    cell(&h.network, Some(h.network == "up")),
                    cell(&h.xapi, Some(h.xapi == "running")),
                    cell(&role, None),
                    cell(
                        flag(get("xen_host_reachable")),
                        Some(flag(get("xen_host_reachable")) == "yes")
                    ),
                    cell(
                        flag(get("xen_host_live")),
                        Some(flag(get("xen_host_live")) == "yes")
                    ),
                    cell(flag(get("xen_host_is_master")), None),
                    cell(flag(get("xen_host_emergency_mode")), None),
                    cell(flag(get("xen_host_orphaned")), None),
                    cell(
                        &stuck.map_or("-".to_owned(), |v| v.to_string()),
                        stuck.map(|v| *v == 0.0)
                    ),
                    cell(
                        &get("xen_host_vdi_locks").map_or("-".to_owned(), |v| v.to_string()),
                        None
                    ),
                );
            }
            html.push_str("</table>");
        }
    }
    match &truth {
        Err(e) => {
            let _ = write!(html, "<p class=\"bad\">No ground truth: {}</p>", escape(e));
        }
        Ok(truth) => {
            let _ = write!(
                html,
                "<h2>VMs</h2><p>Running on more than one host at once (data corruption): <b class=\"{}\">{}</b></p><table><tr><th>VM</th><th>really runs on</th></tr>",
                if truth.double_running_vms == 0 {
                    "ok"
                } else {
                    "bad"
                },
                truth.double_running_vms
            );
            let mut vms: Vec<_> = truth.vms.iter().collect();
            vms.sort_by(|a, b| a.name.cmp(&b.name));
            for vm in vms {
                let on: Vec<String> = vm.running_on.iter().map(|u| name_of(u)).collect();
                let text = if on.is_empty() {
                    "(halted)".to_owned()
                } else {
                    on.join(", ")
                };
                let _ = write!(
                    html,
                    "<tr>{}{}</tr>",
                    cell(&vm.name, None),
                    cell(&text, Some(on.len() == 1))
                );
            }
            html.push_str("</table>");
        }
    }
    html.push_str("<h2>Remediations</h2>");
    let journal = page.receiver.journal();
    match journal.list(20) {
        Err(e) => {
            let _ = write!(
                html,
                "<p class=\"bad\">Journal: {}</p>",
                escape(&e.to_string())
            );
        }
        Ok(list) if list.is_empty() => {
            html.push_str("<p>None yet. Kill a host (see below) and wait for the alert.</p>");
        }
        Ok(list) => {
            html.push_str(
                "<table><tr><th>id</th><th>created (UTC)</th><th>host</th><th>alert</th><th>plan</th><th>phase</th><th>reason</th></tr>",
            );
            for r in &list {
                let good = match r.phase.as_str() {
                    "done" => Some(true),
                    "failed" | "blocked" => Some(false),
                    _ => None,
                };
                let _ = write!(
                    html,
                    "<tr>{}{}{}{}{}{}{}</tr>",
                    cell(&r.id.to_string(), None),
                    cell(&clock_time(r.created_at), None),
                    cell(&name_of(&r.host_uuid), None),
                    cell(&r.alertname, None),
                    cell(&r.kind, None),
                    cell(&r.phase, good),
                    cell(&r.reason, None),
                );
            }
            html.push_str("</table>");
            if let Ok(Some((r, steps))) = journal.show(list[0].id) {
                let _ = write!(
                    html,
                    "<h3>Remediation {} step by step</h3><table><tr><th>after</th><th>step</th><th>detail</th></tr>",
                    r.id
                );
                for step in steps {
                    let detail = &step.detail;
                    let mut detail = match (step.kind.as_str(), detail["from"].as_str()) {
                        ("phase", Some(from)) => format!(
                            "{from} → {} ({}) {}",
                            detail["to"].as_str().unwrap_or("?"),
                            detail["event"].as_str().unwrap_or(""),
                            detail["reason"].as_str().unwrap_or("")
                        ),
                        _ => detail.to_string(),
                    };
                    if detail.len() > 200 {
                        let cut = (0..=200).rev().find(|i| detail.is_char_boundary(*i));
                        detail.truncate(cut.unwrap_or(0));
                        detail.push('…');
                    }
                    let _ = write!(
                        html,
                        "<tr>{}{}{}</tr>",
                        cell(&format!("{:.1} s", step.at - r.created_at), None),
                        cell(&step.kind, None),
                        cell(&detail, None)
                    );
                }
                html.push_str("</table>");
            }
        }
    }
    let control = page.control.trim_start_matches("http://");
    let _ = write!(
        html,
        "<h2>Try</h2><pre>curl -s -XPOST {control}/hosts/host2/power -H 'content-type: application/json' -d '{{\"state\":\"off\"}}'\n\
         curl -s -XPOST {control}/hosts/host3/xapi -H 'content-type: application/json' -d '{{\"running\":false}}'\n\
         curl -s -XPOST {control}/hosts/host1/network -H 'content-type: application/json' -d '{{\"connected\":false}}'\n\
         curl -s -XPOST {control}/hosts/host2/power -H 'content-type: application/json' -d '{{\"state\":\"on\"}}'</pre>\
         <p>More: <a href=\"http://{exporter}/metrics\">exporter /metrics</a> · <a href=\"http://{receiver}/remediations\">receiver /remediations</a> · \
         <a href=\"http://{control}/hosts\">control /hosts</a> · <a href=\"http://{control}/truth\">control /truth</a></p></body></html>",
        exporter = page.exporter_at,
        receiver = page.receiver_at,
    );
    Html(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_time_is_utc_hours_minutes_seconds() {
        assert_eq!(clock_time(3661.0), "01:01:01");
    }

    #[test]
    fn cells_are_escaped_and_marked() {
        assert_eq!(
            cell("<a & \"b\">", Some(false)),
            "<td class=\"bad\">&lt;a &amp; &quot;b&quot;&gt;</td>"
        );
        assert_eq!(flag(Some(&1.0)), "yes");
        assert_eq!(flag(None), "-");
    }
}
