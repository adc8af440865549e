//! `vilokanam publish`: reads MPEG-TS from a file, stdin or UDP, cuts it at
//! keyframes ([`vilokanam_media::ts::Segmenter`]) and hands each segment to
//! the local daemon, which signs and seeds it.
//!
//! A live input (stdin, UDP) that goes silent for `--idle-secs` — OBS
//! "Stop Streaming", ffmpeg exiting — has what is complete published and
//! the stream announced as ended; when input comes back (a restarted
//! encoder), the same stream resumes after a discontinuity.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tracing::info;
use vilokanam_api::{
    ApiClient, OfferInfo, OutputEvent, PartQuery, SegmentQuery, SegmentResponse, StartRequest,
};
use vilokanam_media::ts::{Cut, Part, Retimer, Segment, Segmenter, SpanMeter, TS_PACKET_SIZE};

/// Where the MPEG-TS comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A file on disk.
    File(std::path::PathBuf),
    /// Standard input (`-`), e.g. `ffmpeg … -f mpegts -`.
    Stdin,
    /// UDP datagrams on a local port (OBS custom output, `ffmpeg … udp://…`).
    Udp(std::net::SocketAddr),
}

impl std::str::FromStr for Input {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if s == "-" {
            return Ok(Input::Stdin);
        }
        if let Some(rest) = s.strip_prefix("udp://") {
            let addr = rest.split('?').next().unwrap_or(rest);
            return Ok(Input::Udp(
                addr.parse()
                    .with_context(|| format!("invalid UDP address {addr:?}"))?,
            ));
        }
        Ok(Input::File(s.into()))
    }
}

/// Options of `vilokanam publish`.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// Stream name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Input.
    pub input: Input,
    /// Pace a file by its timestamps (as if it were live).
    pub realtime: bool,
    /// Restart a file at its end until interrupted, its timestamps running
    /// on as one continuous stream.
    pub repeat: bool,
    /// Target segment duration.
    pub segment: Duration,
    /// LL-HLS part target; `None`: whole segments only.
    pub part: Option<Duration>,
    /// A live input silent this long ends the stream until input returns.
    pub idle: Duration,
    /// A paid stream's terms; `None` for a free stream.
    pub offer: Option<OfferInfo>,
}

/// Where segments go: the daemon's API (or, in tests, a recorder).
pub(crate) trait Sink {
    /// Starts (or resumes) the stream; returns its id and next number.
    async fn start(&mut self) -> Result<(String, u64)>;
    /// Publishes one segment.
    async fn segment(&mut self, seg: &Segment, discontinuity: bool) -> Result<SegmentResponse>;
    /// Publishes one part of the segment in progress.
    async fn part(&mut self, part: &Part, discontinuity: bool) -> Result<()>;
    /// Announces the end.
    async fn end(&mut self) -> Result<()>;
}

/// The daemon's API as a [`Sink`].
pub(crate) struct ApiSink<'a> {
    api: &'a ApiClient,
    name: String,
    start: StartRequest,
    /// The part target the segmenter cuts to.
    part_target: Duration,
}

