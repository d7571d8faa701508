//! Two receivers, one pool: the lease in `pool.other_config` that the master arbitrates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use xenguard::remediation::Receiver;
use xenguard::remediation::journal::Remediation;
use xenguard::remediation::lease::{self, KEY, Lease, LeaseError};
use xenguard::remediation::unix_now;
use xenguard::xapi::records::{Host, PowerState, Vm};
use xenguard::xapi::{PoolActuator, PoolReader, Session};

use super::{Pool, Setup, common, post_to, serve};

/// A second receiver on the same pool with its own journal (a StatefulSet scaled to two).
struct Peer {
    receiver: Arc<Receiver>,
    address: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.receiver.shutdown();
        self.server.abort();
    }
}

impl Peer {
    async fn start(p: &Pool) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = p.config.clone();
        config.receiver.journal_path = dir.path().join("journal.db");
        let receiver = Receiver::start(&config).unwrap();
        let (address, server) = serve(&receiver).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !receiver.hosts_known("sim") {
            assert!(Instant::now() < deadline, "the peer never read the pool");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Peer {
            receiver,
            address,
            server,
            _dir: dir,
        }
    }

    async fn settled(&self) -> Remediation {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let list = self.receiver.journal().list(5).unwrap();
            if let Some(r) = list.first()
                && ["done", "failed", "blocked", "aborted", "held"].contains(&r.phase.as_str())
            {
                return r.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the peer never settled: {list:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn pool_session(p: &Pool) -> (PoolReader, PoolActuator) {
    let session: Arc<Session> = Arc::new(common::session(&p.sim));
    (PoolReader::new(session.clone()), PoolActuator::new(session))
}

/// The lease the pool holds now, if any.
async fn lease_in_pool(p: &Pool) -> Option<String> {
    let (reader, _) = pool_session(p);
    reader
        .pool()
        .await
        .unwrap()
        .1
        .other_config
        .get(KEY)
        .cloned()
}

/// Writes a lease as another receiver would.
async fn write_lease(p: &Pool, owner: &str, expires: f64) {
    let (reader, actuator) = pool_session(p);
    let (pool, _) = reader.pool().await.unwrap();
    actuator
        .remove_from_pool_other_config(&pool, KEY)
        .await
        .unwrap();
    let value = json!({"owner": owner, "remediation": 1, "host": "elsewhere", "expires": expires});
    actuator
        .add_to_pool_other_config(&pool, KEY, &value.to_string())
        .await
        .unwrap();
}

fn set_count(p: &Pool, host: &str) -> usize {
    p.bmcs
        .power_log(host)
        .iter()
        .filter(|l| l.starts_with("set"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_many_receivers_taking_the_pool_lease_at_once_exactly_one_gets_it() {
    let sim = common::start_sim(3, 0).await;
    let session = Arc::new(common::session(&sim));
    let (reader, actuator) = (PoolReader::new(session.clone()), PoolActuator::new(session));
    // The simulator keeps a master's map rules: a present key is refused, whatever the value.
    let (pool, _) = reader.pool().await.unwrap();
    actuator
        .add_to_pool_other_config(&pool, "k", "a")
        .await
        .unwrap();
    for value in ["b", "a"] {
        let again = actuator.add_to_pool_other_config(&pool, "k", value).await;
        assert!(
            again
                .as_ref()
                .is_err_and(|e| e.is(&xenguard::xapi::ErrorCode::MapDuplicateKey)),
            "{value}: {again:?}"
        );
    }
    actuator
        .remove_from_pool_other_config(&pool, "absent")
        .await
        .unwrap();

    let now = unix_now();
    let takers = (0..8).map(|i| {
        let session = Arc::new(common::session(&sim));
        async move {
            let mine = Lease {
                owner: format!("receiver-{i}"),
                remediation: i,
                host: "h".into(),
                expires: now + 600.0,
            };
            let (reader, actuator) = (PoolReader::new(session.clone()), PoolActuator::new(session));
            lease::take(&reader, &actuator, &mine, now).await
        }
    });
    let results = futures_join_all(takers).await;
    let winners: Vec<usize> = (0..8).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = format!("receiver-{}", winners[0]);
    for result in &results {
        match result {
            Ok(()) => {}
            Err(LeaseError::Held { lease, .. }) => assert_eq!(lease.owner, winner),
            Err(other) => panic!("{other}"),
        }
    }
    // Only its owner gives a lease back; an expired one is taken over.
    assert!(
        !lease::give_back(&reader, &actuator, "receiver-x")
            .await
            .unwrap()
    );
    let (_, record) = reader.pool().await.unwrap();
    assert!(record.other_config[KEY].contains(&winner));
    let later = now + 3600.0;
    let successor = Lease {
        owner: "successor".into(),
        remediation: 9,
        host: "h".into(),
        expires: later + 600.0,
    };
    lease::take(&reader, &actuator, &successor, later)
        .await
        .unwrap();
    assert!(
        lease::give_back(&reader, &actuator, "successor")
            .await
            .unwrap()
    );
    let (_, record) = reader.pool().await.unwrap();
    assert!(!record.other_config.contains_key(KEY));
}

/// Runs the futures concurrently and returns their outputs in order.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_receivers_on_two_journals_never_both_fence_or_recover() {
    let p = Pool::start(Setup::default()).await;
    let peer = Peer::start(&p).await;
    let host3 = p.uuid("host3");
    let before = p.guests_on("host3");
    // Its cable is pulled: it runs on until a fence powers it off.
    p.control("hosts/host3/network", json!({"connected": false}))
        .await;
    // Alertmanager's two replicas (or one, fanned out) notify both receivers at once.
    let alert = [("XenHostUnreachable", host3.as_str(), "fp-two")];
    tokio::join!(
        post_to(p.address, "firing", &alert),
        post_to(peer.address, "firing", &alert)
    );
    let ours = p
        .wait_for(1, &["done", "blocked", "failed", "aborted"])
        .await;
    let theirs = peer.settled().await;
    let phases = [ours[0]["phase"].as_str().unwrap(), theirs.phase.as_str()];
    assert!(
        phases.contains(&"done") && phases.contains(&"blocked"),
        "{ours:#?} {theirs:#?}"
    );
    let blocked_reason = if theirs.phase == "blocked" {
        theirs.reason.clone()
    } else {
        ours[0]["reason"].as_str().unwrap().to_owned()
    };
    assert!(
        blocked_reason.contains("holds the pool's lease"),
        "{blocked_reason}"
    );
    assert_eq!(set_count(&p, "host3"), 1, "{:?}", p.bmcs.power_log("host3"));
    let fences = [p.receiver.journal(), peer.receiver.journal()]
        .iter()
        .map(|j| j.fences_since("sim", 0.0).unwrap())
        .sum::<u32>();
    assert_eq!(fences, 1, "one fence issued between the two receivers");
    p.assert_run_once_elsewhere(&before, &host3);
    // The winner gave its lease back when it was done.
    assert_eq!(lease_in_pool(&p).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_receivers_lease_blocks_the_fence_until_it_expires() {
    let p = Pool::start(Setup::default()).await;
    let host3 = p.uuid("host3");
    let before = p.guests_on("host3");
    write_lease(&p, "elsewhere/other-journal", unix_now() + 600.0).await;
    p.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-leased")])
        .await;
    super::blocked_with(&p, 1, "holds the pool's lease", "pool_lease_held").await;
    super::assert_nobody_fenced(&p);
    // Its receiver died: once the lease expires, the next alert recovers the host.
    write_lease(&p, "elsewhere/other-journal", unix_now() - 60.0).await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-expired")])
        .await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while !p.remediations().await.iter().any(|r| r["phase"] == "done") {
        assert!(Instant::now() < deadline, "{:#?}", p.remediations().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.assert_run_once_elsewhere(&before, &host3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_taken_by_another_receiver_after_the_fence_holds_the_next_step() {
    // No fence agent: the remediation waits for an attestation between its confirmation
    // (lease taken) and its first recovery step, where the lease is checked again.
    let p = Pool::start(Setup {
        unfenced: &["host3"],
        ..Setup::default()
    })
    .await;
    let host3 = p.uuid("host3");
    let before = p.guests_on("host3");
    p.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-stolen")])
        .await;
    let list = p.wait_for(1, &["awaiting_attestation"]).await;
    let id = list[0]["id"].as_i64().unwrap();
    assert!(
        lease_in_pool(&p)
            .await
            .unwrap()
            .contains(&format!("\"remediation\":{id}"))
    );
    // Another receiver took the lease over (ours expired, say, while nobody attested).
    write_lease(&p, "elsewhere/other-journal", unix_now() + 600.0).await;
    let journal = p.receiver.journal();
    journal
        .add_request(id, "attest", "bob", unix_now())
        .unwrap();
    let list = p.wait_for(1, &["held"]).await;
    let reason = list[0]["reason"].as_str().unwrap();
    assert!(
        reason
            .starts_with("resetting_vms: receiver elsewhere/other-journal holds the pool's lease"),
        "{reason}"
    );
    // Nothing was reset: XAPI still records its guests running on the dead host.
    let (reader, actuator) = pool_session(&p);
    let hosts = reader.all::<Host>().await.unwrap();
    let (host3_ref, _) = hosts.iter().find(|(_, h)| h.uuid == host3).unwrap();
    let vms = reader.all::<Vm>().await.unwrap();
    let still_there = vms
        .iter()
        .filter(|(_, vm)| {
            vm.is_guest() && vm.resident_on == *host3_ref && vm.power_state == PowerState::Running
        })
        .count();
    assert_eq!(still_there, before.len());
    // The other receiver is gone and its lease removed: a person resumes.
    assert!(
        lease::give_back(&reader, &actuator, "elsewhere/other-journal")
            .await
            .unwrap()
    );
    journal
        .add_request(id, "resume", "bob", unix_now())
        .unwrap();
    p.wait_for(1, &["done"]).await;
    p.assert_run_once_elsewhere(&before, &host3);
    assert_eq!(lease_in_pool(&p).await, None);
}
