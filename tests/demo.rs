//! The README's first command works: `xenguard demo` serves a simulated pool, the exporter's
//! metrics and the receiver on the documented ports, and stops on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_serves_the_pool_and_its_metrics() {
    let child = Command::new(env!("CARGO_BIN_EXE_xenguard"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xenguard demo starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        if let Ok(body) = http_get("127.0.0.1:9878", "/metrics")
            && body.contains("xen_pool_up{pool=\"demo\"} 1")
            && body.matches("xen_host_reachable{").count() == 3
        {
            metrics = body;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let truth = http_get("127.0.0.1:9880", "/truth").unwrap_or_default();
    let remediations = http_get("127.0.0.1:9879", "/remediations").unwrap_or_default();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        metrics.contains("xen_pool_masters{pool=\"demo\"} 1"),
        "no healthy metrics; demo printed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(truth.contains("\"double_running_vms\":0"), "{truth}");
    assert!(
        remediations.starts_with("HTTP/1.0 200") && remediations.ends_with("[]"),
        "the receiver answers with an empty journal: {remediations}"
    );
    assert!(
        stdout.contains("http://127.0.0.1:9878/metrics") && stdout.contains("Ctrl-C stops it"),
        "{stdout}"
    );
    assert!(
        output.status.success(),
        "demo exits cleanly on SIGTERM: {:?}",
        output.status
    );
}

/// A minimal HTTP/1.0 GET, so the test needs no client runtime.
fn http_get(address: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}
