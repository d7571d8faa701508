//! The XAPI client's session and transport behaviour against scripted XML-RPC peers on real
//! sockets: session reuse, one re-login on SESSION_INVALID, HOST_IS_SLAVE redirects, local
//! sessions, and every way a peer can misbehave (silence, garbage, oversized answers).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use xenguard::xapi::transport::{Scheme, Transport, TransportOptions};
use xenguard::xapi::wire::{self, Value};
use xenguard::xapi::{Credentials, Error, ErrorCode, LocalSession, NoAnswer, Password, Session};

/// What a scripted host answers: (HTTP status, body).
type Script = Arc<dyn Fn(&wire::MethodCall, &Log) -> (StatusCode, String) + Send + Sync>;

/// Every call a scripted host received.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<wire::MethodCall>>>);

impl Log {
    fn count(&self, method: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.method == method)
            .count()
    }
    fn calls(&self) -> Vec<wire::MethodCall> {
        self.0.lock().unwrap().clone()
    }
}

fn ok(v: Value) -> (StatusCode, String) {
    (StatusCode::OK, wire::encode_success(&v))
}

fn fail(code: &str, params: &[&str]) -> (StatusCode, String) {
    let params: Vec<String> = params.iter().map(|s| s.to_string()).collect();
    (StatusCode::OK, wire::encode_failure(code, &params))
}

