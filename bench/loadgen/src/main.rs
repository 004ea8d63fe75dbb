//! Open-loop, fixed-rate HTTP/1.1 load generator for bench/run.sh (MODE=rate).
//!
//! Requests are started on a fixed schedule (`--rate` per second), whatever
//! the target does, and each one is timed from its *scheduled* start: time
//! spent waiting for a free connection (at most `--connections` keep-alive
//! connections) or behind a late scheduler counts as latency, so an
//! overloaded target cannot hide its queueing (no coordinated omission).
//!
//! One thread does all the work: a current-thread tokio runtime, woken for
//! each scheduled request by a timerfd (high-resolution, unlike tokio's 1 ms
//! timer wheel; no spinning), so the generator costs one core at most.
//! `--stream` reads a server-sent-event body to its end and records time to
//! first byte as well as time to last byte; an answer without `[DONE]` at
//! its end counts as an error.
//!
//! Latency percentiles cover the 2xx answers plus the requests that timed out
//! (recorded at the time they were given up, i.e. ≥ `--timeout`); other
//! statuses and connection/IO errors are counted under "errors", untimed.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt as _, Empty, Full, combinators::BoxBody};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

type ReqBody = BoxBody<Bytes, std::convert::Infallible>;

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Open-loop fixed-rate HTTP/1.1 load generator (latency from the scheduled send time)"
)]
struct Args {
    /// Target URL (http only), e.g. http://127.0.0.1:18081/v1/chat/completions
    #[arg(long)]
    url: String,
    /// Requests per second, started on a fixed schedule
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Measured seconds
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Seconds of load before the measured window (same rate, not recorded)
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Request body file: the request is a POST with it (GET without)
    #[arg(long)]
    body: Option<std::path::PathBuf>,
    /// Extra request header 'Name: value' (repeatable); content-type defaults
    /// to application/json when a body is sent
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Streamed answers (SSE): record time to first and to last byte, require
    /// `[DONE]` at the end; adds "stream":true to a JSON body that lacks it
    #[arg(long)]
    stream: bool,
    /// Maximum number of keep-alive connections; a request that finds them
    /// all busy waits (and the wait counts)
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds from a request's scheduled time after which it is given up
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Print one JSON object on stdout instead of the table
    #[arg(long)]
    json: bool,
}

/// The connection pool: a semaphore bounds the connections in use (so at
/// most `connections` exist), idle ones wait in a stack for reuse.
struct Pool {
    addr: SocketAddr,
    permits: Semaphore,
    idle: Mutex<Vec<SendRequest<ReqBody>>>,
    opened: AtomicU64,
}

impl Pool {
    async fn connect(&self) -> Result<SendRequest<ReqBody>, ()> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|_| ())?;
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|_| ())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(sender)
    }

    fn take_idle(&self) -> Option<SendRequest<ReqBody>> {
        let mut idle = self.idle.lock().unwrap();
        while let Some(s) = idle.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }
}

struct Shared {
    pool: Pool,
    method: Method,
    path: Uri,
    headers: HeaderMap,
    body: Option<Bytes>,
    stream: bool,
    timeout: Duration,
    window: (Instant, Instant),
    stats: Mutex<Stats>,
    outstanding: AtomicU64,
}

struct Stats {
    sent: u64,
    ok: u64,
    errors: BTreeMap<String, u64>,
    latency: Histogram<u64>,
    ttfb: Histogram<u64>,
    lag: Histogram<u64>,
    ok_in_window: u64,
    responses_total: u64,
    ok_bytes: u64,
}

