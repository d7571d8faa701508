//! The simulator's `/rrd_updates` (xapi-notes.md §13): each host serves its own data sources
//! and those of the guests really running on it, in xapi's current JSON, and answers bad
//! requests as xapi does.

use std::time::Duration;

use serde_json::{Value as Json, json};
use xenguard::sim::RunningSim;
use xenguard::xapi::wire::Value;

use crate::common::{self, control, guests_on, host_uuid, start_sim, transport};

async fn login(sim: &RunningSim) -> String {
    let master = &sim.host_addresses()[0];
    let params = ["root", "xenguard", "1.0", "rrd-test"].map(Value::string);
    match transport(sim)
        .call(master, "session.login_with_password", &params, None)
        .await
        .unwrap()
    {
        Value::String(session) => session,
        other => panic!("login answered {other:?}"),
    }
}

/// `GET /rrd_updates?<query>` on host `i`: status and body; `None` if it did not answer in 2 s.
async fn rrd(sim: &RunningSim, i: usize, query: &str) -> Option<(u16, String)> {
    let url = format!(
        "http://{}:{}/rrd_updates?{query}",
        sim.host_addresses()[i],
        sim.port()
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let response = client.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

async fn updates(sim: &RunningSim, i: usize, query: &str) -> Json {
    let (status, body) = rrd(sim, i, query).await.expect("an answer");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// The uuids of the `vm:` columns.
fn vm_columns(answer: &Json) -> Vec<String> {
    let mut vms: Vec<String> = legend(answer)
        .iter()
        .filter_map(|l| l.strip_prefix("AVERAGE:vm:"))
        .filter_map(|l| l.split(':').next())
        .map(str::to_owned)
        .collect();
    vms.sort();
    vms.dedup();
    vms
}

fn legend(answer: &Json) -> Vec<String> {
    answer["meta"]["legend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn each_host_serves_itself_and_the_guests_it_really_runs() {
    let sim = start_sim(3, 4).await;
    let session = login(&sim).await;
    for (i, host) in ["host1", "host2"].iter().enumerate() {
        let answer = updates(
            &sim,
            i,
            &format!("start=-60&host=true&cf=AVERAGE&session_id={session}"),
        )
        .await;
        let uuid = host_uuid(&sim, host);
        let legend = legend(&answer);
        assert!(
            legend.contains(&format!("AVERAGE:host:{uuid}:cpu0")),
            "{legend:?}"
        );
        assert!(legend.contains(&format!("AVERAGE:host:{uuid}:memory_free_kib")));
        assert!(
            legend
                .iter()
                .all(|l| !l.starts_with("AVERAGE:host:") || l.contains(&uuid))
        );
        let mut truth = guests_on(&sim, host);
        truth.sort();
        assert_eq!(vm_columns(&answer), truth, "{host}");
        // xapi's shape: numbers as strings, rows newest first, `end` the newest row.
        let meta = &answer["meta"];
        let rows = answer["data"].as_array().unwrap();
        assert_eq!(meta["step"], json!("5"));
        assert_eq!(meta["rows"], json!(rows.len().to_string()));
        assert_eq!(meta["columns"], json!(legend.len().to_string()));
        assert!(
            (12..=13).contains(&rows.len()),
            "{} rows for 60 s",
            rows.len()
        );
        assert_eq!(rows[0]["t"], meta["end"]);
        let times: Vec<i64> = rows
            .iter()
            .map(|r| r["t"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] - w[1] == 5), "{times:?}");
        for row in rows {
            let values = row["values"].as_array().unwrap();
            assert_eq!(values.len(), legend.len());
            assert!(
                values
                    .iter()
                    .all(|v| v.as_str().unwrap().parse::<f64>().is_ok())
            );
        }
    }
}

#[tokio::test]
async fn a_migrated_guest_moves_its_columns_and_a_rebooted_host_has_no_history() {
    let sim = start_sim(3, 2).await;
    let session = login(&sim).await;
    let query = format!("start=-300&host=true&session_id={session}");
    let before = vm_columns(&updates(&sim, 1, &query).await);
    let pool = std::sync::Arc::new(common::session(&sim));
    let reader = xenguard::xapi::PoolReader::new(pool.clone());
    let hosts = reader.all::<xenguard::xapi::records::Host>().await.unwrap();
    let reference = |name: &str| {
        hosts
            .iter()
            .find(|(_, h)| h.name_label == name)
            .unwrap()
            .0
            .clone()
    };
    let moved = common::migrate_a_guest(&pool, &reference("host1"), &reference("host2")).await;
    assert!(!vm_columns(&updates(&sim, 0, &query).await).contains(&moved.uuid));
    let after = vm_columns(&updates(&sim, 1, &query).await);
    assert!(
        !before.contains(&moved.uuid) && after.contains(&moved.uuid),
        "{after:?}"
    );

    // host3 reboots; half a minute later its archive holds numbers since the boot only.
    control(&sim, "hosts/host3/power", json!({"state": "off"})).await;
    control(&sim, "hosts/host3/power", json!({"state": "on"})).await;
    control(&sim, "clock/advance", json!({"seconds": 30})).await;
    let session = login(&sim).await;
    let answer = updates(
        &sim,
        2,
        &format!("start=-300&host=true&session_id={session}"),
    )
    .await;
    let first_column: Vec<&str> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["values"][0].as_str().unwrap())
        .collect();
    let numbers = first_column.iter().take_while(|v| **v != "NaN").count();
    assert!((5..=7).contains(&numbers), "{first_column:?}");
    assert!(
        first_column[numbers..].iter().all(|v| *v == "NaN"),
        "{first_column:?}"
    );
}

#[tokio::test]
async fn bad_requests_get_the_answers_xapi_gives() {
    let sim = start_sim(2, 1).await;
    let session = login(&sim).await;
    let status = |r: Option<(u16, String)>| r.expect("an answer").0;
    assert_eq!(
        status(rrd(&sim, 0, &format!("host=true&session_id={session}")).await),
        400
    );
    assert_eq!(
        status(rrd(&sim, 0, "start=-60&host=true&session_id=OpaqueRef:nope").await),
        401
    );
    assert_eq!(
        status(
            rrd(
                &sim,
                0,
                &format!("start=soon&host=true&session_id={session}")
            )
            .await
        ),
        500
    );
    assert_eq!(
        status(
            rrd(
                &sim,
                0,
                &format!("start=-60&host=true&cf=LAST&session_id={session}")
            )
            .await
        ),
        500
    );
    // Nothing selected: no host columns asked for, and no guests on the host.
    let empty = start_sim(1, 0).await;
    let other = login(&empty).await;
    assert_eq!(
        status(rrd(&empty, 0, &format!("start=-60&session_id={other}")).await),
        500
    );
    assert_eq!(
        status(
            rrd(
                &empty,
                0,
                &format!("start=-60&host=true&session_id={other}")
            )
            .await
        ),
        200
    );
    // A start in the future: no rows, `start` past `end`, still valid JSON.
    let future = updates(
        &sim,
        0,
        &format!("start=99999999999&host=true&session_id={session}"),
    )
    .await;
    assert_eq!(future["meta"]["rows"], json!("0"));
    assert_eq!(future["data"], json!([]));
    // A slave checks the session against its master's database.
    let (code, _) = rrd(
        &sim,
        1,
        &format!("start=-10&host=true&session_id={session}"),
    )
    .await
    .unwrap();
    assert_eq!(code, 200);
    // A powered-off host answers nothing at all.
    control(&sim, "hosts/host2/power", json!({"state": "off"})).await;
    assert!(
        rrd(
            &sim,
            1,
            &format!("start=-10&host=true&session_id={session}")
        )
        .await
        .is_none()
    );
}

/// xcp-rrdd answers one request per connection and closes it: a client that reuses the
/// connection for a second request gets nothing on it.
#[tokio::test]
async fn the_connection_closes_after_one_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = start_sim(1, 1).await;
    let session = login(&sim).await;
    let mut socket = tokio::net::TcpStream::connect((sim.host_addresses()[0].as_str(), sim.port()))
        .await
        .unwrap();
    let request = format!(
        "GET /rrd_updates?start=-10&host=true&session_id={session} HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection stayed open after the answer");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"legend\""), "{text}");
}
