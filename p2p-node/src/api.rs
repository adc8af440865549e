//! The daemon's local HTTP API (JSON), HLS playback and `/metrics`.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/api/v0/id` | peer id, public key, listen addresses |
//! | GET | `/api/v0/peers` | connected peers with gossipsub and application scores |
//! | GET | `/api/v0/streams` | streams known (announced or followed) |
//! | POST | `/api/v0/watch/{stream}` | follow a stream; returns its playlist URL |
//! | POST | `/api/v0/publish/{name}/start` | start publishing (JSON `{title, tags, codec}`) |
//! | POST | `/api/v0/publish/{name}/segment?duration_us=N[&discontinuity=true]` | publish one MPEG-TS segment (body) |
//! | POST | `/api/v0/publish/{name}/end` | announce the end of the stream |
//! | GET | `/streams/{stream}/live.m3u8` | live HLS playlist (follows the stream if needed) |
//! | GET | `/streams/{stream}/{seq}.ts` | one segment |
//! | GET | `/streams/{stream}/chunks` | chunks held: seq, CID, size, timings |
//! | GET | `/metrics` | Prometheus metrics |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use vilokanam_swarm::wire::MAX_CHUNK_PAYLOAD;
use vilokanam_swarm::{Announcement, Chunk, ChunkCid, ChunkHeader, StreamId};

use crate::daemon::{now_ms, Node, Publishing};
use crate::ingest::ts;

/// An API error: status plus a precise message, rendered as JSON.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

type ApiResult<T> = Result<T, ApiError>;
type AppState = State<Arc<Node>>;

/// Builds the router.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/api/v0/id", get(id))
        .route("/api/v0/peers", get(peers))
        .route("/api/v0/streams", get(streams))
        .route("/api/v0/watch/{stream}", post(watch))
        .route("/api/v0/publish/{name}/start", post(start))
        .route(
            "/api/v0/publish/{name}/segment",
            post(segment).layer(DefaultBodyLimit::max(MAX_CHUNK_PAYLOAD as usize)),
        )
        .route("/api/v0/publish/{name}/end", post(end))
        .route("/streams/{stream}/live.m3u8", get(playlist))
        .route("/streams/{stream}/chunks", get(chunks))
        .route("/streams/{stream}/{file}", get(segment_file))
        .route("/metrics", get(metrics))
        .with_state(node)
}

fn parse_stream(s: &str) -> ApiResult<StreamId> {
    s.parse()
        .map_err(|e| bad(format!("invalid stream id {s:?}: {e}")))
}

fn playlist_path(stream: &StreamId) -> String {
    format!("/streams/{stream}/live.m3u8")
}

#[derive(Serialize)]
struct IdResponse {
    peer_id: String,
    public_key: String,
    listen: Vec<String>,
}

async fn id(State(node): AppState) -> Json<IdResponse> {
    let listen = node
        .listen
        .borrow()
        .iter()
        .map(|a| {
            a.clone()
                .with_p2p(node.peer_id)
                .unwrap_or_else(|a| a)
                .to_string()
        })
        .collect();
    Json(IdResponse {
        peer_id: node.peer_id.to_string(),
        public_key: hex::encode(node.key.verifying_key().to_bytes()),
        listen,
    })
}

async fn peers(State(node): AppState) -> ApiResult<Json<Vec<vilokanam_swarm::PeerInfo>>> {
    Ok(Json(node.client.peers().await.map_err(internal)?))
}

/// One stream in `/api/v0/streams`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct StreamInfo {
    /// Textual stream id.
    pub id: String,
    /// Title from the announcement.
    pub title: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Codec.
    pub codec: Option<String>,
    /// Start time (unix ms).
    pub started_at_ms: Option<u64>,
    /// Highest sequence announced.
    pub last_seq: Option<u64>,
    /// Live (announced recently and not ended).
    pub live: bool,
    /// Ended by its creator.
    pub ended: bool,
    /// Followed by this node.
    pub joined: bool,
    /// Playlist path on this node.
    pub playlist: String,
}

