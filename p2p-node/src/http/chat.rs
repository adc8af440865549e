//! Chat: `POST|DELETE /api/v0/streams/{stream}/chat/join`, `GET|POST
//! /api/v0/streams/{stream}/chat` (the recent messages; send one),
//! `POST /api/v0/streams/{stream}/chat/moderate` and `GET
//! /api/v0/streams/{stream}/chat/events` (server-sent events, one JSON
//! [`ChatEvent`] each).

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use vilokanam_api::{ChatActionInfo, ChatEvent, ChatMessageInfo, ChatModerate, ChatSend, ChatView};

use super::{Api, HttpResult};

pub(super) fn routes() -> Router<Api> {
    Router::new()
        .route("/api/v0/streams/{stream}/chat", get(view).post(send))
        .route(
            "/api/v0/streams/{stream}/chat/join",
            post(join).delete(leave),
        )
        .route("/api/v0/streams/{stream}/chat/moderate", post(moderate))
        .route("/api/v0/streams/{stream}/chat/events", get(events))
}

async fn join(State(api): State<Api>, Path(stream): Path<String>) -> HttpResult<StatusCode> {
    api.node.chat_join(&stream).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn leave(State(api): State<Api>, Path(stream): Path<String>) -> HttpResult<StatusCode> {
    api.node.chat_leave(&stream).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn view(State(api): State<Api>, Path(stream): Path<String>) -> HttpResult<Json<ChatView>> {
    Ok(Json(api.node.chat_view(&stream).await?))
}

async fn send(
    State(api): State<Api>,
    Path(stream): Path<String>,
    Json(body): Json<ChatSend>,
) -> HttpResult<Json<ChatMessageInfo>> {
    Ok(Json(api.node.chat_send(&stream, &body.text).await?))
}

async fn moderate(
    State(api): State<Api>,
    Path(stream): Path<String>,
    Json(body): Json<ChatModerate>,
) -> HttpResult<Json<ChatActionInfo>> {
    Ok(Json(api.node.chat_moderate(&stream, &body).await?))
}

/// The chat's events as server-sent events (404 unless this node is in
/// the chat). A listener that falls more than the buffer behind gets a
/// `lagged` event (with how many it missed) and goes on; the stream ends
/// when the node or the API stops.
async fn events(
    State(api): State<Api>,
    Path(stream): Path<String>,
) -> HttpResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Reading changes nothing: join first (POST …/chat/join, refused to
    // pages of other origins), then follow.
    let id = api.node.chat_joined(&stream).await?;
    let (rx, stop) = api.node.chat_events();
    Ok(super::sse_from(
        rx,
        stop,
        api.closing.subscribe(),
        move |(s, ev)| {
            (s == id).then(|| {
                Event::default().data(serde_json::to_string::<ChatEvent>(&ev).unwrap_or_default())
            })
        },
    ))
}
