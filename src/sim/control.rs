//! The simulator's control API (HTTP/JSON, architecture.md §4): inject physical faults, move the
//! clock, and read the ground truth that no XAPI answer may contradict.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::model::{Faults, Model, Role, TimingParams};
use super::server::Shared;

/// The control API's routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/hosts", get(hosts))
        .route("/hosts/{host}/power", post(power))
        .route("/hosts/{host}/feeds/{feed}", post(feed))
        .route("/hosts/{host}/network", post(network))
        .route("/hosts/{host}/xapi", post(xapi))
        .route(
            "/hosts/{host}/faults",
            post(set_faults).delete(clear_faults),
        )
        .route("/hosts/{host}/certificate", post(rotate_certificate))
        .route("/pool/ha", post(ha))
        .route("/timing", get(timing).post(set_timing))
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance))
        .route("/clock/scale", post(scale))
        .route("/truth", get(truth))
        .with_state(shared)
}

/// One host as `GET /hosts` lists it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct HostView {
    /// Name label.
    pub name: String,
    /// Host uuid.
    pub uuid: String,
    /// Management address.
    pub address: String,
    /// The host's XAPI URL (`https://…` with `--tls`).
    pub url: String,
    /// With `--tls`: SHA-256 of the host's certificate, hex, as the configuration's pins take it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_sha256: Option<String>,
    /// `on` or `off`.
    pub power: String,
    /// The chassis' two power feeds (PDU outlets), `true` when live.
    #[serde(default)]
    pub feeds: [bool; 2],
    /// `up`, `down`, or `pool_only` (cut from outside the pool only).
    pub network: String,
    /// `running` or `stopped`.
    pub xapi: String,
    /// pool.conf: `master` or `slave`.
    pub role: String,
    /// Master address from pool.conf (empty on a master).
    pub master_address: String,
    /// `host.is_in_emergency_mode`.
    pub emergency: bool,
    /// HTTP requests (XML-RPC calls, `/rrd_updates`) this host answered since the simulator started.
    pub calls_served: u64,
    /// Bytes of XML-RPC answer bodies it has sent.
    pub bytes_served: u64,
}

fn not_found(host: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("no simulated host {host:?}")})),
    )
        .into_response()
}

/// Applies `change` to the host named in the path, then answers with every host's new state
/// once their sockets reflect it (404 for an unknown host).
async fn change_host(
    shared: &Arc<Shared>,
    host: &str,
    change: impl FnOnce(&mut Model, usize, f64),
) -> Response {
    let found = shared.with_model(|m, now| {
        let i = m.find_host(host)?;
        change(m, i, now);
        Some(())
    });
    match found {
        Some(()) => done(shared).await,
        None => not_found(host),
    }
}

/// Answers a change with the hosts' new state, once their sockets reflect it.
async fn done(shared: &Arc<Shared>) -> Response {
    if let Err(e) = shared.settle().await {
        let body = Json(json!({"error": format!("socket change failed: {e}")}));
        return (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    }
    Json(hosts_view(shared)).into_response()
}

fn hosts_view(shared: &Shared) -> Vec<HostView> {
    shared.with_model(|m, _| {
        m.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| HostView {
                name: h.name.clone(),
                uuid: h.uuid.clone(),
                address: h.address.clone(),
                url: format!("{}://{}:{}", shared.scheme(), h.address, shared.port),
                tls_sha256: shared.cert(i).map(|c| c.sha256),
                power: if h.power_on { "on" } else { "off" }.into(),
                feeds: h.feeds,
                network: match (h.network_up, h.outside_cut) {
                    (false, _) => "down",
                    (true, true) => "pool_only",
                    (true, false) => "up",
                }
                .into(),
                xapi: if h.power_on && h.xapi_running {
                    "running"
                } else {
                    "stopped"
                }
                .into(),
                role: match h.role {
                    Role::Master => "master".into(),
                    Role::Slave(_) => "slave".into(),
                },
                master_address: match &h.role {
                    Role::Master => String::new(),
                    Role::Slave(a) => a.clone(),
                },
                emergency: h.power_on && h.xapi_running && h.emergency,
                calls_served: shared.traffic[i].calls.load(Ordering::Relaxed),
                bytes_served: shared.traffic[i].bytes.load(Ordering::Relaxed),
            })
            .collect()
    })
}

async fn hosts(State(shared): State<Arc<Shared>>) -> Json<Vec<HostView>> {
    Json(hosts_view(&shared))
}

/// `POST /hosts/{host}/power`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PowerRequest {
    state: PowerState,
    /// An orderly shutdown (guests stopped, master told) rather than pulling the plug.
    #[serde(default)]
    graceful: bool,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum PowerState {
    On,
    Off,
}

async fn power(
    State(shared): State<Arc<Shared>>,
    Path(host): Path<String>,
    Json(req): Json<PowerRequest>,
) -> Response {
    change_host(&shared, &host, |m, i, now| {
        match (req.state, req.graceful) {
            (PowerState::On, _) => m.power_on(i, now),
            (PowerState::Off, true) => m.shutdown(i, now),
            (PowerState::Off, false) => m.power_off(i),
        }
    })
    .await
}

/// `POST /hosts/{host}/feeds/{feed}`: one power feed (1 or 2) on or off.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedRequest {
    on: bool,
}

