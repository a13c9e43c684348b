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
    Serve(ServeArgs),
    /// Load-test an HTTP server: closed loop, or open loop (-R) with corrected latency
    Bench(Box<uringd::bench::BenchArgs>),
    /// Validate a config file and explain every error
    Check {
        /// The TOML config file to check
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Print the embedded default config and exit
        #[arg(long)]
        print_default: bool,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Serve(a) => {
            let ov = Overrides {
                listen: a.listen,
                admin: a.admin,
                workers: a.workers,
                cpus: a.cpus,
                sqpoll: a.sqpoll,
                sqpoll_cpu: a.sqpoll_cpu,
                admin_token_file: a.admin_token_file,
                upstream: a.upstream,
                statics: a.statics,
            };
            match config::load(a.config.as_deref(), &ov) {
                Ok(cfg) => ExitCode::from(uringd::serve::run(cfg) as u8),
                Err(e) => {
                    eprintln!("uringd: config error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Bench(a) => ExitCode::from(uringd::bench::run(&a) as u8),
        Cmd::Check {
            config,
            print_default,
        } => {
            if print_default {
                print!("{}", config::DEFAULT_TOML);
                return ExitCode::SUCCESS;
            }
            let Some(path) = config else {
                eprintln!("uringd check: give the file to check with --config FILE");
                return ExitCode::from(2);
            };
            match config::load(Some(&path), &Overrides::default()) {
                Ok(cfg) => {
                    println!(
                        "{}: ok ({} listen address(es), {} worker(s), {} route(s))",
                        path.display(),
                        cfg.listen.len(),
                        cfg.workers,
                        cfg.routes.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("uringd check: {e}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
