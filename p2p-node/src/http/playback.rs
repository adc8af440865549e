//! `/streams/{stream}/live.m3u8` (with LL-HLS blocking reloads),
//! `/streams/{stream}/{seq}.ts`, `/streams/{stream}/{seq}.{part}.ts` and
//! `/streams/{stream}/chunks`: what players and tests read.

use axum::extract::{Path, Query, State};
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

/// The LL-HLS delivery directives a player may add to a playlist request.
#[derive(Debug, serde::Deserialize)]
struct Directives {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<u64>,
}

async fn playlist(
    State(api): State<Api>,
    Path(stream): Path<String>,
    Query(d): Query<Directives>,
    request: HeaderMap,
) -> HttpResult<Response> {
    if api.node.is_paid_stream(&stream) {
        super::refuse_foreign_for_paid(&request, "this stream's playlist")?;
    }
    let body = match (d.msn, d.part) {
        (Some(msn), part) => api.node.playlist_blocking(&stream, msn, part).await?,
        (None, Some(_)) => {
            return Err(HttpError(
                StatusCode::BAD_REQUEST,
                "_HLS_part without _HLS_msn".into(),
            ))
        }
        (None, None) => api.node.playlist(&stream)?,
    };
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
    request: HeaderMap,
) -> HttpResult<Response> {
    if api.node.is_paid_stream(&stream) {
        super::refuse_foreign_for_paid(&request, "this stream's media")?;
    }
    let name = file.strip_suffix(".ts").unwrap_or_default();
    let unknown = || {
        HttpError(
            StatusCode::NOT_FOUND,
            format!("no such segment {file:?}: segments are named <seq>.ts, parts <seq>.<part>.ts"),
        )
    };
    let payload = match name.split_once('.') {
        None => {
            let seq: u64 = name.parse().map_err(|_| unknown())?;
            api.node.segment(&stream, seq).await?
        }
        Some((seq, part)) => {
            let seq: u64 = seq.parse().map_err(|_| unknown())?;
            let part: u16 = part.parse().map_err(|_| unknown())?;
            api.node.part(&stream, seq, part).await?
        }
    };
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
