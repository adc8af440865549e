//! `/api/v0/publish/{name}/{start,segment,end}`: what `vilokanam publish`
//! (or any encoder bridge) calls.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use vilokanam_api::{
    PartQuery, PartResponse, SegmentQuery, SegmentResponse, StartRequest, StartResponse,
};
use vilokanam_media::limits::MAX_SEGMENT_BYTES;

use super::{Api, HttpResult};
use crate::node::playlist_path;

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v0/publish/{name}/start", post(start))
        .route(
            "/api/v0/publish/{name}/segment",
            // The media layer's limit: the segmenter never produces more,
            // and the wire refuses more.
            post(segment).layer(DefaultBodyLimit::max(MAX_SEGMENT_BYTES)),
        )
        .route(
            "/api/v0/publish/{name}/part",
            post(part).layer(DefaultBodyLimit::max(MAX_SEGMENT_BYTES)),
        )
        .route("/api/v0/publish/{name}/end", post(end))
}

async fn start(
    State(api): State<Api>,
    Path(name): Path<String>,
    body: Option<Json<StartRequest>>,
) -> HttpResult<Json<StartResponse>> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let (id, next_seq) = api
        .node
        .start_publish(&name, req.title, req.tags, req.codec, req.offer.as_ref())
        .await?;
    Ok(Json(StartResponse {
        playlist: playlist_path(&id),
        stream: id.to_string(),
        next_seq,
    }))
}

async fn segment(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<SegmentQuery>,
    body: Bytes,
) -> HttpResult<Json<SegmentResponse>> {
    let r = api
        .node
        .publish_segment(&name, q.duration_us, q.discontinuity, body)
        .await?;
    Ok(Json(SegmentResponse {
        seq: r.seq,
        cid: r.cid.to_string(),
        size: r.size,
    }))
}

async fn part(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<PartQuery>,
    body: Bytes,
) -> HttpResult<Json<PartResponse>> {
    let r = api.node.publish_part(&name, &q, body).await?;
    Ok(Json(PartResponse {
        seq: r.seq,
        index: r.index,
        cid: r.cid.to_string(),
    }))
}

async fn end(State(api): State<Api>, Path(name): Path<String>) -> HttpResult<StatusCode> {
    api.node.end_publish(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
