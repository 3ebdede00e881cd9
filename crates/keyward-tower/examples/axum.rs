//! An axum service protected by keyward with no network hop: `GET /orders/{id}` needs
//! `orders:read`. Point it at the keyward server's store and run it:
//! `KEYWARD_DATABASE_URL=sqlite://keyward.db cargo run -p keyward-tower --example axum`, then
//! `curl -H "Authorization: Bearer kw_…" http://127.0.0.1:3000/orders/7`.

use std::net::SocketAddr;

use axum::{routing::get, Extension, Router};
use keyward_tower::{GateOptions, KeywardLayer, Principal};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut options: GateOptions = toml::from_str(
        r#"[[edge.routes]]
           route = "GET /orders/{id}"
           permissions = ["orders:read"]"#,
    )?;
    options.database_url = std::env::var("KEYWARD_DATABASE_URL")?;
    let layer = KeywardLayer::connect(&options).await?;
    let app = Router::new()
        .route("/orders/{id}", get(order))
        .layer(layer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async { drop(tokio::signal::ctrl_c().await) })
        .await?;
    layer.gate().shutdown().await; // the usage records still queued are written
    Ok(())
}

async fn order(Extension(principal): Extension<Principal>) -> String {
    format!("token {}\n", principal.token_id)
}
