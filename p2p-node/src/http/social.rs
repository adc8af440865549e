//! Profiles, follows and the feed: `GET|PUT /api/v0/profile`, `GET
//! /api/v0/profiles/{key}`, `POST /api/v0/avatar` (the image as the body),
//! `GET /api/v0/avatars/{cid}`, `POST|DELETE /api/v0/follows/{key}`, `GET
//! /api/v0/follows`, `GET /api/v0/users/{key}/follows`, `GET
//! /api/v0/users/{key}/followers`, `GET /api/v0/feed` and `GET
//! /api/v0/feed/events` (server-sent events, one JSON [`FeedEvent`] each).

use std::convert::Infallible;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::header;
use axum::response::sse::{Event, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use vilokanam_api::{
    AvatarInfo, FeedEvent, FeedView, FollowInfo, FollowersView, FollowsView, ProfileInfo,
    ProfileSet, SearchResults,
};

use super::{Api, HttpResult};
use crate::node::social::MAX_AVATAR_BYTES;

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v0/profile", get(own_profile).put(set_profile))
        .route("/api/v0/profiles/{key}", get(profile))
        .route(
            "/api/v0/avatar",
            post(add_avatar).layer(DefaultBodyLimit::max(MAX_AVATAR_BYTES + 1)),
        )
        .route("/api/v0/avatars/{cid}", get(avatar))
        .route("/api/v0/follows", get(follows))
        .route("/api/v0/follows/{key}", post(follow).delete(unfollow))
        .route("/api/v0/users/{key}/follows", get(follows_of))
        .route("/api/v0/users/{key}/followers", get(followers_of))
        .route("/api/v0/feed", get(feed))
        .route("/api/v0/feed/events", get(feed_events))
        .route("/api/v0/search", get(search))
}

/// `GET /api/v0/search` parameters.
#[derive(serde::Deserialize)]
struct SearchParams {
    q: Option<String>,
    tag: Option<String>,
    limit: Option<usize>,
}

async fn search(
    State(api): State<Api>,
    axum::extract::Query(p): axum::extract::Query<SearchParams>,
) -> HttpResult<Json<SearchResults>> {
    Ok(Json(
        api.node.search(p.q, p.tag, p.limit.unwrap_or(20)).await?,
    ))
}

async fn own_profile(State(api): State<Api>) -> HttpResult<Json<ProfileInfo>> {
    Ok(Json(api.node.profile().await?))
}

async fn set_profile(
    State(api): State<Api>,
    Json(body): Json<ProfileSet>,
) -> HttpResult<Json<ProfileInfo>> {
    Ok(Json(api.node.set_profile(&body).await?))
}

async fn profile(State(api): State<Api>, Path(key): Path<String>) -> HttpResult<Json<ProfileInfo>> {
    Ok(Json(api.node.profile_of(&key).await?))
}

async fn add_avatar(State(api): State<Api>, body: Bytes) -> HttpResult<Json<AvatarInfo>> {
    Ok(Json(api.node.add_avatar(body.to_vec()).await?))
}

async fn avatar(State(api): State<Api>, Path(cid): Path<String>) -> HttpResult<impl IntoResponse> {
    let (bytes, content_type) = api.node.avatar(&cid).await?;
    Ok(([(header::CONTENT_TYPE, content_type)], bytes))
}

async fn follows(State(api): State<Api>) -> HttpResult<Json<FollowsView>> {
    Ok(Json(api.node.follows().await?))
}

async fn follow(State(api): State<Api>, Path(key): Path<String>) -> HttpResult<Json<FollowInfo>> {
    Ok(Json(api.node.follow(&key, true).await?))
}

async fn unfollow(State(api): State<Api>, Path(key): Path<String>) -> HttpResult<Json<FollowInfo>> {
    Ok(Json(api.node.follow(&key, false).await?))
}

async fn follows_of(
    State(api): State<Api>,
    Path(key): Path<String>,
) -> HttpResult<Json<FollowsView>> {
    Ok(Json(api.node.follows_of(&key).await?))
}

async fn followers_of(
    State(api): State<Api>,
    Path(key): Path<String>,
) -> HttpResult<Json<FollowersView>> {
    Ok(Json(api.node.followers_of(&key).await?))
}

async fn feed(State(api): State<Api>) -> Json<FeedView> {
    Json(api.node.feed().await)
}

/// Feed notifications as server-sent events. A listener that falls more
/// than the buffer behind gets a `lagged` event and goes on; the stream
/// ends when the node or the API stops.
async fn feed_events(State(api): State<Api>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (rx, stop) = api.node.feed_events();
    super::sse_from(rx, stop, api.closing.subscribe(), |ev: FeedEvent| {
        Some(Event::default().data(serde_json::to_string(&ev).unwrap_or_default()))
    })
}
