//! `keyward serve`: load the layered configuration, start logging, build and run the server,
//! and print the first admin credential once on a fresh store.

use std::path::PathBuf;

use anyhow::Context;
use keyward_core::api::CreatedWorkspace;
use keyward_server::{Application, Config};
use tracing_subscriber::EnvFilter;

/// Flags of `keyward serve`; each overrides the file and the environment.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// A TOML configuration file.
    #[arg(long, short = 'c', env = "KEYWARD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long)]
    listen: Option<String>,
    /// `sqlite://keyward.db` or `postgres://user@host/db`.
    #[arg(long)]
    database_url: Option<String>,
    /// Log filter, e.g. `info` or `keyward_server=debug`.
    #[arg(long)]
    log_level: Option<String>,
    /// Gateway mode: proxy admitted requests to this upstream, e.g. http://127.0.0.1:9000.
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
    /// The gateway's own listener, e.g. 127.0.0.1:8081.
    #[arg(long, value_name = "ADDR")]
    gateway_listen: Option<String>,
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(v) = args.listen {
        config.server.listen = v;
    }
    if let Some(v) = args.database_url {
        config.database.url = v;
    }
    if let Some(v) = args.log_level {
        config.log.level = v;
    }
    if let Some(v) = args.upstream {
        config.gateway.upstream = v;
    }
    if let Some(v) = args.gateway_listen {
        config.gateway.listen = v;
    }
    init_logging(&config)?;
    let mut app = Application::build(&config)
        .await
        .context("starting keyward")?;
    let address = app.local_addr()?;
    tracing::info!(%address, backend = app.state().store.backend(), "keyward listening");
    if let (Some(gateway), Some(upstream)) = (app.gateway_addr(), app.gateway_upstream()) {
        tracing::info!(%gateway, %upstream, "gateway listening");
        println!("keyward gateway on http://{gateway}, proxying to {upstream}");
    }
    if let Some(created) = app.take_bootstrap() {
        print_first_run(&created, &address.to_string());
    }
    app.run_until(shutdown_signal()).await?;
    Ok(())
}

fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("invalid log level {:?}", config.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format.as_str() {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => anyhow::bail!("log.format must be text or json, not {other:?}"),
    }
    Ok(())
}

/// The one time the operator's admin secret is shown: on standard output, not in the log.
fn print_first_run(created: &CreatedWorkspace, address: &str) {
    println!(
        "\nkeyward created its first workspace \"{}\" ({}).\n\
         Admin token (shown once; keyward keeps only its hash — store it now):\n\n    {}\n\n\
         Try it:\n    export KEYWARD_URL=http://{address}\n    export KEYWARD_TOKEN={}\n    \
         keyward workspace get\n",
        created.workspace.name,
        created.workspace.id,
        created.admin_token.secret,
        created.admin_token.secret,
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