enum Outcome {
    Ok {
        first_byte: Option<Instant>,
        end: Instant,
        bytes: u64,
    },
    NoDone,
    Status(u16),
    Connect,
    Io(&'static str),
    Timeout,
}

fn hist() -> Histogram<u64> {
    // nanoseconds, 1 ns .. 1 h, 3 significant digits
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("histogram bounds")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

fn build_request(sh: &Shared) -> Request<ReqBody> {
    let body: ReqBody = match &sh.body {
        Some(b) => Full::new(b.clone()).boxed(),
        None => Empty::new().boxed(),
    };
    let mut req = Request::new(body);
    *req.method_mut() = sh.method.clone();
    *req.uri_mut() = sh.path.clone();
    *req.headers_mut() = sh.headers.clone();
    req
}

async fn exchange(sh: &Shared) -> Outcome {
    let _permit = sh
        .pool
        .permits
        .acquire()
        .await
        .expect("semaphore never closes");
    let (mut sender, mut reused) = match sh.pool.take_idle() {
        Some(s) => (s, true),
        None => match sh.pool.connect().await {
            Ok(s) => (s, false),
            Err(()) => return Outcome::Connect,
        },
    };
    loop {
        // A kept-alive connection the server closed meanwhile is replaced
        // once by a fresh one; failures on a fresh connection are errors.
        let sent = match sender.ready().await {
            Ok(()) => sender.send_request(build_request(sh)).await,
            Err(e) => Err(e),
        };
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                if reused && (e.is_closed() || e.is_canceled() || e.is_incomplete_message()) {
                    reused = false;
                    match sh.pool.connect().await {
                        Ok(s) => sender = s,
                        Err(()) => return Outcome::Connect,
                    }
                    continue;
                }
                return Outcome::Io(if e.is_timeout() { "io_timeout" } else { "io" });
            }
        };
        let status = response.status();
        let mut body = response.into_body();
        let mut first_byte = None;
        let mut bytes = 0u64;
        let mut tail: Vec<u8> = Vec::with_capacity(64);
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Outcome::Io("body");
            };
            if let Ok(data) = frame.into_data() {
                if data.is_empty() {
                    continue;
                }
                if first_byte.is_none() {
                    first_byte = Some(Instant::now());
                }
                bytes += data.len() as u64;
                if sh.stream {
                    tail.extend_from_slice(&data[data.len().saturating_sub(32)..]);
                    if tail.len() > 32 {
                        tail.drain(..tail.len() - 32);
                    }
                }
            }
        }
        let end = Instant::now();
        if !sender.is_closed() {
            sh.pool.idle.lock().unwrap().push(sender);
        }
        if !status.is_success() {
            return Outcome::Status(status.as_u16());
        }
        if sh.stream && !tail.trim_ascii_end().ends_with(b"[DONE]") {
            return Outcome::NoDone;
        }
        return Outcome::Ok {
            first_byte,
            end,
            bytes,
        };
    }
}

async fn one(sh: Arc<Shared>, scheduled: Instant, measured: bool) {
    let lag = Instant::now().saturating_duration_since(scheduled);
    let deadline = tokio::time::Instant::from_std(scheduled + sh.timeout);
    let outcome = tokio::time::timeout_at(deadline, exchange(&sh))
        .await
        .unwrap_or(Outcome::Timeout);
    {
        let mut st = sh.stats.lock().unwrap();
        if !matches!(
            outcome,
            Outcome::Connect | Outcome::Io(_) | Outcome::Timeout
        ) {
            st.responses_total += 1;
        }
        if let Outcome::Ok { end, .. } = outcome
            && end >= sh.window.0
            && end <= sh.window.1
        {
            st.ok_in_window += 1;
        }
        if measured {
            st.sent += 1;
            st.lag.saturating_record(nanos(lag));
            let kind = match outcome {
                Outcome::Ok {
                    first_byte,
                    end,
                    bytes,
                } => {
                    st.ok += 1;
                    st.ok_bytes += bytes;
                    st.latency
                        .saturating_record(nanos(end.saturating_duration_since(scheduled)));
                    if let Some(fb) = first_byte {
                        st.ttfb
                            .saturating_record(nanos(fb.saturating_duration_since(scheduled)));
                    }
                    None
                }
                Outcome::Timeout => {
                    st.latency.saturating_record(nanos(
                        Instant::now().saturating_duration_since(scheduled),
                    ));
                    Some("timeout".to_owned())
                }
                Outcome::NoDone => Some("stream_without_done".to_owned()),
                Outcome::Status(s) => Some(format!("status_{s}")),
                Outcome::Connect => Some("connect".to_owned()),
                Outcome::Io(k) => Some(k.to_owned()),
            };
            if let Some(k) = kind {
                *st.errors.entry(k).or_default() += 1;
            }
        }
    }
    sh.outstanding.fetch_sub(1, Ordering::AcqRel);
}

fn quantiles(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return Value::Null;
    }
    let ms = |ns: u64| (ns as f64 / 1e3).round() / 1e3;
    json!({
        "count": h.len(),
        "p50": ms(h.value_at_quantile(0.50)),
        "p90": ms(h.value_at_quantile(0.90)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": (h.mean() / 1e3).round() / 1e3,
    })
}

