//! `uringd bench` arguments (wrk's habits) and their checks, turned into a run plan.

use crate::driver::Backend;
use std::path::PathBuf;
use std::time::Duration;

use super::schedule::Arrival;
use super::target::{self, RequestSpec};
use super::worker::RunPlan;
use crate::config::parse_cpu_list;
use crate::config::units::{DurationValue, parse_duration};

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// URL(s) to load, e.g. http://127.0.0.1:8080/ (several are used round-robin)
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,
    /// Connections to keep open (spread over the threads)
    #[arg(short = 'c', long = "connections", default_value_t = 10)]
    pub connections: usize,
    /// Threads, each with its own io_uring (at most one per connection)
    #[arg(short = 't', long, default_value_t = 2)]
    pub threads: usize,
    /// How long to measure, e.g. 10s, 500ms, 2m
    #[arg(short = 'd', long, default_value = "10s")]
    pub duration: String,
    /// Open loop at this many requests per second in total (omit for closed loop)
    #[arg(short = 'R', long, value_name = "REQ/S")]
    pub rate: Option<f64>,
    /// Open-loop arrivals: evenly spaced (constant) or random (poisson)
    #[arg(long, value_enum, default_value = "constant")]
    pub arrival: ArrivalArg,
    /// Requests kept in flight per connection
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub pipeline: usize,
    /// Extra request header (repeatable), e.g. -H "Accept: text/html"
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request method (default GET, or POST with --body)
    #[arg(short = 'm', long)]
    pub method: Option<String>,
    /// Send this file as the request body
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,
    /// A new connection for every request (Connection: close); with https:// the
    /// handshake-rate profile
    #[arg(long, visible_alias = "close")]
    pub no_keepalive: bool,
    /// https://: verify the server's certificate against the CA certificates in FILE
    /// (default: the system bundle)
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// https://: accept any certificate (the handshake is otherwise complete)
    #[arg(long, short = 'k')]
    pub insecure: bool,
    /// https://: resume TLS sessions (tickets) on new connections instead of full handshakes
    #[arg(long)]
    pub tls_resume: bool,
    /// I/O backend: io_uring, epoll, or auto (io_uring where it starts, else epoll) [default: auto]
    #[arg(long, value_name = "auto|io_uring|epoll", env = "URINGD_BACKEND")]
    pub backend: Option<String>,
    /// Load before measuring, not counted, e.g. 2s
    #[arg(long, default_value = "0s")]
    pub warmup: String,
    /// A request unanswered this long is an error, recorded at this latency
    #[arg(long, default_value = "5s")]
    pub timeout: String,
    /// CPUs to pin the threads to, e.g. "1" or "2-3"
    #[arg(long, value_name = "LIST")]
    pub cpus: Option<String>,
    /// Print one JSON object on stdout instead of the text report
    #[arg(long)]
    pub json: bool,
    /// Write the corrected percentile spectrum (.hgrm text) to FILE
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Write an HdrHistogram interval log (one histogram per second) to FILE
    #[arg(long, value_name = "FILE")]
    pub hlog: Option<PathBuf>,
    /// Draw the percentile plot (or with --sweep, latency against rate) to FILE
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Run a fixed-rate series START:END:STEP (req/s), each for --duration, and find the
    /// highest rate whose p99 stays within --slo
    #[arg(long, value_name = "START:END:STEP")]
    pub sweep: Option<String>,
    /// Latency objective for --sweep (p99), e.g. 10ms
    #[arg(long, value_name = "DURATION")]
    pub slo: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ArrivalArg {
    Constant,
    Poisson,
}

fn duration(flag: &str, v: &str) -> Result<Duration, String> {
    parse_duration(&DurationValue::Text(v.to_string())).map_err(|e| format!("{flag}: {e}"))
}

