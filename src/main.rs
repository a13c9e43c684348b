//! The command line: parse, then hand over to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use uringd::config::{self, Overrides};

#[derive(Parser)]
#[command(
    name = "uringd",
    version,
    about = "A thread-per-core io_uring HTTP/1.1 front end"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve HTTP (with no --config: the embedded default, 127.0.0.1:8080 answering "Hello, World!")
    Serve(Box<ServeArgs>),
    /// Load-test an HTTP server: closed loop, or open loop (-R) with corrected latency
    Bench(Box<uringd::bench::BenchArgs>),
    /// Report what this kernel and machine offer (io_uring features, limits, sysctls) and how to tune them
    Doctor {
        /// One JSON object on stdout instead of the report
        #[arg(long)]
        json: bool,
    },
    /// (internal) The process between uringd and an [[app]] instance: stops its process
    /// group when told to, or when uringd dies
    #[command(hide = true)]
    AppShim {
        /// After SIGTERM, how long the app may take before SIGKILL
        #[arg(long)]
        kill_timeout_ms: u64,
        /// Run the app as this uid (with --gid and --groups)
        #[arg(long)]
        uid: Option<u32>,
        #[arg(long)]
        gid: Option<u32>,
        /// Supplementary group ids, comma-separated
        #[arg(long, value_delimiter = ',')]
        groups: Vec<u32>,
        /// The app's command and arguments
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Validate a config (a file, and the same flags serve takes) and explain every error
    Check {
        /// Print the embedded default config and exit
        #[arg(long)]
        print_default: bool,
        #[command(flatten)]
        args: Box<ServeArgs>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML config file (flags below override it)
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on (repeatable), e.g. 127.0.0.1:8080; replaces [server] listen
    #[arg(long, value_name = "ADDR")]
    listen: Vec<String>,
    /// Admin endpoint address, or "off"
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
    /// Number of workers (default: one per CPU)
    #[arg(long, short)]
    workers: Option<usize>,
    /// CPUs to pin workers to, one per worker, e.g. "0,1" or "0-3"
    #[arg(long, value_name = "LIST")]
    cpus: Option<String>,
    /// Use a kernel SQ polling thread per ring (burns a CPU; off by default)
    #[arg(long)]
    sqpoll: bool,
    /// CPU for the SQ polling threads (needs --sqpoll)
    #[arg(long, value_name = "CPU")]
    sqpoll_cpu: Option<u32>,
    /// File holding the admin bearer token (the token itself is never taken on the command line)
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<String>,
    /// Proxy every path to this upstream (http://IP:PORT, http://unix:/path, uwsgi://IP:PORT, uwsgi+unix:/path)
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// Serve files: PREFIX=DIR (repeatable), e.g. --static /assets/=/srv/www
    #[arg(long = "static", value_name = "PREFIX=DIR")]
    statics: Vec<String>,
    /// Address whose connections start with a PROXY protocol (v1 or v2) header (repeatable); replaces [server] proxy_protocol_listen
    #[arg(long, value_name = "ADDR")]
    proxy_protocol_listen: Vec<String>,
    /// TLS address to listen on (repeatable), e.g. 127.0.0.1:8443; replaces [tls] listen
    #[arg(long, value_name = "ADDR")]
    tls_listen: Vec<String>,
    /// PEM certificate chain, leaf first (repeatable, each with a --tls-key); the first is the default
    #[arg(long, value_name = "PEM")]
    tls_cert: Vec<String>,
    /// PEM private key of the --tls-cert in the same position
    #[arg(long, value_name = "PEM")]
    tls_key: Vec<String>,
    #[command(flatten)]
    knobs: KnobArgs,
}

/// Tuning knobs (see docs/tuning.md); each overrides the [server] key of the same name.
#[derive(clap::Args)]
#[command(next_help_heading = "Tuning (docs/tuning.md)")]
struct KnobArgs {
    /// Submission queue entries per worker ring, 8-32768 [default: 1024]
    #[arg(long, value_name = "N")]
    ring_entries: Option<u32>,
    /// How long the SQ polling thread spins idle before sleeping, e.g. 200ms [default: 1s]
    #[arg(long, value_name = "DURATION")]
    sqpoll_idle: Option<String>,
    /// Run completion work only when the worker waits (IORING_SETUP_DEFER_TASKRUN) [default: on where available]
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    defer_taskrun: Option<bool>,
    /// Size of each receive buffer in the provided-buffer ring, e.g. 4KiB [default: 4KiB]
    #[arg(long, value_name = "SIZE")]
    buffer_size: Option<String>,
    /// Receive buffers per worker, a power of two [default: 1024]
    #[arg(long, value_name = "N")]
    buffers: Option<u32>,
    /// Bodies at least this large go out with SEND_ZC, or "off" [default: 1MiB]
    #[arg(long, value_name = "SIZE|off")]
    send_zc_threshold: Option<String>,
    /// Busy-poll the NIC queues from the ring for up to USECS per wait (IORING_REGISTER_NAPI)
    #[arg(long, value_name = "USECS")]
    napi_busy_poll: Option<u32>,
    /// SO_BUSY_POLL on every socket: busy-poll USECS on blocking reads
    #[arg(long, value_name = "USECS")]
    busy_poll: Option<u32>,
    /// Which worker gets a new connection: the kernel's 4-tuple hash, or the CPU that received it
    #[arg(long, value_name = "cpu|hash")]
    reuseport_steering: Option<String>,
    /// Listen backlog [default: 4096, capped by net.core.somaxconn]
    #[arg(long, value_name = "N")]
    backlog: Option<u32>,
    /// TCP_NODELAY on accepted connections [default: on]
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    tcp_nodelay: Option<bool>,
    /// Accepted connections as registered (direct) descriptors [default: off]
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    fixed_files: Option<bool>,
    /// Fail at start-up when the kernel lacks a requested knob, instead of warning and falling back
    #[arg(long)]
    strict: bool,
    /// I/O backend: io_uring, epoll, or auto (io_uring where it starts, else epoll) [default: auto]
    #[arg(long, value_name = "auto|io_uring|epoll", env = "URINGD_BACKEND")]
    backend: Option<String>,
}

fn on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("`{s}`: use on or off")),
    }
}

