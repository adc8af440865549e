//! `/streams/{stream}/live.m3u8`, `/streams/{stream}/{seq}.ts` and
//! `/streams/{stream}/chunks`: what players and tests read.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use vilokanam_api::ChunkInfo;

use super::{Api, HttpError, HttpResult};

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/streams/{stream}/live.m3u8", get(playlist))
        .route("/streams/{stream}/chunks", get(chunks))
        .route("/streams/{stream}/{file}", get(segment))
}

async fn playlist(State(api): State<Api>, Path(stream): Path<String>) -> HttpResult<Response> {
    let body = api.node.playlist(&stream)?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.apple.mpegurl"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok((headers, body).into_response())
}

async fn segment(
    State(api): State<Api>,
    Path((stream, file)): Path<(String, String)>,
) -> HttpResult<Response> {
    let seq: u64 = file
        .strip_suffix(".ts")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            HttpError(
                StatusCode::NOT_FOUND,
                format!("no such segment {file:?}: segments are named <seq>.ts"),
            )
        })?;
    let payload = api.node.segment(&stream, seq).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
    Ok((headers, payload).into_response())
}

async fn chunks(
    State(api): State<Api>,
    Path(stream): Path<String>,
) -> HttpResult<Json<Vec<ChunkInfo>>> {
    Ok(Json(api.node.chunks(&stream).await?))
}
