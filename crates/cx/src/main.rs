//! `cx`: the one binary of CX Suite.
//!
//! `cx serve all` runs every service in one process on one port (embedded
//! default: SQLite under ./data, in-process cache); `cx serve profile` runs
//! one service, as the Helm chart does. `cx migrate`, `cx token` and
//! `cx health` are the operator's tools; `cx demo` loads a demo data set and
//! `cx dashboard` prints a tenant's dashboard.

mod commands;
mod services;

use clap::{Parser, Subcommand};

/// CX Suite: customer profiles, journeys, surveys, segments and KPIs over gRPC.
///
/// Quick start: `cx serve all`, then `cx token --tenant demo --roles writer`
/// and call it with grpcurl (see README.md). Every flag can also be set with
/// the `CX_…` environment variable shown in its help.
#[derive(Debug, Parser)]
#[command(name = "cx", version, about, long_about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run services: `all` in one process, or one by name (profile).
    Serve(Box<commands::serve::ServeArgs>),
    /// Create schemas and apply pending migrations, then exit.
    Migrate(commands::migrate::MigrateArgs),
    /// Print a signed bearer token (HS256, with the configured or generated secret).
    Token(commands::token::TokenArgs),
    /// Ask a running server for its health; exit 0 only when SERVING.
    Health(commands::health::HealthArgs),
    /// Load a seeded demo data set through the public APIs and print a KPI dashboard.
    Demo(Box<commands::demo::DemoArgs>),
    /// Print a tenant's KPI dashboard from a running suite (--html: also as one HTML page).
    Dashboard(Box<commands::dashboard::DashboardArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cx: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => commands::serve::run(*args).await,
            Command::Migrate(args) => commands::migrate::run(args).await,
            Command::Token(args) => commands::token::run(args),
            Command::Health(args) => commands::health::run(args).await,
            Command::Demo(args) => commands::demo::run(*args).await,
            Command::Dashboard(args) => commands::dashboard::run(*args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("cx: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
