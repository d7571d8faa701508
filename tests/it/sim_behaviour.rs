//! The simulator behaves as xapi does, seen from each host (§ numbers cite xapi-notes.md), driven
//! by xenguard's own client over real sockets. Includes the recovery guides' scenarios: slave
//! death and the 600 s timeout, master power loss with emergency transition and
//! recover_slaves, the master's cable pulled and split brain, graceful master shutdown, and a
//! VM restart blocked by a VDI tag until it is removed.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{control_url, credentials, start_sim, transport};
use serde_json::json;
use xenguard::sim::RunningSim;
use xenguard::xapi::records::{Host, HostMetrics, PowerState, Ref, Vdi, Vm};
use xenguard::xapi::wire::Value;
use xenguard::xapi::{Error, ErrorCode, LocalSession, PoolActuator, PoolReader, Session};

async fn control(sim: &RunningSim, path: &str, body: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", control_url(sim)))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
}

async fn truth_double_running(sim: &RunningSim) -> u64 {
    let truth: serde_json::Value = reqwest::get(format!("{}/truth", control_url(sim)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    truth["double_running_vms"].as_u64().unwrap()
}

/// A pool session that tries the hosts in the given order.
fn session_via(sim: &RunningSim, order: &[usize]) -> Arc<Session> {
    let addresses = sim.host_addresses();
    let seeds = order.iter().map(|&i| addresses[i].clone()).collect();
    Arc::new(Session::new(
        transport(sim),
        credentials(),
        "sim-test",
        seeds,
    ))
}

async fn live_of(reader: &PoolReader, name: &str) -> bool {
    let hosts = reader.all::<Host>().await.unwrap();
    let (_, host) = hosts.iter().find(|(_, h)| h.name_label == name).unwrap();
    reader
        .record::<HostMetrics>(&host.metrics)
        .await
        .unwrap()
        .live
}

async fn host_ref(reader: &PoolReader, name: &str) -> Ref<Host> {
    reader
        .all::<Host>()
        .await
        .unwrap()
        .into_iter()
        .find(|(_, h)| h.name_label == name)
        .unwrap()
        .0
}

async fn guests_on(reader: &PoolReader, host: &Ref<Host>) -> Vec<(Ref<Vm>, Vm)> {
    reader
        .all::<Vm>()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, v)| {
            v.is_guest() && &v.resident_on == host && v.power_state == PowerState::Running
        })
        .collect()
}

async fn emergency(sim: &RunningSim, i: usize) -> Result<bool, Error> {
    let address = &sim.host_addresses()[i];
    let local = LocalSession::login(&transport(sim), address, &credentials(), None).await?;
    let answer = local.is_in_emergency_mode(None).await;
    local.logout(None).await;
    answer
}

/// §2.1, §2.3, §3.3: a slave redirects pool logins to its master and accepts local logins.
#[tokio::test]
async fn slave_redirects_logins_and_answers_local_sessions() {
    let sim = start_sim(3, 1).await;
    let addresses = sim.host_addresses();
    let t = transport(&sim);
    let params = [Value::string("root"), Value::string("xenguard")];
    let err = t
        .call(&addresses[1], "session.login_with_password", &params, None)
        .await
        .unwrap_err();
    assert_eq!(err.failure().unwrap().params, vec![addresses[0].clone()]);
    assert!(err.is(&ErrorCode::HostIsSlave));
    assert!(!emergency(&sim, 1).await.unwrap());
    let session = session_via(&sim, &[1]);
    assert_eq!(session.login().await.unwrap(), addresses[0]);
}

/// §4.1: a dead slave stays live for 600 s after its last heartbeat, then live=false; its VMs
/// stay Running on it (§4.1 last bullet).
#[tokio::test]
async fn slave_death_is_noticed_after_600_seconds() {
    let sim = start_sim(3, 2).await;
    let reader = PoolReader::new(session_via(&sim, &[0]));
    control(&sim, "/hosts/host2/power", json!({"state": "off"})).await;
    sim.advance(590.0);
    assert!(live_of(&reader, "host2").await, "still live before 600 s");
    sim.advance(20.0);
    assert!(!live_of(&reader, "host2").await, "not live after 600 s");
    assert!(live_of(&reader, "host3").await);
    let host2 = host_ref(&reader, "host2").await;
    assert_eq!(
        guests_on(&reader, &host2).await.len(),
        2,
        "VMs stay Running on the dead host"
    );
    assert_eq!(truth_double_running(&sim).await, 0);
}

