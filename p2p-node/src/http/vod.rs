//! VODs: `GET /api/v0/vods` (the list), `GET /api/v0/vods/heard` (VODs
//! other creators announced), `GET /api/v0/vods/{root}/car` (a
//! CARv1 for `ipfs dag import`, streamed), `POST|DELETE
//! /api/v0/vods/{root}/pin` (keep every block here, fetched from peers) and
//! `POST|DELETE /api/v0/vods/{root}/watch` (pay for a paid VOD from a
//! budget, or stop) and `GET /vods/{root}/{path}` (the files:
//! `index.m3u8`, segments; a paid VOD's decrypted for its payer) for
//! players.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use vilokanam_api::{VodInfo, WatchRequest, WatchResponse};

use super::{Api, HttpResult};
use crate::node::vod::vod_playlist_path;

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v0/vods", get(list))
        .route("/api/v0/vods/heard", get(heard))
        .route("/api/v0/vods/{root}/car", get(car))
        .route(
            "/api/v0/vods/{root}/pin",
            axum::routing::post(pin).delete(unpin),
        )
        .route(
            "/api/v0/vods/{root}/watch",
            axum::routing::post(watch).delete(unwatch),
        )
        .route("/vods/{root}/{*path}", get(file))
}

fn info(r: vilokanam_storage::VodRecord) -> VodInfo {
    VodInfo {
        playlist: vod_playlist_path(&r.root),
        signed: !r.signature.is_empty(),
        ipfs_pinned: r.ipfs_pinned,
        root: r.root,
        stream: r.stream,
        title: r.title,
        duration_ms: r.duration_ms,
        segments: r.segments,
        bytes: r.bytes,
        created_ms: r.created_ms,
        price_per_sec: (r.price_per_sec > 0).then(|| r.price_per_sec.to_string()),
    }
}

/// Pays for a paid VOD from the request's budget (a channel on the chain);
/// nothing for a free one.
async fn watch(
    State(api): State<Api>,
    Path(root): Path<String>,
    body: Option<Json<WatchRequest>>,
) -> HttpResult<Json<WatchResponse>> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let (cap, budget) = super::streams::watch_terms(&req)?;
    let paid = api.node.watch_vod(&root, cap, budget).await?;
    Ok(Json(WatchResponse {
        playlist: vod_playlist_path(&root),
        stream: paid.map(|p| p.stream.to_string()).unwrap_or_default(),
    }))
}

async fn unwatch(State(api): State<Api>, Path(root): Path<String>) -> HttpResult<()> {
    api.node.unwatch_vod(&root).await?;
    Ok(())
}

async fn list(State(api): State<Api>) -> HttpResult<Json<Vec<VodInfo>>> {
    Ok(Json(api.node.vods()?.into_iter().map(info).collect()))
}

/// VODs other creators announced (signed records; not necessarily held).
async fn heard(State(api): State<Api>) -> HttpResult<Json<Vec<VodInfo>>> {
    Ok(Json(api.node.heard_vods()?.into_iter().map(info).collect()))
}

/// Fetches every block of the VOD this node lacks from peers and keeps it.
async fn pin(State(api): State<Api>, Path(root): Path<String>) -> HttpResult<Json<VodInfo>> {
    Ok(Json(info(api.node.pin_vod(&root).await?)))
}

async fn unpin(State(api): State<Api>, Path(root): Path<String>) -> HttpResult<()> {
    api.node.unpin_vod(&root).await?;
    Ok(())
}

async fn file(
    State(api): State<Api>,
    Path((root, path)): Path<(String, String)>,
    request: HeaderMap,
) -> HttpResult<Response> {
    if api.node.is_paid_vod(&root).await? {
        super::refuse_foreign_for_paid(&request, "this VOD")?;
    }
    let body = api.node.vod_media(&root, &path).await?;
    let kind = if path.ends_with(".m3u8") {
        "application/vnd.apple.mpegurl"
    } else if path.ends_with(".ts") {
        "video/mp2t"
    } else {
        "application/octet-stream"
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    // Content-addressed: a VOD never changes. Private: a paid VOD's
    // segments are served decrypted to the one who paid.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    Ok((headers, body).into_response())
}

async fn car(State(api): State<Api>, Path(root): Path<String>) -> HttpResult<Response> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    api.node.vod_car(&root, tx).await?;
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| {
            (
                item.map(axum::body::Bytes::from)
                    .map_err(std::io::Error::other),
                rx,
            )
        })
    });
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.ipld.car; version=1"),
    );
    Ok((headers, Body::from_stream(stream)).into_response())
}
