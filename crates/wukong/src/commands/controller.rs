//! `wukong controller`: logging, the HTTP endpoints, signals, and the controller itself.

use std::process::ExitCode;
use std::sync::Arc;

use futures::FutureExt;
use tracing::{error, info};
use tracing_subscriber::EnvFilter;

use crate::cli::{ControllerArgs, LogFormat};
use crate::controller::{self, State};

pub fn run(args: ControllerArgs) -> ExitCode {
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %format!("{e:#}"), "controller failed");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ControllerArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let state = Arc::new(State::default());
    let shutdown = shutdown_signal().shared();
    let listener = tokio::net::TcpListener::bind(args.metrics_addr).await?;
    info!(addr = %listener.local_addr()?, "serving /metrics, /livez, /readyz");
    let http = tokio::spawn(controller::http::serve(listener, state.clone(), shutdown.clone()));
    controller::run(args.config(), client, state, shutdown).await?;
    http.await??;
    Ok(())
}

/// SIGTERM (Kubernetes stopping the pod) or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
