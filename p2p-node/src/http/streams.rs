//! `/api/v0/streams` and `/api/v0/watch/{stream}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use vilokanam_api::{StreamInfo, WatchRequest, WatchResponse};

use super::{Api, HttpError, HttpResult};
use crate::node::playlist_path;

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v0/streams", get(list))
        .route("/api/v0/streams/{stream}", get(one))
        .route("/api/v0/watch/{stream}", post(watch).delete(unwatch))
}

async fn list(State(api): State<Api>) -> HttpResult<Json<Vec<StreamInfo>>> {
    Ok(Json(api.node.streams().await?))
}

async fn one(State(api): State<Api>, Path(stream): Path<String>) -> HttpResult<Json<StreamInfo>> {
    Ok(Json(api.node.stream(&stream).await?))
}

async fn watch(
    State(api): State<Api>,
    Path(stream): Path<String>,
    body: Option<Json<WatchRequest>>,
) -> HttpResult<Json<WatchResponse>> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let cap = match req.max_price_per_sec.as_deref().map(str::trim) {
        None => None,
        Some(text) => Some(text.parse::<u128>().map_err(|e| {
            HttpError(
                StatusCode::BAD_REQUEST,
                format!("max_price_per_sec {text:?}: not planck per second: {e}"),
            )
        })?),
    };
    let id = api.node.watch(&stream, cap).await?;
    Ok(Json(WatchResponse {
        playlist: playlist_path(&id),
        stream: id.to_string(),
    }))
}

async fn unwatch(State(api): State<Api>, Path(stream): Path<String>) -> HttpResult<StatusCode> {
    api.node.unwatch(&stream).await?;
    Ok(StatusCode::NO_CONTENT)
}