async fn feed(
    State(shared): State<Arc<Shared>>,
    Path((host, feed)): Path<(String, String)>,
    Json(req): Json<FeedRequest>,
) -> Response {
    let Some(index) = feed.parse::<usize>().ok().filter(|n| (1..=2).contains(n)) else {
        let body =
            Json(json!({"error": format!("no power feed {feed:?}: a host has feeds 1 and 2")}));
        return (StatusCode::NOT_FOUND, body).into_response();
    };
    change_host(&shared, &host, |m, i, _| m.set_feed(i, index - 1, req.on)).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkRequest {
    connected: bool,
    /// Cut (or restore) only the path from outside the pool: the other hosts still reach it.
    #[serde(default)]
    outside_only: bool,
}

async fn network(
    State(shared): State<Arc<Shared>>,
    Path(host): Path<String>,
    Json(req): Json<NetworkRequest>,
) -> Response {
    change_host(&shared, &host, |m, i, now| {
        if req.outside_only {
            m.hosts[i].outside_cut = !req.connected;
        } else {
            m.hosts[i].network_up = req.connected;
        }
        m.tick(now);
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct XapiRequest {
    running: bool,
}

async fn xapi(
    State(shared): State<Arc<Shared>>,
    Path(host): Path<String>,
    Json(req): Json<XapiRequest>,
) -> Response {
    change_host(&shared, &host, |m, i, now| {
        if req.running {
            m.start_xapi(i, now);
        } else {
            m.stop_xapi(i);
        }
    })
    .await
}

async fn set_faults(
    State(shared): State<Arc<Shared>>,
    Path(host): Path<String>,
    Json(faults): Json<Faults>,
) -> Response {
    change_host(&shared, &host, |m, i, _| m.hosts[i].faults = faults).await
}

async fn clear_faults(State(shared): State<Arc<Shared>>, Path(host): Path<String>) -> Response {
    change_host(&shared, &host, |m, i, _| {
        m.hosts[i].faults = Faults::default()
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HaRequest {
    enabled: bool,
}

/// Turns XAPI HA on or off (see [`super::model::Model::set_ha`]).
async fn ha(State(shared): State<Arc<Shared>>, Json(req): Json<HaRequest>) -> Response {
    shared.with_model(|m, _| m.set_ha(req.enabled));
    Json(json!({"ha_enabled": req.enabled})).into_response()
}

async fn clock(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let (now, scale) = {
        let c = shared.clock.lock().unwrap_or_else(|e| e.into_inner());
        (c.now(), c.scale())
    };
    Json(json!({"now": now, "scale": scale}))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceRequest {
    seconds: f64,
}

async fn advance(State(shared): State<Arc<Shared>>, Json(req): Json<AdvanceRequest>) -> Response {
    if !(req.seconds.is_finite() && req.seconds >= 0.0) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "seconds must be a non-negative number"})),
        )
            .into_response();
    }
    shared
        .clock
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .advance(req.seconds);
    shared.with_model(|_, _| ());
    clock(State(shared)).await.into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleRequest {
    scale: f64,
}

async fn scale(State(shared): State<Arc<Shared>>, Json(req): Json<ScaleRequest>) -> Response {
    if !(req.scale.is_finite() && req.scale >= 0.0) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "scale must be a non-negative number"})),
        )
            .into_response();
    }
    shared
        .clock
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .set_scale(req.scale);
    clock(State(shared)).await.into_response()
}

/// `GET /truth` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct Truth {
    /// VMs whose domain runs on more than one host at once (data corruption).
    pub double_running_vms: usize,
    /// Every guest and where its domain really runs.
    pub vms: Vec<TruthVm>,
}

/// One guest in the ground truth.
#[derive(Debug, Serialize, Deserialize)]
pub struct TruthVm {
    /// VM uuid.
    pub uuid: String,
    /// Name label.
    pub name: String,
    /// Uuids of the hosts running its domain.
    pub running_on: Vec<String>,
}

async fn truth(State(shared): State<Arc<Shared>>) -> Json<Truth> {
    Json(shared.with_model(|m, _| {
        let names = m.guests.clone();
        Truth {
            double_running_vms: m.double_running(),
            vms: names
                .into_iter()
                .map(|(uuid, name)| TruthVm {
                    running_on: m
                        .running
                        .get(&uuid)
                        .map(|hs| hs.iter().cloned().collect())
                        .unwrap_or_default(),
                    uuid,
                    name,
                })
                .collect(),
        }
    }))
}

/// `GET /timing`: the realistic model's durations (simulated seconds).
async fn timing(State(shared): State<Arc<Shared>>) -> Json<TimingParams> {
    Json(shared.with_model(|m, _| m.params))
}

/// `POST /timing`: sets them (a field left out takes its default).
async fn set_timing(
    State(shared): State<Arc<Shared>>,
    Json(params): Json<TimingParams>,
) -> Json<TimingParams> {
    Json(shared.with_model(|m, _| {
        m.params = params;
        m.params
    }))
}

/// `POST /hosts/{host}/certificate`: a new self-signed certificate for the host (a reinstall,
/// `xe host-refresh-server-certificate`), used from its next connection. 409 without `--tls`.
async fn rotate_certificate(
    State(shared): State<Arc<Shared>>,
    Path(host): Path<String>,
) -> Response {
    let Some(i) = shared.with_model(|m, _| m.find_host(&host)) else {
        return not_found(&host);
    };
    let Some(certs) = &shared.certs else {
        let body = Json(json!({"error": "the simulator serves plain HTTP (start it with --tls)"}));
        return (StatusCode::CONFLICT, body).into_response();
    };
    let (name, address) =
        shared.with_model(|m, _| (m.hosts[i].name.clone(), m.hosts[i].address.clone()));
    match super::certs::generate(&name, &address) {
        Ok(cert) => {
            certs.lock().unwrap_or_else(|e| e.into_inner())[i] = cert;
            Json(hosts_view(&shared)).into_response()
        }
        Err(e) => {
            let body = Json(json!({"error": format!("cannot make a certificate: {e}")}));
            (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
        }
    }
}
