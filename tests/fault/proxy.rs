//! The fault-injecting proxy between the phone and the office: it reads each HTTP/1.1 request and answer
//! whole (so it knows when the office has answered), and on the way refuses, delays, duplicates, cuts,
//! throttles or swallows them as its current [`Mode`] says. The phone's keep-alive connections stay
//! open across requests, as they would through a real network, so a connection that goes silent is one
//! the phone may try to reuse.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// A slow link: answers come down at `down` bytes a second, requests go up at `up`, and every crossing
/// takes `one_way` more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub down_bytes_per_sec: u64,
    pub up_bytes_per_sec: u64,
    pub one_way: Duration,
}

/// 2G as the harness means it: GPRS with four downlink and two uplink slots at about 10 kbit/s each
/// (40 kbit/s down, 20 kbit/s up) and 250 ms each way, so 500 ms before a byte of any answer.
pub const TWO_G: Link = Link {
    down_bytes_per_sec: 5_000,
    up_bytes_per_sec: 2_500,
    one_way: Duration::from_millis(250),
};

/// What the proxy does to the requests that arrive while it is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Reset every connection at once.
    Refuse,
    /// Hold every connection open and answer nothing on it, ever again.
    Silent,
    Delay(Duration),
    /// Send each request carrying events to the office a second time, this long after the first.
    Duplicate(Duration),
    /// Send each request carrying events to the office and drop its answer, resetting the connection.
    CutAfterCommit,
    Throttle(Link),
    /// The next request carrying events is held (sent to the office first if `forward`), never answered,
    /// and reported as [`Note::Held`]; later ones pass.
    HoldNext {
        forward: bool,
    },
    /// The next request carrying events is sent to the office and reported as [`Note::Forwarded`] at once,
    /// before the office answers; its answer (if any comes) is passed back.
    ReportNext,
}

/// What the proxy tells the run's controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// A request carrying events was held; `forwarded` says whether the office had it (and answered).
    Held { forwarded: bool },
    /// A request carrying events was handed to the office at this moment.
    Forwarded(Instant),
}

/// Counts the run's checks read at the end.
#[derive(Debug, Default)]
pub struct Counts {
    /// Answers from the office with a 5xx status.
    pub server_errors: AtomicUsize,
    /// Requests the office was sent (copies included).
    pub forwarded: AtomicUsize,
}

struct Shared {
    mode: Mutex<Mode>,
    /// Whether a `HoldNext` or `ReportNext` has yet to happen.
    armed: AtomicBool,
    upstream: Mutex<SocketAddr>,
    notes: mpsc::UnboundedSender<Note>,
    counts: Arc<Counts>,
    /// Numbers connections as they are accepted.
    accepted: AtomicU64,
    /// Connections numbered below this are dead: whatever arrives on them is swallowed.
    dead_below: AtomicU64,
}

impl Shared {
    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn upstream(&self) -> SocketAddr {
        *self.upstream.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether this request takes the one-off `HoldNext` / `ReportNext`.
    fn take_armed(&self) -> bool {
        self.armed.swap(false, Ordering::SeqCst)
    }
}

/// The proxy, listening on `addr` until dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.accepting.abort();
    }
}

impl Proxy {
    /// Starts a proxy on a free local port in front of the office at `upstream`.
    pub async fn start(
        upstream: SocketAddr,
    ) -> (Proxy, mpsc::UnboundedReceiver<Note>, Arc<Counts>) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (notes, receiver) = mpsc::unbounded_channel();
        let counts = Arc::new(Counts::default());
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Pass),
            armed: AtomicBool::new(false),
            upstream: Mutex::new(upstream),
            notes,
            counts: counts.clone(),
            accepted: AtomicU64::new(0),
            dead_below: AtomicU64::new(0),
        });
        let accepting = tokio::spawn(accept_loop(listener, shared.clone()));
        (
            Proxy {
                addr,
                shared,
                accepting,
            },
            receiver,
            counts,
        )
    }

    pub fn set_mode(&self, mode: Mode) {
        let one_off = matches!(mode, Mode::HoldNext { .. } | Mode::ReportNext);
        *self
            .shared
            .mode
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = mode;
        self.shared.armed.store(one_off, Ordering::SeqCst);
    }

    /// Every connection open now goes silent for good, as when a mobile network forgets them; new ones
    /// work (the office is reachable).
    pub fn kill_open_connections(&self) {
        let accepted = self.shared.accepted.load(Ordering::SeqCst);
        self.shared.dead_below.store(accepted, Ordering::SeqCst);
    }

    pub fn set_upstream(&self, upstream: SocketAddr) {
        *self
            .shared
            .upstream
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = upstream;
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        // Reap finished connections so the set does not grow over a long run.
        while connections.try_join_next().is_some() {}
        let number = shared.accepted.fetch_add(1, Ordering::SeqCst);
        connections.spawn(serve(client, number, shared.clone()));
    }
}