async fn streams(State(node): AppState) -> ApiResult<Json<Vec<StreamInfo>>> {
    let st = node.state.lock().map_err(internal)?;
    let stale = node.config.announce_interval() * 4;
    let mut out: Vec<StreamInfo> = st
        .streams
        .iter()
        .map(|(id, v)| {
            let a = v.announcement.as_ref().map(|a| &a.announcement);
            let ended = a.is_some_and(|a| a.ended);
            StreamInfo {
                id: id.to_string(),
                title: a.map(|a| a.title.clone()),
                tags: a.map(|a| a.tags.clone()).unwrap_or_default(),
                codec: a.map(|a| a.codec.clone()),
                started_at_ms: a.map(|a| a.started_at_ms),
                last_seq: a.and_then(|a| a.last_seq),
                live: !ended && v.heard_at.is_some_and(|t| t.elapsed() < stale),
                ended,
                joined: v.joined,
                playlist: playlist_path(id),
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(out))
}

#[derive(Serialize, Deserialize)]
struct WatchResponse {
    stream: String,
    playlist: String,
}

async fn watch(
    State(node): AppState,
    Path(stream): Path<String>,
) -> ApiResult<Json<WatchResponse>> {
    let stream = parse_stream(&stream)?;
    node.join(&stream).await.map_err(internal)?;
    Ok(Json(WatchResponse {
        playlist: playlist_path(&stream),
        stream: stream.to_string(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StartRequest {
    title: String,
    tags: Vec<String>,
    codec: String,
}

async fn start(
    State(node): AppState,
    Path(name): Path<String>,
    body: Option<Json<StartRequest>>,
) -> ApiResult<Json<WatchResponse>> {
    let req = body.map(|Json(b)| b).unwrap_or_default();
    let stream = StreamId::new(node.key.verifying_key().to_bytes(), name.clone())
        .map_err(|e| bad(e.to_string()))?;
    let record = node.store.stream(&stream.to_string()).map_err(internal)?;
    let announcement = Announcement {
        stream: stream.clone(),
        title: req.title,
        tags: req.tags,
        codec: if req.codec.is_empty() {
            "mpegts".into()
        } else {
            req.codec
        },
        started_at_ms: now_ms(),
        updated_at_ms: now_ms(),
        last_seq: None,
        ended: false,
    };
    announcement.validate().map_err(|e| bad(e.to_string()))?;
    {
        let mut st = node.state.lock().map_err(internal)?;
        let prev = st.publishing.get(&name).map(|p| p.next_seq);
        // A restarted stream continues its sequence (peers and players keep
        // their place) and starts with a discontinuity.
        let next_seq = prev.or(record.as_ref().map(|r| r.next_seq)).unwrap_or(0);
        st.publishing.insert(
            name.clone(),
            Publishing {
                next_seq,
                announcement,
                discontinuity: next_seq > 0,
            },
        );
        let v = node.view(&mut st, &stream);
        v.joined = true;
        v.playlist.on_restart();
    }
    node.client.join(stream.clone()).await.map_err(internal)?;
    node.announce(&name).await.map_err(internal)?;
    Ok(Json(WatchResponse {
        playlist: playlist_path(&stream),
        stream: stream.to_string(),
    }))
}

#[derive(Deserialize)]
struct SegmentQuery {
    duration_us: u32,
    #[serde(default)]
    discontinuity: bool,
}

/// Result of publishing one segment.
#[derive(Serialize, Deserialize, Debug)]
pub struct SegmentResponse {
    /// Sequence number assigned.
    pub seq: u64,
    /// CID of the payload.
    pub cid: String,
    /// Payload size.
    pub size: usize,
}

async fn segment(
    State(node): AppState,
    Path(name): Path<String>,
    Query(q): Query<SegmentQuery>,
    body: Bytes,
) -> ApiResult<Json<SegmentResponse>> {
    let refuse = |e: ApiError| {
        node.metrics.segments_refused.inc();
        e
    };
    if let Err(e) = ts::validate_segment(&body) {
        return Err(refuse(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("segment refused: {e}"),
        )));
    }
    let _order = node.publish_lock.lock().await;
    let (seq, discontinuity, stream) = {
        let st = node.state.lock().map_err(internal)?;
        let p = st.publishing.get(&name).ok_or_else(|| {
            refuse(ApiError(
                StatusCode::CONFLICT,
                format!("stream {name:?} is not started: POST /api/v0/publish/{name}/start first"),
            ))
        })?;
        (
            p.next_seq,
            p.discontinuity || q.discontinuity,
            p.announcement.stream.clone(),
        )
    };
    let header = ChunkHeader {
        stream,
        seq,
        duration_us: q.duration_us,
        cid: ChunkCid::of(&body),
        size: body.len() as u32,
        published_at_ms: now_ms(),
        discontinuity,
    }
    .sign(&node.key)
    .map_err(|e| refuse(bad(format!("segment refused: {e}"))))?;
    let cid = header.header.cid;
    // Persist the next sequence number first: a crash after publishing must
    // never make the restarted stream sign a second chunk for `seq`.
    node.store
        .update_stream(&header.header.stream.to_string(), |r| {
            r.next_seq = seq + 1;
            r.updated_ms = now_ms();
        })
        .map_err(internal)?;
    node.client
        .publish(Chunk {
            header,
            payload: body.clone(),
        })
        .await
        .map_err(internal)?;
    {
        let mut st = node.state.lock().map_err(internal)?;
        if let Some(p) = st.publishing.get_mut(&name) {
            p.next_seq = seq + 1;
            p.discontinuity = false;
        }
    }
    node.metrics.segments_published.inc();
    Ok(Json(SegmentResponse {
        seq,
        cid: cid.to_string(),
        size: body.len(),
    }))
}

async fn end(State(node): AppState, Path(name): Path<String>) -> ApiResult<StatusCode> {
    {
        let mut st = node.state.lock().map_err(internal)?;
        let p = st.publishing.get_mut(&name).ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("stream {name:?} is not published here"),
            )
        })?;
        p.announcement.ended = true;
    }
    node.announce(&name).await.map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn playlist(State(node): AppState, Path(stream): Path<String>) -> ApiResult<Response> {
    let stream = parse_stream(&stream)?;
    node.join(&stream).await.map_err(internal)?;
    let body = {
        let mut st = node.state.lock().map_err(internal)?;
        let prefix = format!("/streams/{stream}/");
        node.view(&mut st, &stream)
            .playlist
            .render(|seq| format!("{prefix}{seq}.ts"))
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/vnd.apple.mpegurl"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    Ok((headers, body).into_response())
}

async fn segment_file(
    State(node): AppState,
    Path((stream, file)): Path<(String, String)>,
) -> ApiResult<Response> {
    let stream = parse_stream(&stream)?;
    let seq: u64 = file
        .strip_suffix(".ts")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no such segment {file:?}")))?;
    let payload = {
        let st = node.state.lock().map_err(internal)?;
        st.streams
            .get(&stream)
            .and_then(|v| v.segments.get(&seq))
            .map(|s| s.chunk.payload.clone())
    };
    let payload = payload.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!("segment {seq} of {stream} is not held here"),
        )
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("video/mp2t"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    Ok((headers, payload).into_response())
}

/// One chunk in `/streams/{id}/chunks`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ChunkInfo {
    /// Sequence number.
    pub seq: u64,
    /// Payload CID.
    pub cid: String,
    /// Payload size.
    pub size: u32,
    /// Media duration (µs).
    pub duration_us: u32,
    /// Creator's publication time (unix ms).
    pub published_at_ms: u64,
    /// When it became playable on this node (unix ms).
    pub ready_at_ms: u64,
}

async fn chunks(
    State(node): AppState,
    Path(stream): Path<String>,
) -> ApiResult<Json<Vec<ChunkInfo>>> {
    let stream = parse_stream(&stream)?;
    let st = node.state.lock().map_err(internal)?;
    let list = st
        .streams
        .get(&stream)
        .map(|v| {
            v.segments
                .values()
                .map(|s| {
                    let h = &s.chunk.header.header;
                    ChunkInfo {
                        seq: h.seq,
                        cid: h.cid.to_string(),
                        size: h.size,
                        duration_us: h.duration_us,
                        published_at_ms: h.published_at_ms,
                        ready_at_ms: s.ready_at_ms,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(list))
}

async fn metrics(State(node): AppState) -> ApiResult<Response> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &node.registry).map_err(internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
