//! The `scimload` binary: parse the command line, build the runtime, call the library,
//! and turn the result into an exit code (0 done, 1 some rows rejected or an SLO missed,
//! 2 fatal).

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use scimload::cli::{Cli, Command};
use scimload::{commands, config, server};

// glibc malloc was the largest user-space cost of a create in profiles; mimalloc
// also keeps the allocator off the lock-holding path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`scimload … | head`) is not an error worth reporting.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            // The context chain, without repeating a cause a message already quotes
            // (typed errors put their io::Error in the text and in the chain).
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("scimload: error: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let cfg = config::serve_config(&args)?;
            let rt = commands::runtime(args.threads)?;
            rt.block_on(async {
                let listener = tokio::net::TcpListener::bind(args.listen)
                    .await
                    .with_context(|| {
                        format!("cannot listen on {}; is the port in use?", args.listen)
                    })?;
                let addr = listener.local_addr()?;
                eprintln!(
                    "scimload serve: SCIM 2.0 at {}://{addr} (profile {}, {}); Ctrl-C stops",
                    if cfg.tls.is_some() { "https" } else { "http" },
                    cfg.profile,
                    if cfg.token.is_some() {
                        "bearer token required"
                    } else {
                        "no token"
                    }
                );
                let state = server::App::new(cfg);
                server::serve(listener, state, server::shutdown_signal()).await;
                eprintln!("scimload serve: stopped");
                anyhow::Ok(())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gen(args) => commands::gen(args),
        Command::Import(args) => commands::import(*args),
        Command::Bench(args) => commands::bench(*args),
        Command::Report(args) => commands::report(args),
        Command::Cleanup(args) => commands::cleanup(args),
        Command::Probe(args) => commands::probe(args),
        Command::Plan(args) => commands::plan::plan(args),
    }
}
