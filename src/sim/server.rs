//! The network face of each simulated host: an XML-RPC endpoint on the host's own loopback
//! address, whose socket behaves as the physical host would. A host with xapi stopped
//! refuses connections; a powered-off host or a pulled cable accepts nothing that ever answers
//! (connections hang, as with no route); in-flight calls die with the xapi process.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::xapi::wire::{self, Value};

use super::Clock;
use super::certs::HostCert;
use super::methods::Outcome;
use super::model::{Fault, Model};
use super::rrd::RrdAnswer;

/// Largest request body xapi reads (`http_limit_max_rpc_size`, xapi-notes.md §1.1).
pub const MAX_REQUEST_BYTES: usize = 300 * 1024;

/// State shared by every endpoint, the control API and the ticker.
#[derive(Debug)]
pub struct Shared {
    /// The pool.
    pub model: Mutex<Model>,
    /// The simulated clock.
    pub clock: Mutex<Clock>,
    /// Bumped after every change, so blocked calls re-evaluate.
    pub changed: watch::Sender<u64>,
    /// Port every host listens on.
    pub port: u16,
    /// The hosts' listeners.
    pub sockets: tokio::sync::Mutex<Sockets>,
    /// With `--tls`: each host's certificate (a new one is used from the next connection).
    pub certs: Option<Mutex<Vec<HostCert>>>,
    /// What each host's endpoint has answered, by host index (control API `GET /hosts`).
    pub traffic: Vec<Traffic>,
}

/// XML-RPC answers one host has sent: what a client costs that host.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Calls answered (failures included).
    pub calls: AtomicU64,
    /// Bytes of answer bodies sent.
    pub bytes: AtomicU64,
}

impl Traffic {
    fn count(&self, reply: &Reply) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(reply.body().size_hint().lower(), Ordering::Relaxed);
    }
}

impl Shared {
    /// Runs `f` on the model brought up to the current simulated time, then wakes waiters.
    pub fn with_model<T>(&self, f: impl FnOnce(&mut Model, f64) -> T) -> T {
        let now = self.now();
        let result = {
            let mut model = self.model.lock().unwrap_or_else(|e| e.into_inner());
            model.tick(now);
            f(&mut model, now)
        };
        self.changed.send_modify(|g| *g += 1);
        result
    }

    /// Simulated seconds now.
    pub fn now(&self) -> f64 {
        self.clock.lock().unwrap_or_else(|e| e.into_inner()).now()
    }

    /// Brings every host's socket in line with the model (listening, refusing or black-holing)
    /// before returning, so a control request's effect is visible on the wire when it answers.
    pub async fn settle(self: &Arc<Self>) -> std::io::Result<()> {
        let now = self.now();
        self.model
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .tick(now);
        self.sockets.lock().await.reconcile(self).await
    }

    /// Host `i`'s current certificate, with `--tls`.
    pub fn cert(&self, i: usize) -> Option<HostCert> {
        let certs = self.certs.as_ref()?;
        certs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(i)
            .cloned()
    }

    /// The scheme of every host's XAPI URL.
    pub fn scheme(&self) -> &'static str {
        if self.certs.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Real duration of simulated seconds.
    pub fn real(&self, seconds: f64) -> Duration {
        self.clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .real(seconds)
    }
}

/// What a host's socket does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SocketMode {
    /// xapi answers.
    Serve,
    /// Connections are accepted and never answered (powered off).
    BlackHole,
    /// Nothing listens: connection refused (host up, xapi stopped).
    Closed,
}

/// Keeps each host's socket in the mode its physical state implies.
#[derive(Debug, Default)]
pub struct Sockets {
    running: HashMap<usize, (SocketMode, JoinHandle<()>)>,
    /// A listener bound before the first reconcile (the port was chosen by binding it), used
    /// for that host's first socket.
    bound: Option<(usize, TcpListener)>,
}

impl Sockets {
    /// Sockets whose host `i` starts on `listener`, already bound.
    pub fn with_listener(i: usize, listener: TcpListener) -> Sockets {
        Sockets {
            running: HashMap::new(),
            bound: Some((i, listener)),
        }
    }