fn parse_header(raw: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| format!("header `{raw}` is not 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|e| format!("header name in `{raw}`: {e}"))?;
    let value =
        HeaderValue::from_str(value.trim()).map_err(|e| format!("header value in `{raw}`: {e}"))?;
    Ok((name, value))
}

/// For `--stream`: a JSON object body without `"stream": true` gets it, by
/// inserting `"stream":true,` after the opening brace (the rest of the bytes
/// stay as written).
fn streamed_body(raw: Vec<u8>) -> Result<Vec<u8>, String> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&raw) else {
        return Ok(raw);
    };
    match obj.get("stream") {
        Some(Value::Bool(true)) => Ok(raw),
        Some(other) => Err(format!(
            "--stream, but the body sets \"stream\": {other}; remove it or set it to true"
        )),
        None => {
            let at = raw.iter().position(|&b| b == b'{').expect("a JSON object") + 1;
            let sep: &[u8] = if obj.is_empty() { b"" } else { b"," };
            let mut out = Vec::with_capacity(raw.len() + 16);
            out.extend_from_slice(&raw[..at]);
            out.extend_from_slice(b"\"stream\":true");
            out.extend_from_slice(sep);
            out.extend_from_slice(&raw[at..]);
            Ok(out)
        }
    }
}

fn set_timer_slack() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// A one-shot CLOCK_MONOTONIC timerfd registered with tokio: sleeps with
/// the kernel's high-resolution timers instead of tokio's 1 ms wheel.
struct Timer {
    fd: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

impl Timer {
    fn new() -> Result<Timer, String> {
        use std::os::fd::FromRawFd as _;
        // SAFETY: plain syscall; the descriptor is owned from here on.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(format!(
                "timerfd_create: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: raw is a fresh descriptor nobody else owns.
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        // SAFETY: `owned` is a valid descriptor that the AsyncFd owns and
        // keeps open until it is dropped.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE)
        }
        .map_err(|e| format!("timerfd: {e}"))?;
        Ok(Timer { fd })
    }

    async fn sleep_until(&mut self, at: Instant) -> Result<(), String> {
        use std::os::fd::AsRawFd as _;
        let now = Instant::now();
        if at <= now {
            return Ok(());
        }
        let d = at - now;
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: d.as_secs() as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            },
        };
        let raw = self.fd.get_ref().as_raw_fd();
        // SAFETY: a valid timerfd and itimerspec.
        if unsafe { libc::timerfd_settime(raw, 0, &spec, std::ptr::null_mut()) } < 0 {
            return Err(format!(
                "timerfd_settime: {}",
                std::io::Error::last_os_error()
            ));
        }
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| format!("timerfd: {e}"))?;
            let mut expirations = [0u8; 8];
            // SAFETY: reads 8 bytes into an 8-byte buffer.
            let n = unsafe { libc::read(raw, expirations.as_mut_ptr().cast(), 8) };
            if n == 8 {
                return Ok(());
            }
            guard.clear_ready();
        }
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(args) {
        eprintln!("loadgen: {e}");
        std::process::exit(2);
    }
}

