//! HTTP client of the daemon's API, used by the CLI subcommands.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::api::{SegmentResponse, StreamInfo};

/// Client of a running daemon.
#[derive(Clone, Debug)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// Client of the daemon at `addr` (`host:port`).
    pub fn new(addr: &str) -> Self {
        ApiClient {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    /// Base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn json<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T> {
        let resp = req.send().await.with_context(|| {
            format!(
                "{what}: is the daemon running at {}? (vilokanam daemon)",
                self.base
            )
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let msg = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or(body);
            bail!("{what}: daemon answered {status}: {msg}");
        }
        resp.json()
            .await
            .with_context(|| format!("{what}: decoding the answer"))
    }

    /// Starts publishing `name`; returns the stream id.
    pub async fn start(&self, name: &str, title: &str, tags: &[String]) -> Result<String> {
        let v: serde_json::Value = self
            .json(
                self.http
                    .post(format!("{}/api/v0/publish/{name}/start", self.base))
                    .json(&serde_json::json!({"title": title, "tags": tags, "codec": "mpegts"})),
                "starting the stream",
            )
            .await?;
        Ok(v["stream"].as_str().unwrap_or_default().to_owned())
    }

    /// Publishes one segment.
    pub async fn segment(
        &self,
        name: &str,
        duration_us: u32,
        discontinuity: bool,
        data: Bytes,
    ) -> Result<SegmentResponse> {
        self.json(
            self.http
                .post(format!(
                    "{}/api/v0/publish/{name}/segment?duration_us={duration_us}&discontinuity={discontinuity}",
                    self.base
                ))
                .body(data),
            "publishing a segment",
        )
        .await
    }

    /// Announces the end of `name`.
    pub async fn end(&self, name: &str) -> Result<()> {
        let resp = self
            .http
            .post(format!("{}/api/v0/publish/{name}/end", self.base))
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("ending the stream: daemon answered {}", resp.status());
        }
        Ok(())
    }

    /// Follows a stream; returns the playlist URL.
    pub async fn watch(&self, stream: &str) -> Result<String> {
        let v: serde_json::Value = self
            .json(
                self.http
                    .post(format!("{}/api/v0/watch/{stream}", self.base)),
                "watching",
            )
            .await?;
        Ok(format!(
            "{}{}",
            self.base,
            v["playlist"].as_str().unwrap_or_default()
        ))
    }

    /// Streams known to the daemon.
    pub async fn streams(&self) -> Result<Vec<StreamInfo>> {
        self.json(
            self.http.get(format!("{}/api/v0/streams", self.base)),
            "listing streams",
        )
        .await
    }

    /// Any JSON endpoint (for `id`, `peers`).
    pub async fn get(&self, path: &str) -> Result<serde_json::Value> {
        self.json(self.http.get(format!("{}{path}", self.base)), path)
            .await
    }
}