    /// Host `i`'s listener: the one bound beforehand, or a new one.
    async fn listener(&mut self, i: usize, addr: SocketAddr) -> std::io::Result<TcpListener> {
        match self.bound.take() {
            Some((host, listener)) if host == i => Ok(listener),
            other => {
                self.bound = other;
                bind(addr).await
            }
        }
    }

    /// Starts, stops or swaps listeners to match the model.
    pub async fn reconcile(&mut self, shared: &Arc<Shared>) -> std::io::Result<()> {
        let wanted: Vec<(usize, String, SocketMode)> = {
            let model = shared.model.lock().unwrap_or_else(|e| e.into_inner());
            model
                .hosts
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let mode = match (h.power_on && !h.outside_cut, h.xapi_running) {
                        (false, _) => SocketMode::BlackHole,
                        (true, false) => SocketMode::Closed,
                        (true, true) => SocketMode::Serve,
                    };
                    (i, h.address.clone(), mode)
                })
                .collect()
        };
        for (i, address, mode) in wanted {
            if self.running.get(&i).is_some_and(|(m, _)| *m == mode) {
                continue;
            }
            if let Some((_, task)) = self.running.remove(&i) {
                task.abort();
                let _ = task.await;
            }
            let addr: SocketAddr = format!("{address}:{}", shared.port).parse().map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{address}: {e}"))
            })?;
            let task = match mode {
                // On 443 stunnel listens whether xapi runs or not: the handshake succeeds and
                // the connection is closed with no HTTP answer (xapi-notes.md).
                SocketMode::Closed if shared.certs.is_some() => tokio::spawn(stunnel_alone(
                    self.listener(i, addr).await?,
                    shared.clone(),
                    i,
                )),
                SocketMode::Closed => {
                    // Nothing listens: a listener bound beforehand is closed too.
                    if self.bound.as_ref().is_some_and(|(host, _)| *host == i) {
                        self.bound = None;
                    }
                    tokio::spawn(std::future::pending())
                }
                SocketMode::BlackHole => tokio::spawn(black_hole(self.listener(i, addr).await?)),
                SocketMode::Serve => {
                    tokio::spawn(serve(self.listener(i, addr).await?, shared.clone(), i))
                }
            };
            self.running.insert(i, (mode, task));
        }
        Ok(())
    }

    /// Stops every listener.
    pub fn shutdown(&mut self) {
        self.bound = None;
        for (_, (_, task)) in self.running.drain() {
            task.abort();
        }
    }
}

/// A listener on `addr` (SO_REUSEADDR: a host powered back on rebinds at once).
pub(super) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    socket.listen(1024)
}

/// Accepts and holds connections without ever reading them.
async fn black_hole(listener: TcpListener) {
    let mut held = Vec::new();
    while let Ok((socket, _)) = listener.accept().await {
        held.push(socket);
    }
}