/// The command line's part of the config (flags override the file).
fn overrides(a: ServeArgs) -> Overrides {
    let k = a.knobs;
    Overrides {
        listen: a.listen,
        admin: a.admin,
        workers: a.workers,
        cpus: a.cpus,
        sqpoll: a.sqpoll,
        sqpoll_cpu: a.sqpoll_cpu,
        admin_token_file: a.admin_token_file,
        upstream: a.upstream,
        statics: a.statics,
        tls_listen: a.tls_listen,
        proxy_protocol_listen: a.proxy_protocol_listen,
        // Paired by position; a missing half is left empty for the config to name.
        tls_certs: (0..a.tls_cert.len().max(a.tls_key.len()))
            .map(|i| {
                let at = |v: &[String]| v.get(i).cloned().unwrap_or_default();
                (at(&a.tls_cert), at(&a.tls_key))
            })
            .collect(),
        knobs: config::KnobOverrides {
            ring_entries: k.ring_entries,
            sqpoll_idle: k.sqpoll_idle,
            defer_taskrun: k.defer_taskrun,
            buffer_size: k.buffer_size,
            buffers: k.buffers,
            send_zc_threshold: k.send_zc_threshold,
            napi_busy_poll: k.napi_busy_poll,
            busy_poll: k.busy_poll,
            reuseport_steering: k.reuseport_steering,
            backlog: k.backlog,
            tcp_nodelay: k.tcp_nodelay,
            fixed_files: k.fixed_files,
            backend: k.backend,
            strict: k.strict,
        },
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve(a) => {
            let path = a.config.clone();
            let ov = overrides(*a);
            match config::load(path.as_deref(), &ov) {
                Ok(cfg) => {
                    let source = uringd::serve::Source {
                        path,
                        overrides: ov,
                    };
                    ExitCode::from(uringd::serve::run(cfg, source) as u8)
                }
                Err(e) => {
                    for line in e.lines() {
                        uringd::say!("uringd: config error: {line}");
                    }
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Doctor { json } => ExitCode::from(uringd::doctor::run(json) as u8),
        Cmd::AppShim {
            kill_timeout_ms,
            uid,
            gid,
            groups,
            command,
        } => ExitCode::from(uringd::apps::shim::run(
            std::time::Duration::from_millis(kill_timeout_ms),
            uid.zip(gid)
                .map(|(uid, gid)| uringd::apps::shim::As { uid, gid, groups }),
            &command,
        ) as u8),
        Cmd::Bench(a) => ExitCode::from(uringd::bench::run(&a) as u8),
        Cmd::Check {
            print_default,
            args,
        } => {
            if print_default {
                uringd::out!("{}", config::DEFAULT_TOML);
                return ExitCode::SUCCESS;
            }
            let path = args.config.clone();
            let ov = overrides(*args);
            let what = path
                .as_ref()
                .map_or("the embedded default".into(), |p| p.display().to_string());
            match config::load(path.as_deref(), &ov) {
                Ok(mut cfg) => {
                    // The certificates are read as serve would read them.
                    if let Err(e) = uringd::serve::make_ready(&mut cfg, None) {
                        uringd::say!("uringd check: {e}");
                        return ExitCode::from(1);
                    }
                    let tls = cfg.tls.as_ref().map_or(String::new(), |t| {
                        format!(
                            ", {} TLS address(es) with {} certificate(s)",
                            t.listen.len(),
                            t.certs.len()
                        )
                    });
                    uringd::outln!(
                        "{what}: ok ({} listen address(es){tls}, {} worker(s), {} route(s))",
                        cfg.listen.len(),
                        cfg.workers,
                        cfg.routes.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    for line in e.lines() {
                        uringd::say!("uringd check: {line}");
                    }
                    ExitCode::from(1)
                }
            }
        }
    }
}
