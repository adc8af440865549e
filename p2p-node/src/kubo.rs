//! A small typed client of the Kubo RPC API (`/api/v0`, what `ipfs`
//! talks to its daemon with), on the HTTP stack the node already uses
//! (reqwest). `ipfs-api-backend-hyper` 0.6 no longer resolves (it needs the
//! yanked `core2`; its repository is inactive), so the few calls a VOD
//! needs are written here:
//!
//! - `id` (is it there), `add?only-hash` (what CID it computes),
//! - `block/stat?offline=true` (does it hold a block), `block/get`,
//! - `dag/import` of a CAR (with or without `pin-roots`),
//! - `pin/add?progress=true` (an NDJSON stream of progress), `pin/ls`,
//!   `pin/rm`.
//!
//! [`pin_vod`] puts it together: it sends only the blocks the daemon lacks
//! (so a pin interrupted by a crash or a Ctrl-C resumes without resending
//! what arrived), then pins the root recursively, reporting progress.
//! Errors carry Kubo's own message (`{"Message": …}` bodies, and the
//! `X-Stream-Error` trailer of streamed answers).

use std::time::Duration;

use futures::StreamExt;
use serde::Deserialize;
use vilokanam_api::reqwest;
use vilokanam_storage::unixfs::{car, Cid};

/// Errors of the Kubo RPC client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KuboError {
    /// The daemon could not be reached.
    #[error("IPFS daemon at {url}: {reason}")]
    Unreachable {
        /// Its API URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The daemon answered with an error.
    #[error("IPFS daemon: {call} failed ({status}): {message}")]
    Rpc {
        /// The call.
        call: &'static str,
        /// HTTP status.
        status: u16,
        /// Kubo's message.
        message: String,
    },
    /// The answer was not what Kubo sends.
    #[error("IPFS daemon: unexpected answer to {call}: {reason}")]
    Decode {
        /// The call.
        call: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// A Kubo RPC endpoint, e.g. `http://127.0.0.1:5001`.
#[derive(Clone, Debug)]
pub struct Kubo {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "Message")]
    message: String,
}

/// Progress of a pin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PinProgress {
    /// Blocks the VOD has.
    pub blocks: u64,
    /// Of them, already on the daemon before this run.
    pub present: u64,
    /// Sent by this run.
    pub sent: u64,
    /// Nodes the daemon's `pin/add` reports as fetched (its progress).
    pub pinned_nodes: u64,
}

const BOUNDARY: &str = "vilokanam-car-boundary-7f3a9c";