/// Resets the connection (RST, not a polite close), as a refusing or failing network does.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn serve(mut client: TcpStream, number: u64, shared: Arc<Shared>) {
    let _ = client.set_nodelay(true);
    let mut carry = Vec::new();
    let mut silent = false;
    let mut first = true;
    match shared.mode() {
        Mode::Refuse => return reset(client),
        Mode::Silent => silent = true,
        _ => {}
    }
    loop {
        let request = match read_message(&mut client, &mut carry).await {
            Ok(Some(request)) => request,
            Ok(None) | Err(_) => return,
        };
        silent |= number < shared.dead_below.load(Ordering::SeqCst);
        if silent {
            // A dead connection: whatever arrives goes nowhere, and the phone is never told.
            continue;
        }
        let has_events = carries_events(&request);
        let mode = shared.mode();
        let answer = match mode {
            Mode::Refuse => return reset(client),
            Mode::Silent => {
                silent = true;
                continue;
            }
            Mode::Pass => forward(&shared, &request).await,
            Mode::Delay(delay) => {
                tokio::time::sleep(delay).await;
                let answer = forward(&shared, &request).await;
                tokio::time::sleep(delay).await;
                answer
            }
            Mode::Duplicate(after) if has_events => {
                let copy_of = request.clone();
                let copier = shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let _ = forward(&copier, &copy_of).await;
                });
                forward(&shared, &request).await
            }
            Mode::CutAfterCommit if has_events => {
                let _ = forward(&shared, &request).await;
                return reset(client);
            }
            Mode::Throttle(link) => {
                // A new connection's handshake costs a round trip before the request can start.
                let handshake = if first {
                    2 * link.one_way
                } else {
                    Duration::ZERO
                };
                tokio::time::sleep(
                    handshake + link.one_way + transfer(request.len(), link.up_bytes_per_sec),
                )
                .await;
                match forward(&shared, &request).await {
                    Ok(answer) => {
                        tokio::time::sleep(link.one_way).await;
                        if write_paced(&mut client, &answer, link.down_bytes_per_sec)
                            .await
                            .is_err()
                        {
                            return;
                        }
                        first = false;
                        continue;
                    }
                    Err(_) => return reset(client),
                }
            }
            Mode::HoldNext { forward: to_office } if has_events && shared.take_armed() => {
                if to_office {
                    let _ = forward(&shared, &request).await;
                }
                let _ = shared.notes.send(Note::Held {
                    forwarded: to_office,
                });
                silent = true;
                continue;
            }
            Mode::ReportNext if has_events && shared.take_armed() => {
                forward_reporting(&shared, &request).await
            }
            Mode::Duplicate(_)
            | Mode::CutAfterCommit
            | Mode::HoldNext { .. }
            | Mode::ReportNext => forward(&shared, &request).await,
        };
        first = false;
        match answer {
            Ok(answer) => {
                if client.write_all(&answer).await.is_err() {
                    return;
                }
            }
            // The office is down or died mid-answer: the phone sees its connection reset.
            Err(_) => return reset(client),
        }
    }
}

fn transfer(bytes: usize, per_second: u64) -> Duration {
    Duration::from_micros((bytes as u64).saturating_mul(1_000_000) / per_second.max(1))
}

/// Writes `bytes` no faster than `per_second`, in small pieces, as a slow link delivers them.
async fn write_paced(client: &mut TcpStream, bytes: &[u8], per_second: u64) -> std::io::Result<()> {
    const PIECE: usize = 256;
    let started = Instant::now();
    let mut sent = 0usize;
    for piece in bytes.chunks(PIECE) {
        client.write_all(piece).await?;
        sent += piece.len();
        tokio::time::sleep_until(started + transfer(sent, per_second)).await;
    }
    Ok(())
}