impl Sink for ApiSink<'_> {
    async fn start(&mut self) -> Result<(String, u64)> {
        let r = self.api.start(&self.name, &self.start).await?;
        // A daemon that does not know offers would publish the stream for
        // free: check that it signed the terms asked for.
        if let Some(asked) = &self.start.offer {
            let signed = self.api.stream(&r.stream).await?.offer;
            // The daemon adds itself as the key server.
            let same = signed.as_ref().is_some_and(|s| {
                s.price_per_sec == asked.price_per_sec
                    && s.payee == asked.payee
                    && s.genesis == asked.genesis
                    && s.epoch_secs == asked.epoch_secs
                    && !s.key_servers.is_empty()
            });
            if !same {
                anyhow::bail!(
                    "the daemon did not sign the offer (signed: {signed:?}); is it an older version?"
                );
            }
        }
        Ok((r.stream, r.next_seq))
    }

    async fn segment(&mut self, seg: &Segment, discontinuity: bool) -> Result<SegmentResponse> {
        let duration_us =
            u32::try_from(seg.duration.as_micros()).context("segment longer than 71 minutes")?;
        let q = SegmentQuery {
            duration_us,
            discontinuity,
        };
        Ok(self.api.segment(&self.name, &q, seg.data.clone()).await?)
    }

    async fn part(&mut self, part: &Part, discontinuity: bool) -> Result<()> {
        let duration_us =
            u32::try_from(part.duration.as_micros()).context("part longer than 71 minutes")?;
        let q = PartQuery {
            index: part.index,
            duration_us,
            target_us: Some(u32::try_from(self.part_target.as_micros()).unwrap_or(u32::MAX)),
            independent: part.independent,
            discontinuity,
        };
        self.api.part(&self.name, &q, part.data.clone()).await?;
        Ok(())
    }

    async fn end(&mut self) -> Result<()> {
        Ok(self.api.end(&self.name).await?)
    }
}

/// Releases segments at their media times, as a live encoder would.
#[derive(Debug, Default)]
pub(crate) struct Pacer {
    clock: Option<(Instant, Duration)>,
}

impl Pacer {
    /// When a segment of `duration` that follows the earlier ones is due.
    pub(crate) fn due(&mut self, duration: Duration) -> Instant {
        let (t0, media) = self.clock.get_or_insert((Instant::now(), Duration::ZERO));
        *media += duration;
        *t0 + *media
    }
}

pub(crate) struct Publisher<S> {
    sink: S,
    realtime: bool,
    pacer: Pacer,
    stream: Option<String>,
    live: bool,
    published: u64,
    discontinuity: bool,
}

impl<S: Sink> Publisher<S> {
    pub(crate) fn new(sink: S, realtime: bool) -> Self {
        Publisher {
            sink,
            realtime,
            pacer: Pacer::default(),
            stream: None,
            live: false,
            published: 0,
            discontinuity: false,
        }
    }

    pub(crate) fn published(&self) -> u64 {
        self.published
    }

    /// Starts the stream at the daemon if it is not live.
    async fn ensure_live(&mut self) -> Result<()> {
        if !self.live {
            let (id, next_seq) = self.sink.start().await?;
            info!(stream = %id, next_seq, "stream started");
            OutputEvent::Started {
                stream: id.clone(),
                next_seq,
            }
            .print();
            self.stream = Some(id);
            self.live = true;
        }
        Ok(())
    }

    /// Publishes a part of the segment in progress, at its media time with
    /// `--realtime`.
    pub(crate) async fn send_part(&mut self, part: Part) -> Result<()> {
        self.ensure_live().await?;
        if self.realtime {
            tokio::time::sleep_until(self.pacer.due(part.duration)).await;
        }
        self.sink.part(&part, self.discontinuity).await
    }

    pub(crate) async fn send(&mut self, seg: Segment) -> Result<()> {
        self.ensure_live().await?;
        // A segment published as parts was paced part by part: it goes
        // out right after its last part.
        if self.realtime && seg.parts.is_empty() {
            tokio::time::sleep_until(self.pacer.due(seg.duration)).await;
        }
        let r = self.sink.segment(&seg, self.discontinuity).await?;
        self.discontinuity = false;
        self.published += 1;
        OutputEvent::Segment {
            seq: r.seq,
            cid: r.cid,
            size: r.size,
        }
        .print();
        Ok(())
    }

    async fn feed(&mut self, seg: &mut Segmenter, bytes: &[u8]) -> Result<()> {
        let cuts = seg.push_cuts(bytes).context("reading MPEG-TS input")?;
        self.send_cuts(cuts).await
    }

    async fn send_cuts(&mut self, cuts: Vec<Cut>) -> Result<()> {
        for c in cuts {
            match c {
                Cut::Part(p) => self.send_part(p).await?,
                Cut::Segment(s) => self.send(s).await?,
            }
        }
        Ok(())
    }