impl Kubo {
    /// A client of the daemon at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        Kubo {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        }
    }

    fn url(&self, call: &str) -> String {
        format!("{}/api/v0/{call}", self.base)
    }

    async fn post(
        &self,
        call: &'static str,
        query: &[(&str, &str)],
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, KuboError> {
        let mut req = self.http.post(self.url(call)).query(query);
        if let Some(b) = body {
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(b);
        }
        let resp = req.send().await.map_err(|e| KuboError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.message)
            .unwrap_or(text);
        Err(KuboError::Rpc {
            call,
            status: status.as_u16(),
            message,
        })
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        call: &'static str,
        query: &[(&str, &str)],
    ) -> Result<T, KuboError> {
        let resp = self.post(call, query, None).await?;
        let bytes = resp.bytes().await.map_err(|e| KuboError::Decode {
            call,
            reason: e.to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| KuboError::Decode {
            call,
            reason: format!(
                "{e}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ),
        })
    }

    /// The daemon's peer id (`id`).
    pub async fn id(&self) -> Result<String, KuboError> {
        #[derive(Deserialize)]
        struct Id {
            #[serde(rename = "ID")]
            id: String,
        }
        Ok(self.json::<Id>("id", &[]).await?.id)
    }

    /// The root CID the daemon computes for a directory of files, without
    /// storing them (`add?only-hash=true&cid-version=1&raw-leaves=true`):
    /// `files` are `(path, bytes)` with `/`-separated paths under `dir`.
    pub async fn add_only_hash(
        &self,
        dir: &str,
        files: &[(String, Vec<u8>)],
    ) -> Result<String, KuboError> {
        let enc = |p: &str| {
            p.replace('%', "%25")
                .replace('/', "%2F")
                .replace(' ', "%20")
        };
        let mut body = vec![];
        let mut dirs = std::collections::BTreeSet::new();
        dirs.insert(dir.to_owned());
        for (path, _) in files {
            let mut d = String::new();
            for part in path
                .split('/')
                .collect::<Vec<_>>()
                .split_last()
                .map(|x| x.1)
                .unwrap_or(&[])
            {
                d = if d.is_empty() {
                    format!("{dir}/{part}")
                } else {
                    format!("{d}/{part}")
                };
                dirs.insert(d.clone());
            }
        }
        for d in &dirs {
            body.extend_from_slice(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/x-directory\r\n\r\n\r\n", enc(d)).as_bytes(),
            );
        }
        for (path, bytes) in files {
            body.extend_from_slice(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n", enc(&format!("{dir}/{path}"))).as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let resp = self
            .post(
                "add",
                &[
                    ("only-hash", "true"),
                    ("cid-version", "1"),
                    ("raw-leaves", "true"),
                    ("pin", "false"),
                    ("progress", "false"),
                ],
                Some(body.into()),
            )
            .await?;
        let text = resp.text().await.map_err(|e| KuboError::Decode {
            call: "add",
            reason: e.to_string(),
        })?;
        for line in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| KuboError::Decode {
                    call: "add",
                    reason: format!("{e}: {line}"),
                })?;
            if v.get("Name").and_then(|n| n.as_str()) == Some(dir) {
                if let Some(h) = v.get("Hash").and_then(|h| h.as_str()) {
                    // js-ipfs prints CIDv1 in base58btc: normalise (base32).
                    let cid: Cid = h.parse().map_err(|e| KuboError::Decode {
                        call: "add",
                        reason: format!("{h}: {e}"),
                    })?;
                    return Ok(cid.to_string());
                }
            }
        }
        Err(KuboError::Decode {
            call: "add",
            reason: format!("no entry for {dir} in {text}"),
        })
    }

    /// Whether the daemon holds block `cid` itself (`block/stat`, offline).
    pub async fn has_block(&self, cid: &Cid) -> Result<bool, KuboError> {
        let c = cid.to_string();
        // `offline`: Kubo answers from its own store at once. js-ipfs
        // ignores it and would look for the block on the network: the
        // `timeout` bounds that.
        match self
            .post(
                "block/stat",
                &[("arg", &c), ("offline", "true"), ("timeout", "1s")],
                None,
            )
            .await
        {
            Ok(_) => Ok(true),
            // Kubo answers a block it lacks offline with a 500 and "block
            // was not found locally (offline)" (older: "blockservice: key
            // not found"); js-ipfs, after the timeout, with "request timed
            // out" (or "aborted").
            Err(KuboError::Rpc { message, .. })
                if message.contains("not found")
                    || message.contains("offline")
                    || message.contains("does not exist")
                    || message.contains("aborted")
                    || message.contains("timeout")
                    || message.contains("timed out")
                    || message.contains("deadline") =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// A block's bytes (`block/get`).
    pub async fn block_get(&self, cid: &Cid) -> Result<Vec<u8>, KuboError> {
        let c = cid.to_string();
        let resp = self.post("block/get", &[("arg", &c)], None).await?;
        Ok(resp
            .bytes()
            .await
            .map_err(|e| KuboError::Decode {
                call: "block/get",
                reason: e.to_string(),
            })?
            .to_vec())
    }

    /// Imports a CAR (`dag/import`); with `pin_roots` the daemon pins its
    /// root (which must then be complete). Returns the roots it reports.
    pub async fn dag_import(
        &self,
        car_bytes: Vec<u8>,
        pin_roots: bool,
    ) -> Result<Vec<String>, KuboError> {
        let mut body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"vod.car\"\r\nContent-Type: application/vnd.ipld.car\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&car_bytes);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let pin = if pin_roots { "true" } else { "false" };
        let resp = self
            .post("dag/import", &[("pin-roots", pin)], Some(body.into()))
            .await?;
        let text = resp.text().await.map_err(|e| KuboError::Decode {
            call: "dag/import",
            reason: e.to_string(),
        })?;
        let mut roots = vec![];
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| KuboError::Decode {
                    call: "dag/import",
                    reason: format!("{e}: {line}"),
                })?;
            if let Some(r) = v.get("Root") {
                let err = r.get("PinErrorMsg").and_then(|e| e.as_str()).unwrap_or("");
                if !err.is_empty() {
                    return Err(KuboError::Rpc {
                        call: "dag/import",
                        status: 200,
                        message: format!("pinning the root failed: {err}"),
                    });
                }
                if let Some(c) = r.pointer("/Cid/~1").and_then(|c| c.as_str()) {
                    // Normalised (base32 for CIDv1; js-ipfs prints base58).
                    roots.push(
                        c.parse::<Cid>()
                            .map(|c| c.to_string())
                            .unwrap_or(c.to_owned()),
                    );
                }
            }
        }
        Ok(roots)
    }

    /// Pins `cid` recursively (`pin/add?progress=true`), calling `progress`
    /// with each node count the daemon reports. Fails with the daemon's
    /// message, including one sent mid-stream.
    pub async fn pin_add(&self, cid: &Cid, mut progress: impl FnMut(u64)) -> Result<(), KuboError> {
        let c = cid.to_string();
        let resp = self
            // Every block was just imported: `timeout` bounds a daemon that
            // lost some (garbage-collected meanwhile) and would look for
            // them on the network for ever.
            .post(
                "pin/add",
                &[
                    ("arg", &c),
                    ("recursive", "true"),
                    ("progress", "true"),
                    ("timeout", "15m"),
                ],
                None,
            )
            .await?;
        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = vec![];
        let mut pinned = false;
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| KuboError::Decode {
                call: "pin/add",
                reason: format!("the stream broke: {e}"),
            })?;
            buf.extend_from_slice(&piece);
            while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                pinned |= Self::pin_line(&line, &mut progress)?;
            }
        }
        if !buf.is_empty() {
            pinned |= Self::pin_line(&buf, &mut progress)?;
        }
        if !pinned {
            return Err(KuboError::Decode {
                call: "pin/add",
                reason: "the stream ended without the pin (an X-Stream-Error trailer, or the daemon stopped)".into(),
            });
        }
        Ok(())
    }

    /// One NDJSON line of `pin/add`: `{"Progress": n}`, `{"Pins": [...]}`
    /// or an error object; returns whether the pin is done.
    fn pin_line(line: &[u8], progress: &mut impl FnMut(u64)) -> Result<bool, KuboError> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(false);
        }
        let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| KuboError::Decode {
            call: "pin/add",
            reason: format!("{e}: {}", String::from_utf8_lossy(line)),
        })?;
        if let Some(m) = v.get("Message").and_then(|m| m.as_str()) {
            return Err(KuboError::Rpc {
                call: "pin/add",
                status: 200,
                message: m.to_owned(),
            });
        }
        if let Some(p) = v.get("Progress").and_then(|p| p.as_u64()) {
            progress(p);
        }
        Ok(v.get("Pins").is_some_and(|p| p.is_array()))
    }

    /// Whether `cid` is pinned recursively (`pin/ls`).
    pub async fn is_pinned(&self, cid: &Cid) -> Result<bool, KuboError> {
        let c = cid.to_string();
        match self
            .json::<serde_json::Value>("pin/ls", &[("arg", &c), ("type", "recursive")])
            .await
        {
            Ok(v) => Ok(v
                .get("Keys")
                .and_then(|k| k.as_object())
                .is_some_and(|k| !k.is_empty())),
            Err(KuboError::Rpc { message, .. }) if message.contains("not pinned") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Unpins `cid` (`pin/rm`).
    pub async fn pin_rm(&self, cid: &Cid) -> Result<(), KuboError> {
        let c = cid.to_string();
        self.post("pin/rm", &[("arg", &c)], None).await?;
        Ok(())
    }
}

/// Most blocks asked about at once (`block/stat`).
const STAT_CONCURRENCY: usize = 8;
/// Blocks per `dag/import` (so an interrupted pin loses at most one batch).
const IMPORT_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Adds and pins a VOD on the daemon: of `blocks` (a whole VOD's, e.g.
/// read from its CAR as it streams in) those the daemon lacks are imported
/// in batches of about 16 MiB, then `root` is pinned. Resumable: a rerun
/// sends only what is still missing. Memory: one batch. `progress` sees
/// each step.
pub async fn pin_vod<S>(
    kubo: &Kubo,
    root: Cid,
    blocks: S,
    mut progress: impl FnMut(PinProgress),
) -> Result<(), anyhow::Error>
where
    S: futures::Stream<Item = Result<(Cid, Vec<u8>), anyhow::Error>> + Unpin,
{
    let mut p = PinProgress::default();
    let mut checked = blocks
        .map(|r| async move {
            let (cid, data) = r?;
            let have = kubo.has_block(&cid).await?;
            Ok::<_, anyhow::Error>((cid, data, have))
        })
        .buffered(STAT_CONCURRENCY);
    let mut batch = car::header(&root);
    let mut in_batch = 0;
    while let Some(item) = checked.next().await {
        let (cid, data, have) = item?;
        p.blocks += 1;
        if have {
            p.present += 1;
            progress(p);
            continue;
        }
        batch.extend(car::section(&cid, &data));
        in_batch += 1;
        if batch.len() >= IMPORT_BATCH_BYTES {
            kubo.dag_import(std::mem::replace(&mut batch, car::header(&root)), false)
                .await?;
            p.sent += in_batch;
            in_batch = 0;
        }
        progress(p);
    }
    if in_batch > 0 {
        kubo.dag_import(batch, false).await?;
        p.sent += in_batch;
        progress(p);
    }
    kubo.pin_add(&root, |n| {
        p.pinned_nodes = n;
        progress(p);
    })
    .await?;
    Ok(())
}

/// The blocks of a CAR arriving as an HTTP body, each verified, with the
/// root once the header is read (see [`car::Reader`]).
pub fn car_blocks(
    resp: reqwest::Response,
) -> impl futures::Stream<Item = Result<(Cid, Vec<u8>), anyhow::Error>> + Unpin {
    let state = (
        resp.bytes_stream(),
        car::Reader::default(),
        std::collections::VecDeque::new(),
        false,
    );
    Box::pin(futures::stream::unfold(
        state,
        |(mut body, mut reader, mut ready, mut done)| async move {
            loop {
                if let Some(b) = ready.pop_front() {
                    return Some((Ok(b), (body, reader, ready, done)));
                }
                if done {
                    return None;
                }
                match body.next().await {
                    Some(Ok(bytes)) => match reader.push(&bytes) {
                        Ok(blocks) => ready.extend(blocks),
                        Err(e) => {
                            done = true;
                            return Some((Err(e.into()), (body, reader, ready, done)));
                        }
                    },
                    Some(Err(e)) => {
                        done = true;
                        return Some((
                            Err(anyhow::anyhow!("reading the CAR: {e}")),
                            (body, reader, ready, done),
                        ));
                    }
                    None => {
                        done = true;
                        let r = std::mem::take(&mut reader).finish();
                        if let Err(e) = r {
                            return Some((Err(e.into()), (body, reader, ready, done)));
                        }
                    }
                }
            }
        },
    ))
}
