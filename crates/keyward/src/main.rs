//! keyward: the server and the admin CLI in one binary.
//!
//! `keyward serve` runs the service (SQLite by default, PostgreSQL with `--database-url`).
//! Every other verb talks to a running server over the typed client. This file only wires
//! configuration, logging and start-up; the work lives in the library crates.

mod admin;
mod serve;

use clap::{Parser, Subcommand};

/// API access tokens done right.
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    client: admin::ClientArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the keyward server.
    Serve(serve::ServeArgs),
    #[command(flatten)]
    Admin(admin::AdminCommand),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Admin(cmd) => admin::run(cmd, &cli.client).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