    async fn finish(&mut self, seg: &mut Segmenter) -> Result<()> {
        let cuts = seg.finish_cuts().context("at end of MPEG-TS input")?;
        self.send_cuts(cuts).await
    }

    /// The live input went silent: publish what is complete, end the
    /// stream, and start a fresh segmenter for when input returns.
    async fn went_idle(&mut self, seg: &mut Segmenter, silent: Duration) -> Result<()> {
        // A live input cut off mid-packet or mid-GOP is normal: keep what
        // is complete.
        if let Ok(cuts) = seg.finish_cuts() {
            self.send_cuts(cuts).await?;
        }
        *seg = seg.fresh();
        if self.live {
            self.sink.end().await?;
            self.live = false;
            // The resumed stream's timestamps start over.
            self.discontinuity = true;
            self.pacer = Pacer::default();
            OutputEvent::Idle {
                stream: self.stream.clone().unwrap_or_default(),
                silent_ms: silent.as_millis() as u64,
            }
            .print();
            eprintln!(
                "input silent for {} s: stream ended; it resumes when input comes back (Ctrl-C to stop)",
                silent.as_secs()
            );
        }
        Ok(())
    }

    /// Reads a live source until EOF or Ctrl-C, ending the stream while
    /// the source is silent.
    async fn live(
        &mut self,
        seg: &mut Segmenter,
        idle: Duration,
        source: &mut impl LiveSource,
    ) -> Result<()> {
        let stop = tokio::signal::ctrl_c();
        tokio::pin!(stop);
        let mut last_data = Instant::now();
        loop {
            let deadline = last_data + idle;
            tokio::select! {
                r = source.read() => match r? {
                    Some(bytes) => {
                        last_data = Instant::now();
                        self.feed(seg, &bytes).await?;
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline), if self.live => {
                    self.went_idle(seg, idle).await?;
                }
                _ = &mut stop => break,
            }
        }
        match seg.finish_cuts() {
            Ok(cuts) => self.send_cuts(cuts).await,
            Err(_) => Ok(()),
        }
    }

    /// Publishes a file `passes` times. Passes after the first are
    /// retimed ([`Retimer`]) to continue the timestamps and continuity
    /// counters of the one before, so players see one continuous stream
    /// rather than a reset every pass; the segmenter runs on across the
    /// seam, cutting at the next keyframe as usual. The file is streamed,
    /// never held in memory whole.
    pub(crate) async fn file(
        &mut self,
        seg: &mut Segmenter,
        path: &std::path::Path,
        passes: u64,
    ) -> Result<()> {
        if passes <= 1 {
            let mut r = FileReader::open(path).await?;
            while let Some(bytes) = r.next().await? {
                self.feed(seg, bytes).await?;
            }
            return self.finish(seg).await;
        }
        let span = {
            let mut meter = SpanMeter::new(seg.target());
            let mut r = FileReader::open(path).await?;
            while let Some(bytes) = r.next().await? {
                meter
                    .push(bytes)
                    .with_context(|| format!("reading {}", path.display()))?;
            }
            meter
                .finish()
                .with_context(|| format!("at end of {}", path.display()))?
        };
        if span == 0 {
            bail!(
                "{} holds no complete segment (no keyframe): nothing to loop",
                path.display()
            );
        }
        let mut retimer = Retimer::new();
        for pass in 0..passes {
            let mut r = FileReader::open(path).await?;
            while let Some(bytes) = r.next().await? {
                retimer.rewrite(bytes);
                self.feed(seg, bytes).await?;
            }
            if pass + 1 < passes {
                retimer.advance(span);
            }
        }
        self.finish(seg).await
    }

    async fn close(&mut self) -> Result<()> {
        if self.live {
            self.sink
                .end()
                .await
                .context("announcing the end of the stream")?;
            self.live = false;
        }
        Ok(())
    }
}

/// Runs the publisher until the input ends (or Ctrl-C for live inputs);
/// then announces the end of the stream. Returns segments published.
pub async fn run(api: &ApiClient, opts: PublishOptions) -> Result<u64> {
    let sink = ApiSink {
        api,
        name: opts.name.clone(),
        start: StartRequest {
            title: opts.title.clone(),
            tags: opts.tags.clone(),
            codec: "mpegts".into(),
            offer: opts.offer.clone(),
        },
        part_target: opts.part.unwrap_or_default(),
    };
    let mut p = Publisher::new(sink, opts.realtime);
    let mut seg = match opts.part {
        Some(part) => Segmenter::with_parts(opts.segment, part),
        None => Segmenter::new(opts.segment),
    };
    let result: Result<()> = async {
        match &opts.input {
            Input::File(path) => {
                let passes = if opts.repeat { u64::MAX } else { 1 };
                let stop = tokio::signal::ctrl_c();
                tokio::select! {
                    r = p.file(&mut seg, path, passes) => r,
                    _ = stop => Ok(()),
                }
            }
            Input::Stdin => {
                let mut src = StdinSource(tokio::io::stdin(), vec![0u8; 64 * 1024]);
                p.live(&mut seg, opts.idle, &mut src).await
            }
            Input::Udp(addr) => {
                let sock = tokio::net::UdpSocket::bind(addr)
                    .await
                    .with_context(|| format!("binding UDP {addr}"))?;
                eprintln!("waiting for MPEG-TS on udp://{addr} (Ctrl-C to stop)");
                let mut src = UdpSource(sock, vec![0u8; 64 * 1024]);
                p.live(&mut seg, opts.idle, &mut src).await
            }
        }
    }
    .await;
    p.close().await?;
    result?;
    if p.published() == 0 {
        bail!("the input contained no complete segment; nothing was published");
    }
    OutputEvent::Ended {
        stream: p.stream.clone().unwrap_or_default(),
        segments: p.published(),
    }
    .print();
    Ok(p.published())
}

/// Reads a file in pieces of whole 188-byte packets counted from its
/// start (what [`Retimer`] rewrites); only the last piece may be shorter.
struct FileReader {
    file: tokio::fs::File,
    path: std::path::PathBuf,
    buf: Vec<u8>,
}

impl FileReader {
    /// 348 packets: just under 64 KiB per read.
    const PIECE: usize = TS_PACKET_SIZE * 348;

