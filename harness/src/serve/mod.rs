//! `faultline serve`: browse the store over HTTP. `/` is the index of every stored run
//! (the page of `store/index.html`, which here polls `/api/runs` every two seconds, so a
//! running campaign's progress shows without a reload); `/api/runs` is that index as JSON;
//! every other path is a file of the store (`/raft-register/<stamp>/report.html`).
//! Loopback by default: binding another address is explicit (`--bind 0.0.0.0`).

use crate::exit;
use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;
use faultline_results::index::{render_index, scan_store};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use tower_http::services::ServeDir;

/// Arguments of `faultline serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The store to serve.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The port (0: any free port; the address is printed on the first line).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The address to listen on. Loopback by default; another address (0.0.0.0 for every
    /// interface) makes the store readable from the network.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
}

struct Served {
    store: PathBuf,
}

/// The routes over `store`.
pub fn router(store: PathBuf) -> Router {
    let state = Arc::new(Served {
        store: store.clone(),
    });
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/api/runs", get(runs))
        .fallback_service(ServeDir::new(store).append_index_html_on_directories(false))
        .with_state(state)
}

async fn index(State(s): State<Arc<Served>>) -> Response {
    let store = s.store.clone();
    let page = tokio::task::spawn_blocking(move || render_index(&scan_store(&store), true)).await;
    match page {
        Ok(Ok(html)) => ([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn runs(State(s): State<Arc<Served>>) -> Response {
    let store = s.store.clone();
    match tokio::task::spawn_blocking(move || scan_store(&store)).await {
        Ok(rows) => ([(header::CACHE_CONTROL, "no-store")], Json(rows)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Runs `faultline serve` until Ctrl-C.
pub fn run(args: ServeArgs) -> Result<u8> {
    if !args.store.is_dir() {
        errln!(
            "error: --store {}: no such folder (run a campaign first, or give the store's path)",
            args.store.display()
        );
        return Ok(exit::BAD_INPUT);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let addr = SocketAddr::new(args.bind, args.port);
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                errln!("error: cannot listen on {addr}: {e}");
                return Ok(exit::BAD_INPUT);
            }
        };
        let local = listener.local_addr().context("the address listened on")?;
        outln!(
            "serving {} at http://{local}/ (Ctrl-C to stop)",
            args.store.display()
        );
        if !args.bind.is_loopback() {
            errln!("warning: listening on {local}: the store is readable from the network");
        }
        axum::serve(listener, router(args.store.clone()))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("serving")?;
        Ok(exit::VALID)
    })
}
