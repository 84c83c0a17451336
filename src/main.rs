//! `tessera`: maps [`tessera::cli::run`] to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tessera::allocator::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let opts = tessera::cli::Opts::parse();
    if let Err(err) = opts.check() {
        err.exit();
    }
    match tessera::cli::run(opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