fn run(args: Args) -> Result<(), String> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        return Err("--rate must be > 0".into());
    }
    if args.duration.is_nan()
        || args.duration <= 0.0
        || args.timeout.is_nan()
        || args.timeout <= 0.0
        || args.warmup.is_nan()
        || args.warmup < 0.0
    {
        return Err("--duration and --timeout must be > 0, --warmup >= 0".into());
    }
    if args.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    let uri: Uri = args.url.parse().map_err(|e| format!("--url: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("--url: only http:// URLs are supported".into());
    }
    let authority = uri.authority().ok_or("--url has no host")?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let addr = (authority.host(), port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {}: {e}", authority.host()))?
        .next()
        .ok_or("the --url host resolves to nothing")?;
    let path: Uri = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .map_err(|e| format!("--url path: {e}"))?;

    let body = match &args.body {
        Some(f) => {
            let raw = std::fs::read(f).map_err(|e| format!("--body {}: {e}", f.display()))?;
            let raw = if args.stream {
                streamed_body(raw)?
            } else {
                raw
            };
            Some(Bytes::from(raw))
        }
        None => None,
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        HOST,
        HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?,
    );
    for raw in &args.headers {
        let (n, v) = parse_header(raw)?;
        headers.append(n, v);
    }
    if body.is_some() && !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    let method = if body.is_some() {
        Method::POST
    } else {
        Method::GET
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;

    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let start = Instant::now() + Duration::from_millis(100);
    let window = (start + warmup, start + warmup + duration);
    let sh = Arc::new(Shared {
        pool: Pool {
            addr,
            permits: Semaphore::new(args.connections),
            idle: Mutex::new(Vec::with_capacity(args.connections)),
            opened: AtomicU64::new(0),
        },
        method,
        path,
        headers,
        body,
        stream: args.stream,
        timeout: Duration::from_secs_f64(args.timeout),
        window,
        stats: Mutex::new(Stats {
            sent: 0,
            ok: 0,
            errors: BTreeMap::new(),
            latency: hist(),
            ttfb: hist(),
            lag: hist(),
            ok_in_window: 0,
            responses_total: 0,
            ok_bytes: 0,
        }),
        outstanding: AtomicU64::new(0),
    });

    // The schedule: request i starts at start + i / rate. One thread does
    // everything: a timerfd (precise, unlike tokio's millisecond timer
    // wheel) wakes the runtime when the next request is due.
    let total = ((args.warmup + args.duration) * args.rate).round() as u64;
    let rate = args.rate;
    set_timer_slack();
    rt.block_on(async {
        let mut timer = Timer::new()?;
        for i in 0..total {
            let at = start + Duration::from_nanos((i as f64 * 1e9 / rate) as u64);
            if at >= window.1 {
                break;
            }
            timer.sleep_until(at).await?;
            sh.outstanding.fetch_add(1, Ordering::AcqRel);
            tokio::spawn(one(sh.clone(), at, at >= window.0));
        }
        while sh.outstanding.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok::<(), String>(())
    })?;

    let st = sh.stats.lock().unwrap();
    let error_total: u64 = st.errors.values().sum();
    let report = json!({
        "url": args.url,
        "rate": args.rate,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "stream": args.stream,
        "connections": args.connections,
        "timeout_s": args.timeout,
        "sent": st.sent,
        "ok": st.ok,
        "errors": st.errors,
        "error_total": error_total,
        "achieved_rps": ((st.ok_in_window as f64 / args.duration) * 10.0).round() / 10.0,
        "connections_opened": sh.pool.opened.load(Ordering::Relaxed),
        "responses_total": st.responses_total,
        "mean_response_bytes": st.ok_bytes.checked_div(st.ok).unwrap_or(0),
        "latency_ms": quantiles(&st.latency),
        "ttfb_ms": if args.stream { quantiles(&st.ttfb) } else { Value::Null },
        "dispatch_lag_ms": quantiles(&st.lag),
    });
    if args.json {
        println!("{report}");
    } else {
        print_table(&report);
    }
    rt.shutdown_background();
    Ok(())
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().map(|x| format!("{x:.3}")).unwrap_or("-".into());
    println!("url          {}", r["url"].as_str().unwrap_or(""));
    println!(
        "load         open loop, {} req/s for {} s after {} s warm-up, {}, at most {} connections",
        r["rate"],
        r["duration_s"],
        r["warmup_s"],
        if r["stream"] == true {
            "streamed"
        } else {
            "not streamed"
        },
        r["connections"]
    );
    println!(
        "sent {}  ok {}  errors {}  achieved {:.1} req/s  connections opened {}  bytes/answer {}",
        r["sent"],
        r["ok"],
        r["error_total"],
        r["achieved_rps"].as_f64().unwrap_or(0.0),
        r["connections_opened"],
        r["mean_response_bytes"]
    );
    if let Some(errs) = r["errors"].as_object()
        && !errs.is_empty()
    {
        let list: Vec<String> = errs.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("errors       {}", list.join(", "));
    }
    println!(
        "{:<22}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
        "ms", "p50", "p90", "p99", "p99.9", "max", "mean"
    );
    let rows = [
        (
            if r["stream"] == true {
                "last byte"
            } else {
                "latency"
            },
            &r["latency_ms"],
        ),
        ("first byte", &r["ttfb_ms"]),
        ("dispatch lag (client)", &r["dispatch_lag_ms"]),
    ];
    for (name, q) in rows {
        if q.is_null() {
            continue;
        }
        println!(
            "{:<22}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            name,
            f(&q["p50"]),
            f(&q["p90"]),
            f(&q["p99"]),
            f(&q["p999"]),
            f(&q["max"]),
            f(&q["mean"])
        );
    }
}
