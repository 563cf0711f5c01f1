//! The `dispatch-authz` binary: parse the command line, run it, print errors.

use std::process::ExitCode;

use clap::Parser;
use dispatch_authz::cli::{self, Cli};

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
