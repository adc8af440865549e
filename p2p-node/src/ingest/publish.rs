//! `vilokanam publish`: reads MPEG-TS from a file, stdin or UDP, cuts it at
//! keyframes and hands each segment to the local daemon, which signs and
//! seeds it.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::AsyncReadExt;
use tracing::info;

use super::ts::{Segment, Segmenter};
use crate::client::ApiClient;

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
    /// Restart a file at its end (with a discontinuity) until interrupted.
    pub repeat: bool,
    /// Target segment duration.
    pub segment: Duration,
}

struct Publisher<'a> {
    api: &'a ApiClient,
    opts: &'a PublishOptions,
    started: bool,
    published: u64,
    clock: Option<(Instant, Duration)>,
    discontinuity: bool,
}

impl Publisher<'_> {
    async fn send(&mut self, seg: Segment) -> Result<()> {
        if !self.started {
            let id = self
                .api
                .start(&self.opts.name, &self.opts.title, &self.opts.tags)
                .await?;
            info!(stream = %id, "stream started");
            println!("{}", serde_json::json!({"event": "started", "stream": id}));
            self.started = true;
        }
        if self.opts.realtime {
            // Release a segment once its media time has elapsed, as a live
            // encoder would.
            let (t0, media) = self.clock.get_or_insert((Instant::now(), Duration::ZERO));
            *media += seg.duration;
            let due = *t0 + *media;
            tokio::time::sleep_until(due.into()).await;
        }
        let duration_us =
            u32::try_from(seg.duration.as_micros()).context("segment longer than 71 minutes")?;
        let r = self
            .api
            .segment(&self.opts.name, duration_us, self.discontinuity, seg.data)
            .await?;
        self.discontinuity = false;
        self.published += 1;
        println!(
            "{}",
            serde_json::json!({"event": "segment", "seq": r.seq, "cid": r.cid, "size": r.size})
        );
        Ok(())
    }

    async fn feed(&mut self, seg: &mut Segmenter, bytes: &[u8]) -> Result<()> {
        for s in seg.push(bytes).context("reading MPEG-TS input")? {
            self.send(s).await?;
        }
        Ok(())
    }

    async fn finish(&mut self, seg: &mut Segmenter) -> Result<()> {
        if let Some(s) = seg.finish().context("at end of MPEG-TS input")? {
            self.send(s).await?;
        }
        Ok(())
    }
}

/// Runs the publisher until the input ends (or Ctrl-C for live inputs);
/// then announces the end of the stream. Returns segments published.
pub async fn run(api: &ApiClient, opts: PublishOptions) -> Result<u64> {
    let mut p = Publisher {
        api,
        opts: &opts,
        started: false,
        published: 0,
        clock: None,
        discontinuity: false,
    };
    let mut seg = Segmenter::new(opts.segment);
    let mut buf = vec![0u8; 64 * 1024];
    let result: Result<()> = async {
        match &opts.input {
            Input::File(path) => loop {
                let mut f = tokio::fs::File::open(path)
                    .await
                    .with_context(|| format!("opening {}", path.display()))?;
                loop {
                    let n = f
                        .read(&mut buf)
                        .await
                        .with_context(|| format!("reading {}", path.display()))?;
                    if n == 0 {
                        break;
                    }
                    p.feed(&mut seg, &buf[..n]).await?;
                }
                p.finish(&mut seg).await?;
                if !opts.repeat {
                    break Ok(());
                }
                p.discontinuity = true;
            },
            Input::Stdin => {
                let mut stdin = tokio::io::stdin();
                let stop = tokio::signal::ctrl_c();
                tokio::pin!(stop);
                loop {
                    let n = tokio::select! {
                        n = stdin.read(&mut buf) => n.context("reading stdin")?,
                        _ = &mut stop => 0,
                    };
                    if n == 0 {
                        break;
                    }
                    p.feed(&mut seg, &buf[..n]).await?;
                }
                p.finish(&mut seg).await
            }
            Input::Udp(addr) => {
                let sock = tokio::net::UdpSocket::bind(addr)
                    .await
                    .with_context(|| format!("binding UDP {addr}"))?;
                eprintln!("waiting for MPEG-TS on udp://{addr} (Ctrl-C to stop)");
                let stop = tokio::signal::ctrl_c();
                tokio::pin!(stop);
                loop {
                    tokio::select! {
                        r = sock.recv(&mut buf) => {
                            let n = r.context("receiving UDP")?;
                            p.feed(&mut seg, &buf[..n]).await?;
                        }
                        _ = &mut stop => break,
                    }
                }
                // A live input cut off mid-packet is normal: keep what we have.
                match seg.finish() {
                    Ok(Some(s)) => p.send(s).await,
                    _ => Ok(()),
                }
            }
        }
    }
    .await;
    if p.started {
        api.end(&opts.name)
            .await
            .context("announcing the end of the stream")?;
    }
    result?;
    if p.published == 0 {
        bail!("the input contained no complete segment; nothing was published");
    }
    Ok(p.published)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_parses() {
        assert_eq!("-".parse::<Input>().unwrap(), Input::Stdin);
        assert_eq!(
            "udp://127.0.0.1:9000".parse::<Input>().unwrap(),
            Input::Udp("127.0.0.1:9000".parse().unwrap())
        );
        assert_eq!(
            "udp://127.0.0.1:9000?pkt_size=1316"
                .parse::<Input>()
                .unwrap(),
            Input::Udp("127.0.0.1:9000".parse().unwrap())
        );
        assert!("udp://nonsense".parse::<Input>().is_err());
        assert_eq!("a.ts".parse::<Input>().unwrap(), Input::File("a.ts".into()));
    }
}
