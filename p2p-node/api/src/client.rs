//! [`ApiClient`]: the one typed client of the daemon's HTTP API.

use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::types::*;

/// Why a call to the daemon failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No answer: the daemon is not running there, or the connection broke.
    #[error("{what}: is the daemon running at {base}? (vilokanam daemon): {reason}")]
    Unreachable {
        /// The call.
        what: String,
        /// The daemon's base URL.
        base: String,
        /// The transport error.
        reason: String,
    },
    /// The daemon answered with an error status.
    #[error("{what}: daemon answered {status}: {message}")]
    Status {
        /// The call.
        what: String,
        /// HTTP status code.
        status: u16,
        /// The daemon's error message.
        message: String,
    },
    /// The answer could not be decoded.
    #[error("{what}: cannot decode the daemon's answer: {reason}")]
    Decode {
        /// The call.
        what: String,
        /// Why.
        reason: String,
    },
}

impl ApiError {
    /// The HTTP status, for an error answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Client of a running daemon's API.
#[derive(Clone, Debug)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
}

/// Longest a call may take (a segment upload of 8 MiB included).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The timeout of whole-VOD transfers (export, pin): a day; they are
/// watched by their progress, not by a total deadline.
const LONG_TRANSFER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl ApiClient {
    /// Client of the daemon at `addr` (`host:port`).
    pub fn new(addr: &str) -> Self {
        ApiClient {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .timeout(CALL_TIMEOUT)
                .build()
                .unwrap_or_default(),
        }
    }

    /// Base URL (`http://host:port`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Absolute URL of `path` on this daemon.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<reqwest::Response, ApiError> {
        let resp = req.send().await.map_err(|e| ApiError::Unreachable {
            what: what.to_owned(),
            base: self.base.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&body)
            .map(|b| b.error)
            .unwrap_or(body);
        Err(ApiError::Status {
            what: what.to_owned(),
            status: status.as_u16(),
            message,
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, ApiError> {
        let resp = self.send(req, what).await?;
        let bytes = resp.bytes().await.map_err(|e| ApiError::Unreachable {
            what: what.to_owned(),
            base: self.base.clone(),
            reason: e.to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            what: what.to_owned(),
            reason: e.to_string(),
        })
    }

    async fn text(&self, req: reqwest::RequestBuilder, what: &str) -> Result<String, ApiError> {
        let resp = self.send(req, what).await?;
        resp.text().await.map_err(|e| ApiError::Decode {
            what: what.to_owned(),
            reason: e.to_string(),
        })
    }

    /// `GET /api/v0/id`.
    pub async fn id(&self) -> Result<IdResponse, ApiError> {
        self.json(self.http.get(self.url("/api/v0/id")), "reading the node id")
            .await
    }

    /// `GET /api/v0/peers`.
    pub async fn peers(&self) -> Result<Vec<PeerView>, ApiError> {
        self.json(self.http.get(self.url("/api/v0/peers")), "listing peers")
            .await
    }

    /// `GET /api/v0/stats`.
    pub async fn stats(&self) -> Result<NodeStats, ApiError> {
        self.json(self.http.get(self.url("/api/v0/stats")), "reading stats")
            .await
    }

    /// `GET /api/v0/streams`.
    pub async fn streams(&self) -> Result<Vec<StreamInfo>, ApiError> {
        self.json(
            self.http.get(self.url("/api/v0/streams")),
            "listing streams",
        )
        .await
    }

    /// `GET /api/v0/streams/{stream}`.
    pub async fn stream(&self, stream: &str) -> Result<StreamInfo, ApiError> {
        self.json(
            self.http
                .get(self.url(&format!("/api/v0/streams/{stream}"))),
            "reading a stream",
        )
        .await
    }

    /// `POST /api/v0/watch/{stream}`; returns the playlist URL.
    pub async fn watch(&self, stream: &str) -> Result<String, ApiError> {
        let r: WatchResponse = self
            .json(
                self.http.post(self.url(&format!("/api/v0/watch/{stream}"))),
                "watching",
            )
            .await?;
        Ok(self.url(&r.playlist))
    }

    /// `POST /api/v0/watch/{stream}` with a body (e.g. a price cap);
    /// returns the playlist URL.
    pub async fn watch_with(&self, stream: &str, req: &WatchRequest) -> Result<String, ApiError> {
        let r: WatchResponse = self
            .json(
                self.http
                    .post(self.url(&format!("/api/v0/watch/{stream}")))
                    .json(req),
                "watching",
            )
            .await?;
        Ok(self.url(&r.playlist))
    }

    /// `GET /api/v0/spending`.
    pub async fn spending(&self) -> Result<Vec<crate::SpendingInfo>, ApiError> {
        self.json(
            self.http.get(self.url("/api/v0/spending")),
            "reading spending",
        )
        .await
    }

    /// `GET /api/v0/earnings`.
    pub async fn earnings(&self) -> Result<Vec<crate::EarningInfo>, ApiError> {
        self.json(
            self.http.get(self.url("/api/v0/earnings")),
            "reading earnings",
        )
        .await
    }

    /// `GET /api/v0/bandwidth`.
    pub async fn bandwidth(&self) -> Result<crate::BandwidthInfo, ApiError> {
        self.json(
            self.http.get(self.url("/api/v0/bandwidth")),
            "reading bandwidth",
        )
        .await
    }

    /// `POST /api/v0/earnings/claim`: claims every held voucher now;
    /// returns the planck claimed.
    pub async fn claim(&self) -> Result<String, ApiError> {
        self.json(
            self.http.post(self.url("/api/v0/earnings/claim")),
            "claiming",
        )
        .await
    }

    /// `DELETE /api/v0/watch/{stream}`.
    pub async fn unwatch(&self, stream: &str) -> Result<(), ApiError> {
        self.send(
            self.http
                .delete(self.url(&format!("/api/v0/watch/{stream}"))),
            "unwatching",
        )
        .await
        .map(|_| ())
    }

    /// `POST /api/v0/publish/{name}/start`.
    pub async fn start(&self, name: &str, req: &StartRequest) -> Result<StartResponse, ApiError> {
        self.json(
            self.http
                .post(self.url(&format!("/api/v0/publish/{name}/start")))
                .json(req),
            "starting the stream",
        )
        .await
    }

    /// `POST /api/v0/publish/{name}/segment`.
    pub async fn segment(
        &self,
        name: &str,
        query: &SegmentQuery,
        data: Bytes,
    ) -> Result<SegmentResponse, ApiError> {
        self.json(
            self.http
                .post(self.url(&format!("/api/v0/publish/{name}/segment")))
                .query(query)
                .body(data),
            "publishing a segment",
        )
        .await
    }

    /// `POST /api/v0/publish/{name}/part`.
    pub async fn part(
        &self,
        name: &str,
        query: &PartQuery,
        data: Bytes,
    ) -> Result<PartResponse, ApiError> {
        self.json(
            self.http
                .post(self.url(&format!("/api/v0/publish/{name}/part")))
                .query(query)
                .body(data),
            "publishing a part",
        )
        .await
    }

    /// `POST /api/v0/publish/{name}/end`.
    pub async fn end(&self, name: &str) -> Result<(), ApiError> {
        self.send(
            self.http
                .post(self.url(&format!("/api/v0/publish/{name}/end"))),
            "ending the stream",
        )
        .await
        .map(|_| ())
    }

    /// URL of the live playlist of `stream` on this node.
    pub fn playlist_url(&self, stream: &str) -> String {
        self.url(&format!("/streams/{stream}/live.m3u8"))
    }

    /// The live playlist text.
    pub async fn playlist(&self, stream: &str) -> Result<String, ApiError> {
        self.text(
            self.http.get(self.playlist_url(stream)),
            "reading the playlist",
        )
        .await
    }

    /// One segment's bytes; `None` if the node does not hold it.
    pub async fn segment_file(&self, stream: &str, seq: u64) -> Result<Option<Bytes>, ApiError> {
        let what = "reading a segment";
        match self
            .send(
                self.http
                    .get(self.url(&format!("/streams/{stream}/{seq}.ts"))),
                what,
            )
            .await
        {
            Ok(r) => r.bytes().await.map(Some).map_err(|e| ApiError::Decode {
                what: what.to_owned(),
                reason: e.to_string(),
            }),
            Err(ApiError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /api/v0/vods`: the VODs the node holds, newest first.
    pub async fn vods(&self) -> Result<Vec<crate::VodInfo>, ApiError> {
        self.json(self.http.get(self.url("/api/v0/vods")), "listing VODs")
            .await
    }

    /// `GET /api/v0/vods/heard`: VODs other creators announced (their
    /// signed records), newest first; not necessarily held here.
    pub async fn heard_vods(&self) -> Result<Vec<crate::VodInfo>, ApiError> {
        self.json(
            self.http.get(self.url("/api/v0/vods/heard")),
            "listing announced VODs",
        )
        .await
    }

    /// URL of a VOD's playlist on this node.
    pub fn vod_url(&self, root: &str) -> String {
        self.url(&format!("/vods/{root}/index.m3u8"))
    }

    /// A file of a VOD (`index.m3u8`, `000/000000.ts`).
    pub async fn vod_file(&self, root: &str, path: &str) -> Result<Bytes, ApiError> {
        let what = "reading a VOD file";
        let r = self
            .send(
                self.http.get(self.url(&format!("/vods/{root}/{path}"))),
                what,
            )
            .await?;
        r.bytes().await.map_err(|e| ApiError::Decode {
            what: what.to_owned(),
            reason: e.to_string(),
        })
    }

    /// `POST /api/v0/vods/{root}/pin`: the node fetches every block of the
    /// VOD it lacks from its peers and keeps them.
    pub async fn vod_pin(&self, root: &str) -> Result<crate::VodInfo, ApiError> {
        // Fetching a whole VOD from peers takes as long as it takes: no
        // 30 s total (the server gives up on peers that do not answer).
        self.json(
            self.http
                .post(self.url(&format!("/api/v0/vods/{root}/pin")))
                .timeout(LONG_TRANSFER),
            "pinning a VOD",
        )
        .await
    }

    /// `DELETE /api/v0/vods/{root}/pin`: forget the VOD's record.
    pub async fn vod_unpin(&self, root: &str) -> Result<(), ApiError> {
        self.send(
            self.http
                .delete(self.url(&format!("/api/v0/vods/{root}/pin"))),
            "unpinning a VOD",
        )
        .await
        .map(|_| ())
    }

    /// `POST /api/v0/vods/{root}/watch`: for a paid VOD, opens a channel
    /// from the request's budget (as [`ApiClient::watch_with`] does for a
    /// live stream); nothing to pay for a free one. Returns the playlist URL
    /// and, for a paid VOD, its stream.
    pub async fn vod_watch(
        &self,
        root: &str,
        req: &WatchRequest,
    ) -> Result<WatchResponse, ApiError> {
        let mut r: WatchResponse = self
            .json(
                self.http
                    .post(self.url(&format!("/api/v0/vods/{root}/watch")))
                    .json(req),
                "watching a VOD",
            )
            .await?;
        r.playlist = self.url(&r.playlist);
        Ok(r)
    }

    /// `DELETE /api/v0/vods/{root}/watch`: stops paying for a paid VOD.
    pub async fn vod_unwatch(&self, root: &str) -> Result<(), ApiError> {
        self.send(
            self.http
                .delete(self.url(&format!("/api/v0/vods/{root}/watch"))),
            "ending a VOD's payments",
        )
        .await
        .map(|_| ())
    }

    /// `POST /api/v0/streams/{stream}/chat/join`.
    pub async fn chat_join(&self, stream: &str) -> Result<(), ApiError> {
        self.send(
            self.http
                .post(self.url(&format!("/api/v0/streams/{stream}/chat/join"))),
            "joining a chat",
        )
        .await
        .map(|_| ())
    }

    /// `DELETE /api/v0/streams/{stream}/chat/join`.
    pub async fn chat_leave(&self, stream: &str) -> Result<(), ApiError> {
        self.send(
            self.http
                .delete(self.url(&format!("/api/v0/streams/{stream}/chat/join"))),
            "leaving a chat",
        )
        .await
        .map(|_| ())
    }

    /// `GET /api/v0/streams/{stream}/chat`.
    pub async fn chat(&self, stream: &str) -> Result<ChatView, ApiError> {
        self.json(
            self.http
                .get(self.url(&format!("/api/v0/streams/{stream}/chat"))),
            "reading a chat",
        )
        .await
    }

    /// `POST /api/v0/streams/{stream}/chat`.
    pub async fn chat_send(&self, stream: &str, text: &str) -> Result<ChatMessageInfo, ApiError> {
        self.json(
            self.http
                .post(self.url(&format!("/api/v0/streams/{stream}/chat")))
                .json(&ChatSend { text: text.into() }),
            "sending a chat message",
        )
        .await
    }

    /// `POST /api/v0/streams/{stream}/chat/moderate`.
    pub async fn chat_moderate(
        &self,
        stream: &str,
        action: &ChatModerate,
    ) -> Result<ChatActionInfo, ApiError> {
        self.json(
            self.http
                .post(self.url(&format!("/api/v0/streams/{stream}/chat/moderate")))
                .json(action),
            "moderating a chat",
        )
        .await
    }

    /// `GET /api/v0/streams/{stream}/chat/events`: the chat's events as
    /// they happen (server-sent events), until the daemon stops or the
    /// returned stream is dropped.
    pub async fn chat_events(
        &self,
        stream: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<ChatEvent, ApiError>>, ApiError> {
        use futures::StreamExt;
        let resp = self
            .send(
                reqwest::Client::new()
                    .get(self.url(&format!("/api/v0/streams/{stream}/chat/events"))),
                "following a chat",
            )
            .await?;
        Ok(sse_events(resp.bytes_stream()).boxed())
    }

    /// `GET /api/v0/profile`: this node's user's profile.
    pub async fn profile(&self) -> Result<ProfileInfo, ApiError> {
        self.json(
            self.http.get(self.url("/api/v0/profile")),
            "reading the profile",
        )
        .await
    }

    /// `PUT /api/v0/profile`.
    pub async fn set_profile(&self, set: &ProfileSet) -> Result<ProfileInfo, ApiError> {
        self.json(
            self.http.put(self.url("/api/v0/profile")).json(set),
            "setting the profile",
        )
        .await
    }

    /// `GET /api/v0/profiles/{key}`: a creator's profile (held, or found
    /// on the DHT).
    pub async fn profile_of(&self, key: &str) -> Result<ProfileInfo, ApiError> {
        self.json(
            self.http.get(self.url(&format!("/api/v0/profiles/{key}"))),
            "resolving a profile",
        )
        .await
    }

    /// `POST /api/v0/avatar`: stores an image, returns its CID.
    pub async fn add_avatar(&self, image: Vec<u8>) -> Result<AvatarInfo, ApiError> {
        self.json(
            self.http.post(self.url("/api/v0/avatar")).body(image),
            "storing an avatar",
        )
        .await
    }

    /// `GET /api/v0/avatars/{cid}`: an avatar's bytes (fetched from peers
    /// and checked against the CID).
    pub async fn avatar(&self, cid: &str) -> Result<Vec<u8>, ApiError> {
        let resp = self
            .send(
                self.http.get(self.url(&format!("/api/v0/avatars/{cid}"))),
                "fetching an avatar",
            )
            .await?;
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| ApiError::Decode {
                what: "an avatar".into(),
                reason: e.to_string(),
            })
    }

    /// `POST /api/v0/follows/{key}` (follow) or `DELETE` (unfollow).
    pub async fn follow(&self, key: &str, follow: bool) -> Result<FollowInfo, ApiError> {
        let url = self.url(&format!("/api/v0/follows/{key}"));
        let req = if follow {
            self.http.post(url)
        } else {
            self.http.delete(url)
        };
        self.json(req, if follow { "following" } else { "unfollowing" })
            .await
    }

    /// `GET /api/v0/follows` (this node's user) or `GET
    /// /api/v0/users/{key}/follows`.
    pub async fn follows(&self, user: Option<&str>) -> Result<FollowsView, ApiError> {
        let path = match user {
            Some(u) => format!("/api/v0/users/{u}/follows"),
            None => "/api/v0/follows".into(),
        };
        self.json(self.http.get(self.url(&path)), "reading follows")
            .await
    }

    /// `GET /api/v0/users/{key}/followers`.
    pub async fn followers(&self, key: &str) -> Result<FollowersView, ApiError> {
        self.json(
            self.http
                .get(self.url(&format!("/api/v0/users/{key}/followers"))),
            "reading followers",
        )
        .await
    }

    /// `GET /api/v0/search?q=…&tag=…&limit=…`.
    pub async fn search(
        &self,
        text: Option<&str>,
        tag: Option<&str>,
        limit: usize,
    ) -> Result<SearchResults, ApiError> {
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(t) = text {
            query.push(("q", t.to_owned()));
        }
        if let Some(t) = tag {
            query.push(("tag", t.to_owned()));
        }
        self.json(
            self.http.get(self.url("/api/v0/search")).query(&query),
            "searching",
        )
        .await
    }

    /// `GET /api/v0/feed`.
    pub async fn feed(&self) -> Result<FeedView, ApiError> {
        self.json(self.http.get(self.url("/api/v0/feed")), "reading the feed")
            .await
    }

    /// `GET /api/v0/feed/events`: notifications as they happen, until the
    /// daemon stops or the returned stream is dropped.
    pub async fn feed_events(
        &self,
    ) -> Result<futures::stream::BoxStream<'static, Result<FeedEvent, ApiError>>, ApiError> {
        use futures::StreamExt;
        let resp = self
            .send(
                reqwest::Client::new().get(self.url("/api/v0/feed/events")),
                "following the feed",
            )
            .await?;
        Ok(sse_events(resp.bytes_stream()).boxed())
    }

    /// `GET /api/v0/vods/{root}/car`: the VOD as a CARv1, streamed.
    pub async fn vod_car(&self, root: &str) -> Result<reqwest::Response, ApiError> {
        self.send(
            self.http
                .get(self.url(&format!("/api/v0/vods/{root}/car")))
                .timeout(LONG_TRANSFER),
            "exporting a VOD",
        )
        .await
    }

    /// `GET /streams/{stream}/chunks`.
    pub async fn chunks(&self, stream: &str) -> Result<Vec<ChunkInfo>, ApiError> {
        self.json(
            self.http
                .get(self.url(&format!("/streams/{stream}/chunks"))),
            "listing chunks",
        )
        .await
    }

    /// `GET /metrics` (Prometheus text).
    pub async fn metrics_text(&self) -> Result<String, ApiError> {
        self.text(self.http.get(self.url("/metrics")), "reading metrics")
            .await
    }

    /// Sum of every sample of a Prometheus metric whose name starts with
    /// `name` and whose labels contain all of `labels`.
    pub async fn metric(&self, name: &str, labels: &[&str]) -> Result<f64, ApiError> {
        Ok(sum_metric(&self.metrics_text().await?, name, labels))
    }

    /// A raw request (for tests of error paths): status and body text.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(u16, String), ApiError> {
        let r = self
            .http
            .request(method, self.url(path))
            .body(body)
            .send()
            .await
            .map_err(|e| ApiError::Unreachable {
                what: path.to_owned(),
                base: self.base.clone(),
                reason: e.to_string(),
            })?;
        let status = r.status().as_u16();
        Ok((status, r.text().await.unwrap_or_default()))
    }
}

/// Sums samples of `name` (prefix match on the sample name) whose label
/// text contains every string in `labels`.
pub fn sum_metric(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(name))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Longest server-sent event line the client reads.
const MAX_SSE_LINE: usize = 64 * 1024;

/// Parses `data:` lines of a server-sent event stream as JSON values.
fn sse_events<T: DeserializeOwned + Send + 'static>(
    bytes: impl futures::Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
) -> impl futures::Stream<Item = Result<T, ApiError>> + Send + 'static {
    use futures::StreamExt;
    // (bytes, buffer, ended, inside an event of another type than the
    // default: its data is skipped, e.g. `lagged`)
    let state = (Box::pin(bytes), Vec::<u8>::new(), false, false);
    futures::stream::unfold(state, |(mut bytes, mut buf, done, mut other)| async move {
        if done {
            return None;
        }
        loop {
            if let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim_end();
                if line.is_empty() {
                    other = false;
                    continue;
                }
                if let Some(name) = line.strip_prefix("event:") {
                    other = name.trim() != "message";
                    continue;
                }
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                if other {
                    continue;
                }
                let ev = serde_json::from_str(data.trim()).map_err(|e| ApiError::Decode {
                    what: "a chat event".into(),
                    reason: e.to_string(),
                });
                return Some((ev, (bytes, buf, false, other)));
            }
            if buf.len() > MAX_SSE_LINE {
                let e = ApiError::Decode {
                    what: "a chat event".into(),
                    reason: format!("a line longer than {MAX_SSE_LINE} bytes"),
                };
                return Some((Err(e), (bytes, buf, true, other)));
            }
            match bytes.next().await {
                Some(Ok(b)) => buf.extend_from_slice(&b),
                Some(Err(e)) => {
                    let e = ApiError::Decode {
                        what: "a chat event".into(),
                        reason: e.to_string(),
                    };
                    return Some((Err(e), (bytes, buf, true, other)));
                }
                None => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_by_prefix_and_labels() {
        let text = "# HELP x\nvilokanam_a_total{kind=\"chunk\",verdict=\"accept\"} 3\nvilokanam_a_total{kind=\"chunk\",verdict=\"reject\"} 2\nvilokanam_b 7\n";
        assert_eq!(sum_metric(text, "vilokanam_a", &[]), 5.0);
        assert_eq!(sum_metric(text, "vilokanam_a", &["reject"]), 2.0);
        assert_eq!(sum_metric(text, "vilokanam_b", &[]), 7.0);
    }

    #[tokio::test]
    async fn a_missing_daemon_is_a_clear_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = ApiClient::new(&format!("127.0.0.1:{port}"))
            .id()
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Unreachable { .. }));
        assert!(e.to_string().contains("is the daemon running"), "{e}");
    }

    #[tokio::test]
    async fn server_sent_events_are_parsed_and_other_event_types_skipped() {
        use futures::StreamExt;
        let body = "data: {\"type\":\"message\",\"stream\":\"s\",\"sender\":\"ab\",\"seq\":1,\"sent_ms\":2,\"text\":\"hi\",\"from_history\":false}\n\n\
                    event: lagged\ndata: 3\n\n: keep-alive\n\n\
                    data: {\"type\":\"moderation\",\"stream\":\"s\",\"issuer\":\"cd\",\"issued_ms\":5,\"action\":\"slow_mode\",\"secs\":10}\n\n";
        // Split anywhere: lines cross chunk boundaries.
        let chunks: Vec<reqwest::Result<Bytes>> = body
            .as_bytes()
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let evs: Vec<Result<ChatEvent, ApiError>> =
            sse_events(futures::stream::iter(chunks)).collect().await;
        assert_eq!(evs.len(), 2, "{evs:?}");
        assert!(matches!(&evs[0], Ok(ChatEvent::Message(m)) if m.text == "hi" && m.seq == 1));
        assert!(matches!(
            &evs[1],
            Ok(ChatEvent::Moderation(a)) if a.action == ChatModerate::SlowMode { secs: 10 }
        ));
        // A line without an end, longer than the cap: an error, then the end.
        let long = vec![Ok(Bytes::from(vec![b'x'; MAX_SSE_LINE + 10]))];
        let evs: Vec<Result<ChatEvent, ApiError>> =
            sse_events(futures::stream::iter(long)).collect().await;
        assert_eq!(evs.len(), 1);
        assert!(evs[0].is_err());
    }
}