/// Serves `script` on `ip`, on `port` (0 = any). Returns the bound address and the call log.
async fn serve_on(ip: &str, port: u16, script: Script) -> (SocketAddr, Log) {
    let log = Log::default();
    let listener = tokio::net::TcpListener::bind((ip, port)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler_log = log.clone();
    let app = Router::new().route(
        "/",
        post(move |body: Bytes| {
            let log = handler_log.clone();
            let script = script.clone();
            async move {
                match wire::decode_call(&body) {
                    Ok(call) => {
                        log.0.lock().unwrap().push(call.clone());
                        script(&call, &log)
                    }
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                }
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, log)
}

fn transport(port: u16) -> Transport {
    Transport::new(TransportOptions {
        scheme: Scheme::Http,
        port,
        connect_timeout: Duration::from_millis(500),
        call_timeout: Duration::from_secs(2),
        max_response_bytes: 1024 * 1024,
        ..TransportOptions::default()
    })
    .unwrap()
}

fn credentials() -> Credentials {
    Credentials {
        username: "root".into(),
        password: Password::new("xenguard"),
    }
}

/// A master that accepts root/xenguard, hands out numbered sessions and answers `pool.get_all`
/// only for the current session.
fn master_script(invalidate_first_session: bool) -> Script {
    Arc::new(move |call, log| match call.method.as_str() {
        "session.login_with_password" => {
            if call.params.get(1).and_then(Value::as_str) != Some("xenguard") {
                return fail(
                    "SESSION_AUTHENTICATION_FAILED",
                    &["root", "Authentication failure"],
                );
            }
            ok(Value::string(format!(
                "OpaqueRef:s{}",
                log.count("session.login_with_password")
            )))
        }
        "pool.get_all" => {
            let session = call
                .params
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default();
            let current = format!("OpaqueRef:s{}", log.count("session.login_with_password"));
            if session != current || (invalidate_first_session && session == "OpaqueRef:s1") {
                fail("SESSION_INVALID", &[session])
            } else {
                ok(Value::Array(vec![Value::string("OpaqueRef:pool")]))
            }
        }
        other => fail("MESSAGE_METHOD_UNKNOWN", &[other]),
    })
}

#[tokio::test]
async fn one_session_is_reused_and_carries_the_originator() {
    let (addr, log) = serve_on("127.0.0.1", 0, master_script(false)).await;
    let session = Session::new(
        transport(addr.port()),
        credentials(),
        "xenguard-test",
        vec!["127.0.0.1".into()],
    );
    for _ in 0..3 {
        session.call("pool.get_all", &[]).await.unwrap();
    }
    assert_eq!(log.count("session.login_with_password"), 1);
    let login = &log.calls()[0];
    assert_eq!(login.params.len(), 4, "user, password, version, originator");
    assert_eq!(login.params[3], Value::string("xenguard-test"));
    assert_eq!(session.master_address().await.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn session_invalid_triggers_exactly_one_relogin() {
    let (addr, log) = serve_on("127.0.0.1", 0, master_script(true)).await;
    let session = Session::new(
        transport(addr.port()),
        credentials(),
        "t",
        vec!["127.0.0.1".into()],
    );
    let value = session.call("pool.get_all", &[]).await.unwrap();
    assert_eq!(value, Value::Array(vec![Value::string("OpaqueRef:pool")]));
    assert_eq!(log.count("session.login_with_password"), 2);
    assert_eq!(log.count("pool.get_all"), 2);
}

#[tokio::test]
async fn a_session_that_stays_invalid_fails_after_one_retry() {
    let script: Script = Arc::new(|call, _| match call.method.as_str() {
        "session.login_with_password" => ok(Value::string("OpaqueRef:s")),
        _ => fail("SESSION_INVALID", &["OpaqueRef:s"]),
    });
    let (addr, log) = serve_on("127.0.0.1", 0, script).await;
    let session = Session::new(
        transport(addr.port()),
        credentials(),
        "t",
        vec!["127.0.0.1".into()],
    );
    let err = session.call("pool.get_all", &[]).await.unwrap_err();
    assert!(err.is(&ErrorCode::SessionInvalid), "{err}");
    assert_eq!(log.count("session.login_with_password"), 2);
    assert_eq!(log.count("pool.get_all"), 2);
}

#[tokio::test]
async fn wrong_password_is_reported_and_not_retried_on_other_hosts() {
    let (addr, log) = serve_on("127.0.0.1", 0, master_script(false)).await;
    let creds = Credentials {
        username: "root".into(),
        password: Password::new("wrong"),
    };
    let seeds = vec!["127.0.0.1".into(), "127.0.0.1".into()];
    let session = Session::new(transport(addr.port()), creds, "t", seeds);
    let err = session.call("pool.get_all", &[]).await.unwrap_err();
    assert!(err.is(&ErrorCode::SessionAuthenticationFailed), "{err}");
    assert_eq!(log.count("session.login_with_password"), 1);
    assert!(
        !format!("{:?}", credentials()).contains("xenguard"),
        "password shows in Debug"
    );
}

/// Binds two loopback addresses on one port (the simulator's layout: same port, one address
/// per host).
async fn pair(slave: Script, master: Script) -> (u16, Log, Log) {
    loop {
        let (addr, slave_log) = serve_on("127.0.0.31", 0, slave.clone()).await;
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.32", addr.port())) {
            drop(listener);
            let (_, master_log) = serve_on("127.0.0.32", addr.port(), master.clone()).await;
            return (addr.port(), slave_log, master_log);
        }
    }
}

#[tokio::test]
async fn host_is_slave_is_followed_to_the_master() {
    let slave: Script = Arc::new(|_, _| fail("HOST_IS_SLAVE", &["127.0.0.32"]));
    let (port, slave_log, master_log) = pair(slave, master_script(false)).await;
    let session = Session::new(
        transport(port),
        credentials(),
        "t",
        vec!["127.0.0.31".into()],
    );
    session.call("pool.get_all", &[]).await.unwrap();
    assert_eq!(
        session.master_address().await.as_deref(),
        Some("127.0.0.32")
    );
    assert_eq!(slave_log.count("session.login_with_password"), 1);
    assert_eq!(master_log.count("pool.get_all"), 1);
}

#[tokio::test]
async fn a_redirect_loop_is_an_error_not_a_hang() {
    let to_32: Script = Arc::new(|_, _| fail("HOST_IS_SLAVE", &["127.0.0.32"]));
    let to_31: Script = Arc::new(|_, _| fail("HOST_IS_SLAVE", &["127.0.0.31"]));
    let (port, _, _) = pair(to_32, to_31).await;
    let session = Session::new(
        transport(port),
        credentials(),
        "t",
        vec!["127.0.0.31".into()],
    );
    let err = session.login().await.unwrap_err();
    assert!(matches!(err, Error::RedirectLoop(_)), "{err}");
}

#[tokio::test]
async fn a_dead_seed_is_skipped_for_a_live_one() {
    let (addr, _) = serve_on("127.0.0.1", 0, master_script(false)).await;
    // 127.0.0.33 has nothing listening on the port: connection refused.
    let seeds = vec!["127.0.0.33".into(), "127.0.0.1".into()];
    let session = Session::new(transport(addr.port()), credentials(), "t", seeds);
    assert_eq!(session.login().await.unwrap(), "127.0.0.1");
}

#[tokio::test]
async fn local_session_answers_emergency_mode_and_logs_out() {
    let script: Script = Arc::new(|call, _| match call.method.as_str() {
        "session.slave_local_login_with_password" => ok(Value::string("OpaqueRef:local")),
        "host.is_in_emergency_mode" => ok(Value::Bool(true)),
        "session.local_logout" => ok(Value::string("")),
        other => fail("MESSAGE_METHOD_UNKNOWN", &[other]),
    });
    let (addr, log) = serve_on("127.0.0.1", 0, script).await;
    let t = transport(addr.port());
    let local = LocalSession::login(&t, "127.0.0.1", &credentials(), None)
        .await
        .unwrap();
    assert!(local.is_in_emergency_mode(None).await.unwrap());
    local.logout(None).await;
    let calls = log.calls();
    assert_eq!(
        calls[0].params.len(),
        2,
        "slave_local_login takes user and password only"
    );
    assert_eq!(calls[1].params, vec![Value::string("OpaqueRef:local")]);
    assert_eq!(log.count("session.local_logout"), 1);
}

#[tokio::test]
async fn a_host_that_never_answers_times_out() {
    // Accepts connections and reads nothing: a wedged xapi behind a live TCP stack.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let t = transport(port);
    let started = std::time::Instant::now();
    let err = t
        .call(
            "127.0.0.1",
            "pool.get_all",
            &[],
            Some(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!err.host_answered());
    assert_eq!(err.no_answer(), Some(NoAnswer::Silent));
}

#[tokio::test]
async fn oversized_malformed_and_http_error_answers_are_typed_errors() {
    let script: Script = Arc::new(|call, _| {
        match call.method.as_str() {
        "big" => ok(Value::string("x".repeat(2 * 1024 * 1024))),
        "garbage" => (StatusCode::OK, "<methodResponse><params>".into()),
        "html" => (StatusCode::INTERNAL_SERVER_ERROR, "<html>Parse_error</html>".into()),
        "fault" => (
            StatusCode::OK,
            "<?xml version=\"1.0\"?><methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4</int></value></member><member><name>faultString</name><value><string>Too many parameters.</string></value></member></struct></value></fault></methodResponse>".into(),
        ),
        _ => fail("MESSAGE_METHOD_UNKNOWN", &[&call.method]),
    }
    });
    let (addr, _) = serve_on("127.0.0.1", 0, script).await;
    let t = transport(addr.port());
    let call = |m: &'static str| t.call("127.0.0.1", m, &[], None);
    assert!(matches!(
        call("big").await,
        Err(Error::TooLarge {
            limit: 1_048_576,
            ..
        })
    ));
    assert!(matches!(call("garbage").await, Err(Error::Decode { .. })));
    assert!(matches!(
        call("html").await,
        Err(Error::HttpStatus { status: 500, .. })
    ));
    assert!(matches!(
        call("fault").await,
        Err(Error::Fault { code: 4, .. })
    ));
    // Something answered, but not as a verifiable xapi: never evidence of a dead host.
    for method in ["big", "garbage", "html", "fault"] {
        let err = call(method).await.unwrap_err();
        assert_eq!(
            err.no_answer(),
            Some(NoAnswer::Unverifiable),
            "{method}: {err}"
        );
    }
    let err = call("nope").await.unwrap_err();
    assert_eq!(err.no_answer(), None, "an API failure is an answer");
    let err = call("nope").await.unwrap_err();
    assert!(err.is(&ErrorCode::MessageMethodUnknown) && err.host_answered());
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = transport(port)
        .call("127.0.0.1", "pool.get_all", &[], None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { refused: true, .. }), "{err}");
    assert_eq!(
        err.no_answer(),
        Some(NoAnswer::Refused),
        "host up, nothing listening"
    );
}

/// A peer that accepts the connection (stunnel in front of a dead xapi) and closes it with no
/// HTTP answer is a host that is up with its xapi down, not one that answers.
#[tokio::test]
async fn a_connection_closed_without_an_answer_is_a_refusal() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let err = transport(port)
        .call("127.0.0.1", "pool.get_all", &[], None)
        .await
        .unwrap_err();
    assert_eq!(err.no_answer(), Some(NoAnswer::Refused), "{err}");
}

/// With the master dead, every slave redirects to it: one login attempt waits for the dead
/// master once, not once per slave.
#[tokio::test]
async fn a_dead_master_costs_one_timeout_per_login_not_one_per_slave() {
    let redirect: Script = Arc::new(|_, _| fail("HOST_IS_SLAVE", &["127.0.0.43"]));
    let (addr, _) = serve_on("127.0.0.41", 0, redirect.clone()).await;
    let port = addr.port();
    let _second = serve_on("127.0.0.42", port, redirect).await;
    let dead = tokio::net::TcpListener::bind(("127.0.0.43", port))
        .await
        .unwrap();
    let accepted = Arc::new(Mutex::new(0usize));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = dead.accept().await {
            *counter.lock().unwrap() += 1;
            held.push(socket);
        }
    });
    let t = Transport::new(TransportOptions {
        scheme: Scheme::Http,
        port,
        connect_timeout: Duration::from_millis(500),
        call_timeout: Duration::from_millis(400),
        ..TransportOptions::default()
    })
    .unwrap();
    let seeds = vec!["127.0.0.41".into(), "127.0.0.42".into()];
    let session = Session::new(t, credentials(), "t", seeds);
    let started = std::time::Instant::now();
    let err = session.login().await.unwrap_err();
    assert!(!err.host_answered(), "{err}");
    assert_eq!(
        *accepted.lock().unwrap(),
        1,
        "the dead master was tried once"
    );
    assert!(started.elapsed() < Duration::from_millis(700));
}

/// A probe costs a master two calls, a login and a logout: the accepted pool login already
/// shows it is not in emergency mode, since xapi refuses that login then (xapi-notes.md §3.3).
/// A slave's redirect can hide emergency mode, so it is asked over a local session (four
/// calls). A slave restarted without its master is in emergency mode and says so.
#[tokio::test]
async fn a_probe_asks_only_hosts_that_refused_the_login_about_emergency_mode() {
    use xenguard::xapi::probe::{Role, probe};
    let sim = crate::common::start_sim(2, 1).await;
    let t = crate::common::transport(&sim);
    let addresses = sim.host_addresses();
    let served = |i: usize| {
        let url = format!("{}/hosts", crate::common::control_url(&sim));
        async move {
            let hosts: serde_json::Value = reqwest::get(url).await.unwrap().json().await.unwrap();
            hosts[i]["calls_served"].as_u64().unwrap()
        }
    };
    let credentials = crate::common::credentials();
    let timeout = Duration::from_secs(2);
    for (i, role, calls) in [
        (0, Role::Master, 2),
        (1, Role::Slave(addresses[0].clone()), 4),
    ] {
        let before = served(i).await;
        let answer = probe(&t, &addresses[i], &credentials, "test", timeout).await;
        assert_eq!((answer.role, answer.emergency), (role, Some(false)));
        assert_eq!(served(i).await - before, calls, "calls to host {i}");
    }
    // The master dies and the slave's xapi restarts: emergency mode, found by asking.
    crate::common::control(
        &sim,
        "hosts/host1/power",
        serde_json::json!({"state": "off"}),
    )
    .await;
    for running in [false, true] {
        let body = serde_json::json!({ "running": running });
        crate::common::control(&sim, "hosts/host2/xapi", body).await;
    }
    let answer = probe(&t, &addresses[1], &credentials, "test", timeout).await;
    assert!(
        matches!(answer.role, Role::Emergency(_)),
        "{:?}",
        answer.role
    );
    assert_eq!(answer.emergency, Some(true));
}