/// Sends one request to the office on a new connection and reads its whole answer.
async fn forward(shared: &Shared, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut office = open_upstream(shared).await?;
    office.write_all(request).await?;
    shared.counts.forwarded.fetch_add(1, Ordering::SeqCst);
    read_answer(shared, &mut office).await
}

/// As [`forward`], telling the controller the moment the request is in the office's hands.
async fn forward_reporting(shared: &Shared, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut office = open_upstream(shared).await?;
    office.write_all(request).await?;
    shared.counts.forwarded.fetch_add(1, Ordering::SeqCst);
    let _ = shared.notes.send(Note::Forwarded(Instant::now()));
    read_answer(shared, &mut office).await
}

async fn open_upstream(shared: &Shared) -> std::io::Result<TcpStream> {
    let office = tokio::time::timeout(
        Duration::from_secs(2),
        TcpStream::connect(shared.upstream()),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "office connect"))??;
    let _ = office.set_nodelay(true);
    Ok(office)
}

async fn read_answer(shared: &Shared, office: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut carry = Vec::new();
    let answer = read_message(office, &mut carry)
        .await?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no answer"))?;
    if status_of(&answer).is_some_and(|status| status >= 500) {
        shared.counts.server_errors.fetch_add(1, Ordering::SeqCst);
    }
    Ok(answer)
}

/// Whether a sync request carries events (the phone's requests are compact JSON, so an empty batch is
/// exactly `"events":[]`).
fn carries_events(request: &[u8]) -> bool {
    let head_end = find(request, b"\r\n\r\n").map_or(request.len(), |at| at + 4);
    let body = &request[head_end..];
    find(body, b"\"events\":[").is_some() && find(body, b"\"events\":[]").is_none()
}

fn status_of(answer: &[u8]) -> Option<u16> {
    let line_end = find(answer, b"\r\n")?;
    let line = std::str::from_utf8(&answer[..line_end]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Reads one whole HTTP/1.1 message (head and body, by `Content-Length` or chunked) from `stream`,
/// keeping any bytes after it in `carry` for the next. `None` at a clean end of stream.
async fn read_message<S: AsyncRead + Unpin>(
    stream: &mut S,
    carry: &mut Vec<u8>,
) -> std::io::Result<Option<Vec<u8>>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let head_len = loop {
        if let Some(at) = find(carry, b"\r\n\r\n") {
            break at + 4;
        }
        if carry.len() > 64 * 1024 {
            return Err(bad("head too long"));
        }
        if !fill(stream, carry).await? {
            return if carry.is_empty() {
                Ok(None)
            } else {
                Err(bad("end of stream inside a head"))
            };
        }
    };
    let head = String::from_utf8_lossy(&carry[..head_len]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(name).map(|value| value.trim().to_owned()))
    };
    let total = if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        let mut at = head_len;
        loop {
            let line_end = loop {
                if let Some(end) = find(&carry[at..], b"\r\n") {
                    break at + end;
                }
                if !fill(stream, carry).await? {
                    return Err(bad("end of stream inside a chunk size"));
                }
            };
            let size_text = String::from_utf8_lossy(&carry[at..line_end]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            let end = line_end + 2 + size + 2;
            while carry.len() < end {
                if !fill(stream, carry).await? {
                    return Err(bad("end of stream inside a chunk"));
                }
            }
            at = end;
            if size == 0 {
                break at;
            }
        }
    } else {
        let length: usize = match header("content-length:") {
            Some(value) => value.parse().map_err(|_| bad("bad content-length"))?,
            None => 0,
        };
        head_len + length
    };
    while carry.len() < total {
        if !fill(stream, carry).await? {
            return Err(bad("end of stream inside a body"));
        }
    }
    Ok(Some(carry.drain(..total).collect()))
}

/// Reads more bytes into `carry`; false at the end of the stream.
async fn fill<S: AsyncRead + Unpin>(stream: &mut S, carry: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut buffer = [0u8; 16 * 1024];
    let read = stream.read(&mut buffer).await?;
    carry.extend_from_slice(&buffer[..read]);
    Ok(read > 0)
}