/// §6.6: after power_state_reset the VDI keeps the dead host's RW tag and VM.start fails with
/// SR_BACKEND_FAILURE_46 until the tag is removed; then the VM starts on a survivor.
#[tokio::test]
async fn vm_restart_is_blocked_by_a_stale_vdi_tag_until_removed() {
    let sim = start_sim(3, 2).await;
    let session = session_via(&sim, &[0]);
    let (reader, actuator) = (PoolReader::new(session.clone()), PoolActuator::new(session));
    control(&sim, "/hosts/host2/power", json!({"state": "off"})).await;
    sim.advance(610.0);
    let host2 = host_ref(&reader, "host2").await;
    let (vm, record) = guests_on(&reader, &host2).await.remove(0);
    actuator
        .power_state_reset(&vm, Duration::from_secs(5))
        .await
        .unwrap();
    let err = actuator
        .start(&vm, Duration::from_secs(5))
        .await
        .unwrap_err();
    let failure = err.failure().expect("an API failure");
    assert_eq!(failure.code, ErrorCode::SrBackendFailure46);
    assert!(
        failure.params[1].starts_with("The VDI is not available [opterr="),
        "{failure}"
    );
    let key = format!("host_{host2}");
    for vdi in vdis_of(&reader, &record).await {
        actuator.remove_from_sm_config(&vdi, &key).await.unwrap();
    }
    actuator.start(&vm, Duration::from_secs(5)).await.unwrap();
    let started = reader.record(&vm).await.unwrap();
    assert_eq!(started.power_state, PowerState::Running);
    assert_ne!(started.resident_on, host2);
    assert_eq!(truth_double_running(&sim).await, 0);
}

async fn vdis_of(reader: &PoolReader, vm: &Vm) -> Vec<Ref<Vdi>> {
    let mut out = Vec::new();
    for vbd in &vm.vbds {
        out.push(reader.record(vbd).await.unwrap().vdi);
    }
    out
}

