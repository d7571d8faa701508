//! The BMC harness (tests/common/bmc.rs): a real `ipmi_sim` per simulated host whose power is
//! the simulator's, driven by the real `fence_ipmilan`.

use crate::common;

use std::time::Duration;

use serde_json::{Value, json};
use xenguard::remediation::fence::{
    FenceAgent, FenceError, Level, Power, fence_by_levels, levels_read_off,
};
use xenguard::sim::RunningSim;

use common::bmc::Bmcs;
use common::{control_url, start_sim};

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(sim: &RunningSim, path: &str) -> Value {
    http()
        .get(format!("{}{path}", control_url(sim)))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `power` of a host in `GET /hosts`.
async fn sim_power(sim: &RunningSim, host: &str) -> String {
    let hosts = get(sim, "/hosts").await;
    let found = hosts.as_array().unwrap().iter().find(|h| h["name"] == host);
    found.unwrap()["power"].as_str().unwrap().to_owned()
}

/// Names of the guests whose domain runs on `host` according to `GET /truth`.
async fn running_on(sim: &RunningSim, host: &str) -> Vec<String> {
    let hosts = get(sim, "/hosts").await;
    let uuid = hosts.as_array().unwrap().iter().find(|h| h["name"] == host);
    let uuid = uuid.unwrap()["uuid"].clone();
    let truth = get(sim, "/truth").await;
    let vms = truth["vms"].as_array().unwrap().iter();
    vms.filter(|vm| vm["running_on"].as_array().unwrap().contains(&uuid))
        .map(|vm| vm["name"].as_str().unwrap().to_owned())
        .collect()
}

fn set_lines(log: &[String]) -> Vec<&String> {
    log.iter().filter(|line| line.starts_with("set ")).collect()
}

#[tokio::test]
async fn status_reads_on_for_every_powered_host() {
    let sim = start_sim(3, 2).await;
    let bmcs = Bmcs::start(&sim);
    let mut ports: Vec<u16> = ["host1", "host2", "host3"]
        .iter()
        .map(|h| bmcs.port(h))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "one port per BMC");
    for host in ["host1", "host2", "host3"] {
        assert!(bmcs.power_log(host).is_empty(), "readiness runs no hook");
        let (power, run) = bmcs.agent(host).status().await.unwrap();
        assert_eq!((power, run.exit_code), (Power::On, Some(0)), "{run:?}");
        let log = bmcs.power_log(host);
        assert!(log.contains(&"get power".to_string()), "{log:?}");
        assert!(
            set_lines(&log).is_empty(),
            "status changed nothing: {log:?}"
        );
        assert_eq!(bmcs.power_offs(host), 0);
    }
    sim.shutdown();
}