    async fn open(path: &std::path::Path) -> Result<Self> {
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(FileReader {
            file,
            path: path.to_owned(),
            buf: vec![0; Self::PIECE],
        })
    }

    /// The next piece, `None` at the end of the file.
    async fn next(&mut self) -> Result<Option<&mut [u8]>> {
        let mut n = 0;
        while n < self.buf.len() {
            let r = self
                .file
                .read(&mut self.buf[n..])
                .await
                .with_context(|| format!("reading {}", self.path.display()))?;
            if r == 0 {
                break;
            }
            n += r;
        }
        Ok((n > 0).then(|| &mut self.buf[..n]))
    }
}

/// A live input: `None` at its end.
pub(crate) trait LiveSource {
    /// The next bytes (cancel-safe: dropping the future loses nothing).
    async fn read(&mut self) -> Result<Option<Vec<u8>>>;
}

struct StdinSource(tokio::io::Stdin, Vec<u8>);

impl LiveSource for StdinSource {
    async fn read(&mut self) -> Result<Option<Vec<u8>>> {
        let n = self.0.read(&mut self.1).await.context("reading stdin")?;
        Ok((n > 0).then(|| self.1[..n].to_vec()))
    }
}

struct UdpSource(tokio::net::UdpSocket, Vec<u8>);

impl LiveSource for UdpSource {
    async fn read(&mut self) -> Result<Option<Vec<u8>>> {
        let n = self.0.recv(&mut self.1).await.context("receiving UDP")?;
        Ok(Some(self.1[..n].to_vec()))
    }
}

#[cfg(test)]
mod tests;