/// §5.3, §6.5: power_state_reset and declare_dead refuse while the host answers; a control
/// domain cannot be reset.
#[tokio::test]
async fn resets_refuse_a_live_host_and_control_domains() {
    let sim = start_sim(2, 1).await;
    let session = session_via(&sim, &[0]);
    let (reader, actuator) = (PoolReader::new(session.clone()), PoolActuator::new(session));
    let host2 = host_ref(&reader, "host2").await;
    let (vm, _) = guests_on(&reader, &host2).await.remove(0);
    let err = actuator
        .power_state_reset(&vm, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(err.is(&ErrorCode::HostIsLive), "{err}");
    assert_eq!(err.failure().unwrap().params, vec![host2.to_string()]);
    assert!(
        actuator
            .declare_dead(&host2, Duration::from_secs(5))
            .await
            .unwrap_err()
            .is(&ErrorCode::HostIsLive)
    );
    let dom0 = reader.record(&host2).await.unwrap().control_domain;
    assert!(
        actuator
            .power_state_reset(&dom0, Duration::from_secs(5))
            .await
            .unwrap_err()
            .is(&ErrorCode::CannotResetControlDomain)
    );
}

/// §3.4 and the recovery guides' warning: a host whose xapi died still runs its VMs; xapi's
/// own probe finds nothing and lets the reset through, and a restart elsewhere runs the VM
/// twice. The simulator must make this corruption visible in its ground truth.
#[tokio::test]
async fn a_dead_xapi_with_running_vms_lets_a_blind_restart_corrupt_data() {
    let sim = start_sim(2, 1).await;
    let session = session_via(&sim, &[0]);
    let (reader, actuator) = (PoolReader::new(session.clone()), PoolActuator::new(session));
    let host2 = host_ref(&reader, "host2").await;
    let (vm, record) = guests_on(&reader, &host2).await.remove(0);
    control(&sim, "/hosts/host2/xapi", json!({"running": false})).await;
    actuator
        .power_state_reset(&vm, Duration::from_secs(5))
        .await
        .expect("the probe fails, so the reset goes through");
    for vdi in vdis_of(&reader, &record).await {
        actuator
            .remove_from_sm_config(&vdi, &format!("host_{host2}"))
            .await
            .unwrap();
    }
    // Its home (affinity) is host2, whose xapi is gone: placement still picks it (live=true)
    // and fails to reach it, so the operator starts it on host1 explicitly.
    let blocked = actuator
        .start(&vm, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(blocked.is(&ErrorCode::CannotContactHost), "{blocked}");
    let host1 = host_ref(&reader, "host1").await;
    actuator
        .start_on(&vm, &host1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        truth_double_running(&sim).await,
        1,
        "the VM now runs on both hosts"
    );
}

/// §3.2, §3.4, §4.1, §6.1, §6.3: the master loses power. Running slaves keep reporting no
/// emergency and their DB-backed calls block; a slave whose xapi restarts enters emergency
/// mode; emergency_transition_to_master promotes it after the 10 s fuse from its database
/// copy, every host counts as live for the 600 s grace; recover_slaves returns only the hosts
/// that answered and brings them over.
#[tokio::test]
async fn master_power_loss_and_emergency_transition() {
    let sim = start_sim(3, 1).await;
    let addresses = sim.host_addresses();
    control(&sim, "/hosts/host1/power", json!({"state": "off"})).await;

    let t = transport(&sim);
    let params = [Value::string("root"), Value::string("xenguard")];
    let err = t
        .call(&addresses[1], "session.login_with_password", &params, None)
        .await
        .unwrap_err();
    assert!(
        err.is(&ErrorCode::HostIsSlave),
        "a running slave still names its dead master"
    );
    assert!(
        !emergency(&sim, 1).await.unwrap(),
        "no emergency mode without an xapi restart"
    );
    let local = LocalSession::login(&t, &addresses[1], &credentials(), None)
        .await
        .unwrap();
    let blocked = local
        .call("pool.get_all", &[], Some(Duration::from_millis(500)))
        .await
        .unwrap_err();
    assert!(
        matches!(blocked, Error::Timeout { .. }),
        "DB-backed calls block: {blocked}"
    );

    control(&sim, "/hosts/host2/xapi", json!({"running": false})).await;
    control(&sim, "/hosts/host2/xapi", json!({"running": true})).await;
    assert!(
        emergency(&sim, 1).await.unwrap(),
        "emergency mode after the restart"
    );
    let err = t
        .call(&addresses[1], "session.login_with_password", &params, None)
        .await
        .unwrap_err();
    assert!(err.is(&ErrorCode::HostStillBooting), "{err}");
    // The failed attempt leaves INTERNAL_ERROR until the next one: the two take turns.
    for expected in [ErrorCode::InternalError, ErrorCode::HostStillBooting] {
        sim.advance(5.0);
        let err = t
            .call(&addresses[1], "session.login_with_password", &params, None)
            .await
            .unwrap_err();
        assert!(err.is(&expected), "{err}");
    }

    let pool = session_via(&sim, &[1, 2]);
    PoolActuator::new(pool.clone())
        .emergency_transition_to_master(&addresses[1])
        .await
        .unwrap();
    sim.advance(11.0);
    assert_eq!(
        pool.login().await.unwrap(),
        addresses[1],
        "host2 is master after the fuse"
    );
    let reader = PoolReader::new(pool.clone());
    assert!(
        live_of(&reader, "host1").await,
        "600 s grace: even the dead ex-master is live"
    );
    let (_, record) = reader.pool().await.unwrap();
    assert_eq!(record.master, host_ref(&reader, "host2").await);

    let recovered = PoolActuator::new(pool.clone())
        .recover_slaves(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        recovered,
        vec![host_ref(&reader, "host3").await],
        "host1 did not answer"
    );
    sim.advance(11.0);
    let err = t
        .call(&addresses[2], "session.login_with_password", &params, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.failure().unwrap().params,
        vec![addresses[1].clone()],
        "host3 follows host2"
    );
    sim.advance(600.0);
    assert!(
        !live_of(&reader, "host1").await,
        "the dead ex-master is not live after the grace"
    );
    assert!(
        live_of(&reader, "host3").await,
        "host3 heartbeats to the new master"
    );
    assert_eq!(truth_double_running(&sim).await, 0);
}

/// The master's cable is pulled (its VMs keep running): connections hang rather than being
/// refused. A slave is promoted meanwhile; when the cable is back the old master still
/// believes it is master (split brain) until recover_slaves from the new master reaches it.
#[tokio::test]
async fn master_cable_pulled_then_split_brain_until_recover_slaves() {
    let sim = start_sim(3, 1).await;
    let addresses = sim.host_addresses();
    let t = transport(&sim);
    control(&sim, "/hosts/host1/network", json!({"connected": false})).await;
    let err = t
        .call(
            &addresses[0],
            "session.login_with_password",
            &[],
            Some(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout { .. }),
        "a pulled cable hangs: {err}"
    );

    let pool = session_via(&sim, &[1]);
    PoolActuator::new(pool.clone())
        .emergency_transition_to_master(&addresses[1])
        .await
        .unwrap();
    sim.advance(11.0);
    control(&sim, "/hosts/host1/network", json!({"connected": true})).await;

    let masters = |sim: &RunningSim| {
        sim.with_model(|m, _| {
            m.hosts
                .iter()
                .filter(|h| h.answers() && h.role == xenguard::sim::model::Role::Master)
                .count()
        })
    };
    assert_eq!(masters(&sim), 2, "split brain");
    let old = Session::new(
        transport(&sim),
        credentials(),
        "t",
        vec![addresses[0].clone()],
    );
    assert_eq!(
        old.login().await.unwrap(),
        addresses[0],
        "the old master still accepts logins as master"
    );

    let recovered = PoolActuator::new(pool.clone())
        .recover_slaves(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(recovered.len(), 2, "both other hosts answered");
    sim.advance(11.0);
    assert_eq!(masters(&sim), 1);
    let params = [Value::string("root"), Value::string("xenguard")];
    let err = t
        .call(&addresses[0], "session.login_with_password", &params, None)
        .await
        .unwrap_err();
    assert_eq!(err.failure().unwrap().params, vec![addresses[1].clone()]);
    assert_eq!(truth_double_running(&sim).await, 0);
}

/// A graceful shutdown of the master halts its guests cleanly (disks released) before power
/// goes, so nothing runs there any more.
#[tokio::test]
async fn graceful_master_shutdown_stops_its_guests_cleanly() {
    let sim = start_sim(2, 2).await;
    let host1 = sim.with_model(|m, _| m.hosts[0].uuid.clone());
    control(
        &sim,
        "/hosts/host1/power",
        json!({"state": "off", "graceful": true}),
    )
    .await;
    let still_running =
        sim.with_model(|m, _| m.running.values().filter(|hs| hs.contains(&host1)).count());
    assert_eq!(still_running, 0);
    let tagged = sim.with_model(|m, _| {
        let key = format!("host_{}", m.hosts[0].reference);
        m.hosts[0]
            .db
            .vdi
            .iter()
            .filter(|(_, v)| v.sm_config.contains_key(&key))
            .count()
    });
    assert_eq!(tagged, 0, "clean shutdown releases the disks");
}

/// §2.4: sessions do not survive an xapi restart; the client logs in again by itself.
#[tokio::test]
async fn sessions_are_lost_when_xapi_restarts() {
    let sim = start_sim(1, 1).await;
    let session = session_via(&sim, &[0]);
    let reader = PoolReader::new(session.clone());
    reader.pool().await.unwrap();
    control(&sim, "/hosts/host1/xapi", json!({"running": false})).await;
    control(&sim, "/hosts/host1/xapi", json!({"running": true})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    reader.pool().await.expect("re-login after SESSION_INVALID");
}

/// §6.1: with HA armed, emergency transition is refused.
#[tokio::test]
async fn ha_blocks_emergency_transition() {
    let sim = start_sim(2, 1).await;
    control(&sim, "/pool/ha", json!({"enabled": true})).await;
    let pool = session_via(&sim, &[0]);
    let err = PoolActuator::new(pool)
        .emergency_transition_to_master(&sim.host_addresses()[1])
        .await
        .unwrap_err();
    assert!(err.is(&ErrorCode::HaIsEnabled), "{err}");
}

/// §7.1: event.from from "" lists every object once; later calls block until a change and
/// report it; a deleted object is a `del` without snapshot; valid_ref_counts matches.
#[tokio::test]
async fn event_from_tokens_changes_and_counts() {
    let sim = start_sim(2, 1).await;
    let session = session_via(&sim, &[0]);
    let reader = PoolReader::new(session.clone());
    let long = Duration::from_secs(5);
    let all = reader
        .event_from(&["vm", "host_metrics"], "", long, long)
        .await
        .unwrap();
    let vms = reader.all::<Vm>().await.unwrap();
    assert_eq!(
        all.events.iter().filter(|e| e.class == "vm").count(),
        vms.len()
    );
    assert_eq!(all.valid_ref_counts["vm"] as usize, vms.len());
    assert!(all.events.iter().all(|e| e.operation.as_str() == "add"));

    let token = all.token.clone();
    let waiter = {
        let reader = reader.clone();
        tokio::spawn(async move {
            reader
                .event_from(&["host_metrics"], &token, long, long)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    control(&sim, "/hosts/host2/power", json!({"state": "off"})).await;
    sim.advance(700.0);
    let batch = tokio::time::timeout(Duration::from_secs(3), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(batch.events.len(), 1);
    let metrics: HostMetrics = xenguard::xapi::reader::snapshot(&batch.events[0])
        .unwrap()
        .unwrap();
    assert!(!metrics.live);

    let quiet = reader
        .event_from(&["vm"], &batch.token, Duration::from_millis(200), long)
        .await
        .unwrap();
    assert!(
        quiet.events.is_empty(),
        "no change: empty after the timeout"
    );
    let err = session
        .call(
            "event.from",
            &[
                Value::Array(vec![]),
                Value::string("junk"),
                Value::Double(1.0),
            ],
        )
        .await
        .unwrap_err();
    assert!(err.is(&ErrorCode::EventFromTokenParseFailure));
}

/// §1.1, §1.2, §9: bad input gets xapi's errors, never a crash.
#[tokio::test]
async fn bad_input_gets_the_errors_xapi_gives() {
    let sim = start_sim(1, 1).await;
    let address = sim.host_addresses()[0].clone();
    let url = format!("http://{address}:{}/", sim.port());
    let http = reqwest::Client::new();
    let garbage = http
        .post(&url)
        .body("<methodCall><oops>")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 500, "malformed XML is an HTTP 500");
    let huge = http
        .post(&url)
        .body(vec![b'x'; 400 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);

    let session = session_via(&sim, &[0]);
    let unknown = session.call("VM.frobnicate", &[]).await.unwrap_err();
    assert_eq!(
        unknown.failure().unwrap().description(),
        vec!["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"]
    );
    let arity = session.call("VM.get_record", &[]).await.unwrap_err();
    assert_eq!(
        arity.failure().unwrap().description(),
        vec![
            "MESSAGE_PARAMETER_COUNT_MISMATCH",
            "VM.get_record",
            "1",
            "0"
        ]
    );
    let handle = session
        .call("VM.get_record", &[Value::string("OpaqueRef:nope")])
        .await
        .unwrap_err();
    assert_eq!(
        handle.failure().unwrap().description(),
        vec!["HANDLE_INVALID", "VM", "OpaqueRef:nope"]
    );
    let types = session
        .call(
            "VM.start",
            &[Value::string("OpaqueRef:x"), Value::Int(1), Value::Int(2)],
        )
        .await
        .unwrap_err();
    assert!(
        types.is(&ErrorCode::HandleInvalid) || types.is(&ErrorCode::InternalError),
        "{types}"
    );
    let t = transport(&sim);
    let stale = t
        .call(
            &address,
            "VM.frobnicate",
            &[Value::string("OpaqueRef:stale")],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        stale.is(&ErrorCode::SessionInvalid),
        "the session is checked before the method: {stale}"
    );
    assert!(sim.with_model(|m, _| m.hosts[0].answers()), "still serving");
}

/// §2.1: a wrong password answers SESSION_AUTHENTICATION_FAILED after a delay.
#[tokio::test]
async fn failed_login_is_delayed() {
    let sim = start_sim(1, 0).await;
    sim.with_model(|_, _| ());
    let client = reqwest::Client::new();
    client
        .post(format!("{}/clock/scale", control_url(&sim)))
        .json(&json!({"scale": 10.0}))
        .send()
        .await
        .unwrap();
    let t = transport(&sim);
    let started = std::time::Instant::now();
    let params = [Value::string("root"), Value::string("wrong")];
    let err = t
        .call(
            &sim.host_addresses()[0],
            "session.login_with_password",
            &params,
            None,
        )
        .await
        .unwrap_err();
    assert!(err.is(&ErrorCode::SessionAuthenticationFailed));
    assert_eq!(
        err.failure().unwrap().params,
        vec!["root", "Authentication failure"]
    );
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "5 simulated seconds at 10x"
    );
}

/// Realistic timing: `declare_dead` of a powered-off host that still reads live contacts it
/// first (the connect retries) and then runs its hook for each SR; its task stays pending and
/// progresses meanwhile, `task.cancel` does not stop it, and the reset shows only at the end.
#[tokio::test]
async fn declare_dead_of_a_silent_live_host_takes_its_time_and_cannot_be_cancelled() {
    use xenguard::xapi::records::{Task, TaskStatus};
    let sim = start_sim(3, 1).await;
    let session = session_via(&sim, &[0]);
    let reader = PoolReader::new(session.clone());
    control(&sim, "/hosts/host3/power", json!({"state": "off"})).await;
    let host3 = host_ref(&reader, "host3").await;
    assert!(
        live_of(&reader, "host3").await,
        "still live: no heartbeat missed yet"
    );
    let task: String = session
        .call_as(
            "Async.host.declare_dead",
            &[Value::string(host3.as_str())],
            None,
        )
        .await
        .unwrap();
    let record = |session: Arc<Session>, task: String| async move {
        let t: Task = session
            .call_as("task.get_record", &[Value::string(&task)], None)
            .await
            .unwrap();
        t
    };
    assert_eq!(
        record(session.clone(), task.clone()).await.status,
        TaskStatus::Pending
    );
    session
        .call("task.cancel", &[Value::string(&task)])
        .await
        .unwrap();
    // 20 s of connect retries plus 5 s for each of its two SRs.
    sim.advance(15.0);
    let halfway = record(session.clone(), task.clone()).await;
    assert_eq!(halfway.status, TaskStatus::Pending, "cancel is best effort");
    assert!(
        halfway.progress > 0.3 && halfway.progress < 1.0,
        "{}",
        halfway.progress
    );
    assert_eq!(
        guests_on(&reader, &host3).await.len(),
        1,
        "nothing reset yet"
    );
    sim.advance(16.0);
    let done = record(session.clone(), task.clone()).await;
    assert_eq!(done.status, TaskStatus::Success, "{done:?}");
    assert!(guests_on(&reader, &host3).await.is_empty());
}

#[tokio::test]
async fn a_scenario_file_sets_the_timing_and_plays_its_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.yml");
    std::fs::write(
        &path,
        "timing: {forward_connect_timeout: 40}\nsteps:\n  - {at: 5, host: host2, power: off}\n",
    )
    .unwrap();
    let sim = common::start_sim_scenario(2, 1, &path).await;
    let timing: serde_json::Value = reqwest::get(format!("{}/timing", control_url(&sim)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        timing,
        json!({"forward_connect_timeout": 40.0, "declare_dead_hook_per_sr": 5.0})
    );
    assert!(sim.with_model(|m, _| m.hosts[1].power_on));
    sim.advance(6.0);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sim.with_model(|m, _| m.hosts[1].power_on) {
        assert!(std::time::Instant::now() < deadline, "the step never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A dual-PSU chassis: one feed cut keeps it running, both cut take its power (and its guests),
/// a feed restored leaves it off until it is powered on, and it cannot be powered on without one.
#[tokio::test]
async fn power_feeds_of_a_dual_psu_host() {
    let sim = start_sim(2, 1).await;
    let view = |sim: &RunningSim| {
        let url = format!("{}/hosts", control_url(sim));
        async move {
            let hosts: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            let host2 = hosts.as_array().unwrap()[1].clone();
            (
                host2["power"].as_str().unwrap().to_owned(),
                host2["feeds"].clone(),
            )
        }
    };
    assert_eq!(view(&sim).await, ("on".into(), json!([true, true])));
    control(&sim, "/hosts/host2/feeds/1", json!({"on": false})).await;
    assert_eq!(view(&sim).await, ("on".into(), json!([false, true])));
    control(&sim, "/hosts/host2/feeds/2", json!({"on": false})).await;
    assert_eq!(view(&sim).await, ("off".into(), json!([false, false])));
    assert_eq!(truth_double_running(&sim).await, 0);
    control(&sim, "/hosts/host2/power", json!({"state": "on"})).await;
    assert_eq!(view(&sim).await.0, "off", "no feed, no power");
    control(&sim, "/hosts/host2/feeds/2", json!({"on": true})).await;
    assert_eq!(
        view(&sim).await.0,
        "off",
        "a restored feed does not boot it"
    );
    control(&sim, "/hosts/host2/power", json!({"state": "on"})).await;
    assert_eq!(view(&sim).await.0, "on");
    let missing = reqwest::Client::new()
        .post(format!("{}/hosts/host2/feeds/3", control_url(&sim)))
        .json(&json!({"on": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    sim.shutdown();
}