#[tokio::test]
async fn status_reads_a_power_off_made_in_the_simulator() {
    let sim = start_sim(3, 2).await;
    let bmcs = Bmcs::start(&sim);
    let response = http()
        .post(format!("{}/hosts/host2/power", control_url(&sim)))
        .json(&json!({"state": "off"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    let (power, run) = bmcs.agent("host2").status().await.unwrap();
    assert_eq!((power, run.exit_code), (Power::Off, Some(2)), "{run:?}");
    let (power, _) = bmcs.agent("host1").status().await.unwrap();
    assert_eq!(power, Power::On, "the other hosts keep their power");
    assert!(set_lines(&bmcs.power_log("host2")).is_empty());
    sim.shutdown();
}

#[tokio::test]
async fn fencing_through_the_bmc_powers_the_simulated_host_off() {
    let sim = start_sim(3, 2).await;
    let bmcs = Bmcs::start(&sim);
    assert!(
        !running_on(&sim, "host3").await.is_empty(),
        "guests on host3"
    );
    let evidence = bmcs
        .agent("host3")
        .power_off_confirmed(5, Duration::from_millis(500))
        .await
        .unwrap();
    eprintln!(
        "fence_ipmilan runs: {:?}\nhost3 power log: {:?}",
        evidence
            .iter()
            .map(|run| (run.action.as_str(), run.exit_code, run.seconds))
            .collect::<Vec<_>>(),
        bmcs.power_log("host3")
    );
    assert_eq!(
        (evidence[0].action.as_str(), evidence[0].exit_code),
        ("off", Some(0)),
        "{evidence:?}"
    );
    assert_eq!(evidence.last().unwrap().exit_code, Some(2), "{evidence:?}");
    assert_eq!(sim_power(&sim, "host3").await, "off");
    assert_eq!(running_on(&sim, "host3").await, Vec::<String>::new());
    assert_eq!(bmcs.power_offs("host3"), 1, "{:?}", bmcs.power_log("host3"));
    assert!(
        !bmcs.power_log("host3").contains(&"set power 1".to_string()),
        "never powered back on"
    );
    for host in ["host1", "host2"] {
        assert_eq!(sim_power(&sim, host).await, "on");
        assert_eq!(bmcs.power_offs(host), 0);
    }
    sim.shutdown();
}

#[tokio::test]
async fn a_stopped_bmc_makes_the_status_read_fail() {
    let sim = start_sim(3, 2).await;
    let mut bmcs = Bmcs::start(&sim);
    bmcs.stop("host1");
    // The harness sets `power_timeout=4`: fence_ipmilan gives up on an unreachable BMC after
    // that many seconds (20 by default).
    let agent = bmcs.agent("host1");
    let err = agent.status().await.unwrap_err();
    assert!(
        matches!(err, FenceError::Failed { code: Some(1), .. }),
        "{err}"
    );
    assert!(bmcs.power_log("host1").is_empty(), "no hook ran");
    assert_eq!(
        sim_power(&sim, "host1").await,
        "on",
        "the host is untouched"
    );
    let (power, _) = bmcs.agent("host2").status().await.unwrap();
    assert_eq!(power, Power::On, "the other BMCs still answer");
    sim.shutdown();
}

#[tokio::test]
async fn without_the_control_api_the_bmc_reports_an_error_not_a_power_state() {
    let sim = start_sim(2, 1).await;
    let bmcs = Bmcs::start(&sim);
    sim.shutdown();
    let err = bmcs.agent("host1").status().await.unwrap_err();
    assert!(
        matches!(err, FenceError::Failed { code: Some(1), .. }),
        "{err}"
    );
    let log = bmcs.power_log("host1");
    assert!(
        log.last().unwrap().starts_with("get power FAILED: "),
        "{log:?}"
    );
}

#[tokio::test]
async fn the_fencing_section_parses_and_drives_the_bmcs() {
    let sim = start_sim(3, 2).await;
    let bmcs = Bmcs::start(&sim);
    let pool_password = common::password_file();
    let yaml = format!(
        "pools:\n  - name: sim\n    hosts: [{}]\n    scheme: http\n    port: {}\n    password_file: {}\n{}",
        common::hosts_yaml(&sim),
        sim.port(),
        pool_password.path().display(),
        bmcs.fencing_yaml("sim")
    );
    let config = xenguard::config::parse(&yaml, "test.yml").unwrap_or_else(|e| panic!("{e}"));
    let fencing = &config.fencing;
    assert_eq!(fencing.agent_timeout, Duration::from_secs(30));
    assert_eq!(fencing.hosts.len(), 3);
    for host in ["host1", "host2", "host3"] {
        let entry = fencing
            .for_host("sim", &common::host_uuid(&sim, host))
            .unwrap();
        assert_eq!(entry.levels.len(), 1);
        let entry = &entry.levels[0].agents[0];
        assert_eq!(entry.args, bmcs.args(host));
        assert_eq!(entry.args["ipport"], bmcs.port(host).to_string());
        let password = entry.password().unwrap().unwrap();
        assert_eq!(password.expose(), common::bmc::BMC_PASSWORD);
        let agent = FenceAgent {
            program: entry.agent.clone(),
            args: entry.args.clone(),
            password: Some(password.expose().to_owned()),
            timeout: fencing.agent_timeout,
        };
        let (power, run) = agent.status().await.unwrap();
        assert_eq!(power, Power::On, "{run:?}");
    }
    sim.shutdown();
}

fn outlet(bmcs: &Bmcs, host: &str, feed: u8) -> FenceAgent {
    FenceAgent {
        args: bmcs.outlet_args(host, feed),
        ..bmcs.agent(host)
    }
}

/// Level 1 the host's BMC, level 2 its two PDU outlets.
fn two_levels(bmcs: &Bmcs, host: &str) -> Vec<Level> {
    vec![
        Level {
            agents: vec![bmcs.agent(host)],
        },
        Level {
            agents: vec![outlet(bmcs, host, 1), outlet(bmcs, host, 2)],
        },
    ]
}

/// The chassis loses power and its BMC with it: level 1 fails (no answer), level 2 switches
/// both outlets off and reads them back off, so the host counts as fenced, at level 2.
#[tokio::test]
async fn a_dead_bmc_falls_through_to_the_outlets() {
    let sim = start_sim(3, 2).await;
    let mut bmcs = Bmcs::start(&sim);
    bmcs.add_outlets("host3");
    bmcs.stop("host3");
    let (fenced_at, tried) =
        fence_by_levels(&two_levels(&bmcs, "host3"), 5, Duration::from_millis(500)).await;
    eprintln!("{}", serde_json::to_string_pretty(&tried).unwrap());
    assert_eq!(fenced_at, Some(2));
    assert_eq!((tried[0].off, tried[1].off), (false, true));
    assert!(tried[0].agents[0].error.is_some());
    assert_eq!(sim_power(&sim, "host3").await, "off");
    assert!(running_on(&sim, "host3").await.is_empty());
    for feed in [1, 2] {
        let log = bmcs.outlet_log("host3", feed);
        assert_eq!(set_lines(&log), ["set power 0"], "outlet {feed}: {log:?}");
    }
    let (read, _) = levels_read_off(&two_levels(&bmcs, "host3")).await;
    assert_eq!(read, Ok(Some(2)), "a resumed fence reads the outlets off");
    sim.shutdown();
}

/// One outlet of two does not answer: the level fails even though the other outlet switched
/// off, the host keeps its power on the remaining feed, and no level counts.
#[tokio::test]
async fn one_outlet_of_two_failing_fails_the_level() {
    let sim = start_sim(3, 2).await;
    let mut bmcs = Bmcs::start(&sim);
    bmcs.add_outlets("host3");
    bmcs.stop("host3");
    bmcs.stop_outlet("host3", 2);
    let before = running_on(&sim, "host3").await;
    let levels = two_levels(&bmcs, "host3");
    let (fenced_at, tried) = fence_by_levels(&levels, 3, Duration::from_millis(300)).await;
    assert_eq!(fenced_at, None, "{tried:#?}");
    assert!(tried.iter().all(|level| !level.off));
    assert_eq!(tried[1].agents.len(), 2);
    assert!(tried[1].agents[1].error.is_some());
    assert_eq!(
        sim_power(&sim, "host3").await,
        "on",
        "fed by the other outlet"
    );
    assert_eq!(running_on(&sim, "host3").await, before);
    let (read, seen) = levels_read_off(&levels).await;
    assert_eq!(read, Ok(None), "{seen:#?}");
    sim.shutdown();
}
