//! Answers decoded as they arrive: a raw HTTP peer sends a body with chunked transfer encoding
//! (no `Content-Length`, so the transport cannot read it whole and decodes it on the way), in
//! whatever pieces a test chooses. The decoded records must not depend on the pieces; a body
//! over the limit must be cut off while it streams; a peer that stops or stalls mid-body must
//! give an error, never a short answer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xenguard::xapi::Error;
use xenguard::xapi::records::Vm;
use xenguard::xapi::stream::decode_response_into;
use xenguard::xapi::transport::{Scheme, Transport, TransportOptions};
use xenguard::xapi::wire::Value;

/// How the peer sends the body.
#[derive(Clone)]
struct Plan {
    /// Sizes of successive chunks, repeated.
    pieces: Vec<usize>,
    /// Stop sending after this many bytes: `Close` the connection, or `Stall` (keep it open).
    stop_after: Option<(usize, Stop)>,
}

#[derive(Clone, Copy)]
enum Stop {
    Close,
    Stall,
}

/// Serves `body` to every request as `plan` says. Returns the port and the number of body
/// bytes the peer managed to write in all (a client that hangs up stops the count).
async fn serve(body: Arc<Vec<u8>>, plan: Plan) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (body, plan, counter) = (body.clone(), plan.clone(), counter.clone());
            tokio::spawn(async move {
                socket.set_nodelay(true).unwrap();
                read_request(&mut socket).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut at = 0;
                for size in plan.pieces.iter().cycle() {
                    let end = (at + size).min(body.len());
                    if let Some((limit, stop)) = plan.stop_after
                        && end > limit
                    {
                        match stop {
                            Stop::Close => return,
                            Stop::Stall => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                return;
                            }
                        }
                    }
                    let mut chunk = format!("{:x}\r\n", end - at).into_bytes();
                    chunk.extend_from_slice(&body[at..end]);
                    chunk.extend_from_slice(b"\r\n");
                    if socket.write_all(&chunk).await.is_err() {
                        return; // The client hung up.
                    }
                    counter.fetch_add(end - at, Ordering::Relaxed);
                    at = end;
                    if at == body.len() {
                        let _ = socket.write_all(b"0\r\n\r\n").await;
                        return;
                    }
                }
            });
        }
    });
    (port, written)
}

/// Reads the request head and its `Content-Length` body.
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut request = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if request.len() >= head_end + 4 + length {
                return;
            }
        }
    }
}

fn transport(port: u16, limit: usize) -> Transport {
    Transport::new(TransportOptions {
        scheme: Scheme::Http,
        port,
        connect_timeout: Duration::from_millis(500),
        call_timeout: Duration::from_secs(20),
        max_response_bytes: limit,
        ..TransportOptions::default()
    })
    .unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/xapi")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

type Records = BTreeMap<String, Vm>;

/// The VM records of a body decoded whole, in memory.
fn whole(body: &[u8]) -> String {
    let records: Records = decode_response_into(body).unwrap().unwrap();
    format!("{records:?}")
}

async fn streamed(body: &Arc<Vec<u8>>, pieces: Vec<usize>) -> Result<String, Error> {
    let (port, _) = serve(
        body.clone(),
        Plan {
            pieces,
            stop_after: None,
        },
    )
    .await;
    let records: Records = transport(port, 16 << 20)
        .call_as("127.0.0.1", "VM.get_all_records", &[], None)
        .await?;
    Ok(format!("{records:?}"))
}

/// A body of many records, larger than the size the transport reads whole.
fn large_body() -> Vec<u8> {
    let one = String::from_utf8(fixture("vm_get_all_records.xml")).unwrap();
    let records: Records = decode_response_into(one.as_bytes()).unwrap().unwrap();
    let (_, template) = records.into_iter().next().unwrap();
    let mut all = Vec::new();
    for i in 0..400 {
        let mut vm = template.clone();
        vm.uuid = format!("{i:08}-0000-4000-8000-000000000000");
        vm.name_label = format!("guest é&<{i}>");
        all.push((format!("OpaqueRef:{i}"), vm));
    }
    let value = Value::Struct(
        all.into_iter()
            .map(|(r, vm)| (r, xenguard::xapi::typed::to_value(&vm).unwrap()))
            .collect(),
    );
    xenguard::xapi::wire::encode_success(&value).into_bytes()
}

#[tokio::test]
async fn a_body_sent_one_byte_per_chunk_decodes_to_the_same_records() {
    let body = Arc::new(fixture("vm_get_all_records.xml"));
    assert_eq!(streamed(&body, vec![1]).await.unwrap(), whole(&body));
}

#[tokio::test]
async fn random_chunkings_of_a_large_body_decode_to_the_same_records() {
    let body = Arc::new(large_body());
    assert!(body.len() > 256 * 1024, "{} bytes", body.len());
    let expected = whole(&body);
    // SplitMix64, seeded: the same chunkings on every run.
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for round in 0..8 {
        // Chunk sizes from 1 byte to about 100 KiB: characters, tags and values all split.
        let pieces: Vec<usize> = (0..64)
            .map(|_| 1 + (next() % [7, 300, 9_000, 100_000][round % 4]) as usize)
            .collect();
        let got = streamed(&body, pieces.clone()).await.unwrap();
        assert!(got == expected, "round {round} differs, pieces {pieces:?}");
    }
}

#[tokio::test]
async fn an_answer_over_the_limit_is_cut_off_while_it_streams() {
    // 64 MB of small, valid values: only the body limit can stop it.
    let mut body = b"<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name><value>Success</value></member><member><name>Value</name><value><array><data>".to_vec();
    while body.len() < 64_000_000 {
        body.extend_from_slice(b"<value>x</value>");
    }
    body.extend_from_slice(
        b"</data></array></value></member></struct></value></param></params></methodResponse>",
    );
    let body = Arc::new(body);
    let (port, written) = serve(
        body.clone(),
        Plan {
            pieces: vec![64 * 1024],
            stop_after: None,
        },
    )
    .await;
    let err = transport(port, 1 << 20)
        .call("127.0.0.1", "VM.get_all_records", &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                limit: 1_048_576,
                ..
            }
        ),
        "{err}"
    );
    // The client hung up: the peer could not write the rest (socket buffers hold a few MB).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = written.load(Ordering::Relaxed);
    assert!(
        sent < body.len() / 4,
        "the peer wrote {sent} of {} bytes",
        body.len()
    );
}

#[tokio::test]
async fn a_peer_that_stops_or_stalls_mid_body_gives_an_error_not_a_short_answer() {
    let body = Arc::new(large_body());
    for (stop, seconds) in [(Stop::Close, 20), (Stop::Stall, 1)] {
        let (port, _) = serve(
            body.clone(),
            Plan {
                pieces: vec![4096],
                stop_after: Some((body.len() / 2, stop)),
            },
        )
        .await;
        let started = std::time::Instant::now();
        let err = transport(port, 16 << 20)
            .call_as::<Records>(
                "127.0.0.1",
                "VM.get_all_records",
                &[],
                Some(Duration::from_secs(seconds)),
            )
            .await
            .unwrap_err();
        match stop {
            Stop::Close => assert!(
                matches!(err, Error::Transport { .. } | Error::Decode { .. }),
                "{err}"
            ),
            Stop::Stall => {
                assert!(matches!(err, Error::Timeout { .. }), "{err}");
                assert!(started.elapsed() < Duration::from_secs(5));
            }
        }
    }
}
