//! The `dispatch-authz` binary: parse the command line, run it, print errors.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use dispatch_authz::cli::{self, Cli};

/// mimalloc instead of the system allocator: BENCHMARKS.md ("Issue 11,
/// first steps") has the measurements behind the choice.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