pub fn parse_sweep(s: &str) -> Result<Vec<f64>, String> {
    let bad =
        || format!("--sweep `{s}`: write it as START:END:STEP in req/s, e.g. 1000:20000:1000");
    let parts: Vec<f64> = s
        .split(':')
        .map(|p| p.trim().parse::<f64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [start, end, step] = parts[..] else {
        return Err(bad());
    };
    if !(start > 0.0 && end >= start && step > 0.0 && (start + end + step).is_finite()) {
        return Err(bad());
    }
    let n = ((end - start) / step).floor() as usize + 1;
    if n > 1000 {
        return Err(format!(
            "--sweep `{s}`: {n} steps; use a larger STEP (at most 1000 steps)"
        ));
    }
    Ok((0..n).map(|k| start + k as f64 * step).collect())
}

/// Checks every argument and builds the plan (URLs resolved, request bytes built).
pub fn plan(a: &BenchArgs) -> Result<RunPlan, String> {
    if a.connections == 0 {
        return Err("-c must be at least 1".into());
    }
    if a.threads == 0 {
        return Err("-t must be at least 1".into());
    }
    if a.pipeline == 0 || a.pipeline > 1024 {
        return Err("--pipeline must be between 1 and 1024".into());
    }
    if a.no_keepalive && a.pipeline > 1 {
        return Err("--pipeline needs keep-alive connections; drop --no-keepalive".into());
    }
    let d = duration("-d", &a.duration)?;
    if d.is_zero() {
        return Err("-d must be longer than zero, e.g. -d 10s".into());
    }
    let warmup = duration("--warmup", &a.warmup)?;
    let timeout = duration("--timeout", &a.timeout)?;
    if timeout.is_zero() {
        return Err("--timeout must be longer than zero".into());
    }
    if let Some(r) = a.rate
        && !(r > 0.0 && r.is_finite())
    {
        return Err(format!(
            "-R {r}: the rate must be a positive number of requests per second"
        ));
    }
    let want = match a.backend.as_deref() {
        None => Backend::Auto,
        Some(v) => Backend::parse(v)
            .ok_or_else(|| format!("--backend {v}: use auto, io_uring or epoll"))?,
    };
    let backend = crate::driver::choose(want, &crate::driver::uring::SetupOptions::default())?;
    let cpus = match &a.cpus {
        Some(l) => {
            let v = parse_cpu_list(l).map_err(|e| format!("--cpus: {e}"))?;
            let avail = crate::config::available_cpus();
            if let Some(c) = v.iter().find(|c| !avail.contains(c)) {
                return Err(format!(
                    "--cpus: CPU {c} is not available to this process (have {avail:?})"
                ));
            }
            Some(v)
        }
        None => None,
    };
    let body = match &a.body {
        Some(p) => Some(std::fs::read(p).map_err(|e| format!("--body {}: {e}", p.display()))?),
        None => None,
    };
    let method = match (&a.method, &body) {
        (Some(m), _) => m.clone(),
        (None, Some(_)) => "POST".into(),
        (None, None) => "GET".into(),
    };
    let spec = RequestSpec {
        method,
        headers: a.headers.clone(),
        body,
        keepalive: !a.no_keepalive,
    };
    let targets = a
        .urls
        .iter()
        .map(|u| target::build(u, &spec))
        .collect::<Result<Vec<_>, _>>()?;
    let any_tls = targets.iter().any(|t| t.tls.is_some());
    if !any_tls && (a.cacert.is_some() || a.insecure || a.tls_resume) {
        return Err("--cacert, --insecure and --tls-resume are for https:// URLs".into());
    }
    if a.cacert.is_some() && a.insecure {
        return Err(
            "--cacert and --insecure: choose one (verify against FILE, or not at all)".into(),
        );
    }
    let tls = if any_tls {
        for t in targets.iter().filter_map(|t| t.tls.as_deref()) {
            super::tls::server_name(t)?;
        }
        Some(super::tls::client_config(&super::tls::TlsOptions {
            cacert: a.cacert.clone(),
            insecure: a.insecure,
            resume: a.tls_resume,
        })?)
    } else {
        None
    };
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        // One connection speaks one protocol to one address (and one server name).
        let same = |g: &Vec<usize>| targets[g[0]].addr == t.addr && targets[g[0]].tls == t.tls;
        match groups.iter_mut().find(|g| same(g)) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    if a.connections < groups.len() {
        return Err(format!(
            "-c {}: the URLs name {} servers; give at least one connection each",
            a.connections,
            groups.len()
        ));
    }
    Ok(RunPlan {
        backend,
        tls,
        targets,
        groups,
        conns: a.connections,
        // A thread without a connection would have nothing to do.
        threads: a.threads.min(a.connections),
        cpus,
        pipeline: a.pipeline,
        timeout_ns: timeout.as_nanos() as u64,
        warmup_ns: warmup.as_nanos() as u64,
        duration_ns: d.as_nanos() as u64,
        rate: a.rate,
        arrival: match a.arrival {
            ArrivalArg::Constant => Arrival::Constant,
            ArrivalArg::Poisson => Arrival::Poisson,
        },
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps() {
        assert_eq!(
            parse_sweep("1000:3000:1000").unwrap(),
            vec![1000.0, 2000.0, 3000.0]
        );
        assert_eq!(parse_sweep("5:5:1").unwrap(), vec![5.0]);
        assert!(parse_sweep("3000:1000:1000").is_err());
        assert!(parse_sweep("1:2").is_err());
        assert!(
            parse_sweep("1:100000:1")
                .unwrap_err()
                .contains("at most 1000")
        );
    }
}