/// Serves one connection until the peer closes it, or until `one_request` is notified: then
/// the answer in flight is finished and the connection closed.
async fn drive<I, S>(
    http: &hyper::server::conn::http1::Builder,
    io: I,
    service: S,
    one_request: &tokio::sync::Notify,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = BoxBody<Bytes, Infallible>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = http.serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        () = one_request.notified() => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// Serves XML-RPC for host `i` (over TLS with `--tls`). Aborting this task drops the listener
/// and every connection.
async fn serve(listener: TcpListener, shared: Arc<Shared>, i: usize) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((socket, _)) = listener.accept().await {
        let shared = shared.clone();
        connections.spawn(async move {
            // xcp-rrdd answers one request per connection and closes it (xapi-notes.md §13).
            let one_request = Arc::new(tokio::sync::Notify::new());
            let service = {
                let (shared, one_request) = (shared.clone(), one_request.clone());
                service_fn(move |req| {
                    let (shared, one_request) = (shared.clone(), one_request.clone());
                    async move {
                        let rrd = req.uri().path() == "/rrd_updates";
                        let reply = handle(shared.clone(), i, req).await;
                        if let Ok(reply) = &reply {
                            shared.traffic[i].count(reply);
                        }
                        if rrd {
                            one_request.notify_one();
                        }
                        reply
                    }
                })
            };
            let mut http = hyper::server::conn::http1::Builder::new();
            http.keep_alive(true);
            match shared.cert(i) {
                None => drive(&http, TokioIo::new(socket), service, &one_request).await,
                Some(cert) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(cert.config);
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(socket)).await
                    {
                        drive(&http, TokioIo::new(tls), service, &one_request).await;
                    }
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// stunnel in front of a stopped xapi: completes the TLS handshake, then closes.
async fn stunnel_alone(listener: TcpListener, shared: Arc<Shared>, i: usize) {
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((socket, _)) = listener.accept().await {
        let Some(cert) = shared.cert(i) else { return };
        connections.spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(cert.config);
            if let Ok(Ok(mut tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(socket)).await
            {
                use tokio::io::AsyncWriteExt as _;
                let _ = tls.shutdown().await;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

type Reply = Response<BoxBody<Bytes, Infallible>>;

fn text(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    with_type(
        Response::new(Full::new(body.into()).boxed()),
        status,
        content_type,
    )
}

fn with_type(mut response: Reply, status: StatusCode, content_type: &str) -> Reply {
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        content_type.parse().expect("static header"),
    );
    headers.insert(
        "access-control-allow-origin",
        "*".parse().expect("static header"),
    );
    response
}

/// `GET /rrd_updates` (xapi-notes.md §13), answered from the model as it stands.
async fn rrd_updates(shared: &Shared, i: usize, query: &str) -> Result<Reply, std::io::Error> {
    let now = shared.now();
    let answer = {
        let model = shared.model.lock().unwrap_or_else(|e| e.into_inner());
        super::rrd::rrd_updates(&model, i, query, now)
    };
    Ok(match answer {
        RrdAnswer::Json(body) => text(StatusCode::OK, "application/json", body),
        RrdAnswer::Error(status, body) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut reply = text(status, "text/html", body);
            if status == StatusCode::UNAUTHORIZED {
                reply.headers_mut().insert(
                    hyper::header::WWW_AUTHENTICATE,
                    "Basic realm=\"xapi\"".parse().expect("static header"),
                );
            }
            reply
        }
        RrdAnswer::Hang => std::future::pending().await,
    })
}

fn xml(body: String) -> Reply {
    text(StatusCode::OK, "text/xml", body)
}

/// A well-formed answer of about `bytes` bytes, one long string, written as it is sent
/// (chunked, no `Content-Length`), as a hostile or broken peer would: the client learns its
/// size only by reading it, and the simulator never holds it.
struct Filler {
    head: Option<Bytes>,
    filler_left: usize,
    tail: Option<Bytes>,
}

/// A block of filler, shared by every chunk.
static FILL: [u8; 64 * 1024] = [b'x'; 64 * 1024];

impl Filler {
    fn new(bytes: usize) -> Filler {
        let [head, tail] = [0, 1].map(|half| {
            let whole = wire::encode_success(&Value::string("|"));
            let (head, tail) = whole.split_once('|').expect("marker");
            Bytes::from([head, tail][half].to_owned())
        });
        Filler {
            filler_left: bytes.saturating_sub(head.len() + tail.len()),
            head: Some(head),
            tail: Some(tail),
        }
    }
}

impl Body for Filler {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let chunk = if let Some(head) = self.head.take() {
            Some(head)
        } else if self.filler_left > 0 {
            let n = self.filler_left.min(FILL.len());
            self.filler_left -= n;
            Some(Bytes::from_static(&FILL[..n]))
        } else {
            self.tail.take()
        };
        Poll::Ready(chunk.map(|c| Ok(Frame::data(c))))
    }

    /// The size is known below but never exact, so hyper sends it chunked.
    fn size_hint(&self) -> SizeHint {
        let mut hint = SizeHint::new();
        hint.set_lower(
            (self.head.as_ref().map_or(0, Bytes::len)
                + self.filler_left
                + self.tail.as_ref().map_or(0, Bytes::len)) as u64,
        );
        hint
    }
}

/// One HTTP request to host `i`. An `Err` makes hyper drop the connection (xapi died).
async fn handle(
    shared: Arc<Shared>,
    i: usize,
    req: Request<Incoming>,
) -> Result<Reply, std::io::Error> {
    if req.method() == Method::GET && req.uri().path() == "/rrd_updates" {
        return rrd_updates(&shared, i, req.uri().query().unwrap_or_default()).await;
    }
    if req.method() != Method::POST || !matches!(req.uri().path(), "/" | "/RPC2") {
        return Ok(text(
            StatusCode::NOT_FOUND,
            "text/html",
            "<html><body>Not found</body></html>",
        ));
    }
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "text/html",
                "<html><body>Request too large</body></html>",
            ));
        }
    };
    // Malformed XML is an HTTP 500 with an HTML body, as xapi answers (xapi-notes.md §1.1).
    let call = match wire::decode_call(&body) {
        Ok(call) => call,
        Err(e) => {
            let page = format!(
                "<html><body><h1>HTTP 500 internal server error</h1>Xmlrpc.Parse_error: {e}</body></html>"
            );
            return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, "text/html", page));
        }
    };
    // A host that cannot answer (cable pulled, xapi gone) cannot misbehave either.
    let faults = shared.with_model(|m, _| m.hosts[i].answers().then(|| m.hosts[i].faults.clone()));
    let faults = faults.unwrap_or_default();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    match faults
        .fault
        .filter(|_| faults.methods.is_empty() || faults.methods.contains(&call.method))
    {
        Some(Fault::Slow { ms }) => tokio::time::sleep(Duration::from_millis(ms)).await,
        Some(fault) => return injected(fault).await,
        None => {}
    }
    let mut changes = shared.changed.subscribe();
    loop {
        let outcome = shared.with_model(|m, now| m.handle(i, &call, now));
        match outcome {
            Outcome::Reply(result) => return Ok(xml(encode(result))),
            Outcome::Delayed(seconds, result) => {
                tokio::time::sleep(shared.real(seconds)).await;
                return Ok(xml(encode(result)));
            }
            Outcome::Drop => return Err(std::io::Error::other("xapi is not running")),
            Outcome::Hang => {
                // Re-evaluated on every change: the call proceeds once the master is back.
                let _ = tokio::time::timeout(Duration::from_millis(500), changes.changed()).await;
            }
            Outcome::WaitEvents(wait) => {
                let deadline = tokio::time::Instant::now()
                    + Duration::from_secs_f64(wait.timeout.min(86_400.0));
                loop {
                    let polled = {
                        let model = shared.model.lock().unwrap_or_else(|e| e.into_inner());
                        match model.poll_events(&wait) {
                            Some(result) => Some(result),
                            None if tokio::time::Instant::now() >= deadline => {
                                Some(Ok(model.event_timeout(&wait)))
                            }
                            None => None,
                        }
                    };
                    if let Some(result) = polled {
                        return Ok(xml(encode(result)));
                    }
                    // xapi batches: 50 ms between database scans (xapi-notes.md §7.1).
                    let _ = tokio::time::timeout_at(
                        deadline.min(tokio::time::Instant::now() + Duration::from_millis(250)),
                        changes.changed(),
                    )
                    .await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

fn encode(result: Result<Value, crate::xapi::Failure>) -> String {
    match result {
        Ok(value) => wire::encode_success(&value),
        Err(failure) => wire::encode_failure(failure.code.as_str(), &failure.params),
    }
}

async fn injected(fault: Fault) -> Result<Reply, std::io::Error> {
    Ok(match fault {
        Fault::Fail { error } => {
            let (code, params) = error
                .split_first()
                .map_or(("INTERNAL_ERROR", &[][..]), |(c, p)| (c.as_str(), p));
            xml(wire::encode_failure(code, params))
        }
        Fault::Garbage => xml(
            "<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member>".into(),
        ),
        Fault::WrongTypes => xml(wire::encode_success(&Value::Struct(vec![(
            "OpaqueRef:bogus".into(),
            Value::Struct(vec![
                ("live".into(), Value::string("perhaps")),
                ("memory_total".into(), Value::Array(vec![])),
            ]),
        )]))),
        Fault::Oversize { bytes } => with_type(
            Response::new(Filler::new(bytes).boxed()),
            StatusCode::OK,
            "text/xml",
        ),
        Fault::Silence => std::future::pending().await,
        Fault::Slow { .. } => unreachable!("a slow answer is the real one, late"),
    })
}
