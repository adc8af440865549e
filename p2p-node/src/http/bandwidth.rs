//! `/api/v0/bandwidth`: what this node charges and pays for payloads.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use vilokanam_api::BandwidthInfo;

use super::{Api, HttpResult};

pub(super) fn routes() -> Router<Api> {
    Router::new().route("/api/v0/bandwidth", get(bandwidth))
}

async fn bandwidth(State(api): State<Api>) -> HttpResult<Json<BandwidthInfo>> {
    Ok(Json(api.node.bandwidth().await?))
}
