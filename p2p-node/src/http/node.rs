//! `/api/v0/id`, `/api/v0/peers`, `/api/v0/stats` and `/metrics`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use vilokanam_api::{IdResponse, NodeStats, PeerView};

use super::{Api, HttpResult};

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v0/id", get(id))
        .route("/api/v0/peers", get(peers))
        .route("/api/v0/stats", get(stats))
        .route("/metrics", get(metrics))
}

async fn id(State(api): State<Api>) -> Json<IdResponse> {
    let i = api.node.identity();
    Json(IdResponse {
        peer_id: i.peer_id.to_string(),
        creator_key: i.creator_key.clone(),
        voucher_key: i.voucher_key.clone(),
        listen: api.node.listen_addrs(),
        key_addrs: api.node.key_server_addrs(),
    })
}

async fn peers(State(api): State<Api>) -> HttpResult<Json<Vec<PeerView>>> {
    let peers = api.node.peers().await?;
    Ok(Json(
        peers
            .into_iter()
            .map(|p| PeerView {
                peer_id: p.peer_id.to_string(),
                score: p.score,
                app_score: p.app_score,
                topics: p.topics,
            })
            .collect(),
    ))
}

async fn stats(State(api): State<Api>) -> HttpResult<Json<NodeStats>> {
    let mut s = api.node.stats().await?;
    s.http_in_flight = api.in_flight();
    Ok(Json(s))
}

async fn metrics(State(api): State<Api>) -> impl IntoResponse {
    api.node.refresh_metrics().await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        api.node.metrics_text(),
    )
}
