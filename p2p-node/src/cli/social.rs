//! `vilokanam profile|follow|unfollow|following|followers|feed`: profiles,
//! follows and the live feed through the local daemon (signed with its
//! creator key, the user's identity).

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use futures::StreamExt;
use vilokanam_api::{FeedEvent, FeedItem, ProfileInfo, ProfileSet};

use super::ApiArg;

/// Profile subcommands.
#[derive(Subcommand, Debug)]
pub enum ProfileCmd {
    /// Sign and publish this node's user's profile (a new version).
    Set {
        /// Display name (1 to 50 characters).
        #[arg(long)]
        name: String,
        /// Bio (at most 300 characters).
        #[arg(long, default_value = "")]
        bio: String,
        /// Avatar image (PNG, JPEG, GIF or WebP, at most 1 MiB): stored on
        /// the node and named in the profile by its CID.
        #[arg(long)]
        avatar: Option<std::path::PathBuf>,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
    /// Print a creator's profile (this node's user's without a key):
    /// held here, or resolved on the DHT.
    Get {
        /// Creator key (hex).
        creator: Option<String>,
        /// Also fetch the avatar (from peers, checked against its CID)
        /// into this file.
        #[arg(long)]
        avatar_out: Option<std::path::PathBuf>,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
}

/// `follow` / `unfollow`.
#[derive(Args, Debug)]
pub struct FollowCmd {
    /// Creator key (hex).
    pub creator: String,
    /// The daemon's API.
    #[command(flatten)]
    pub api: ApiArg,
}

/// `following` / `followers`.
#[derive(Args, Debug)]
pub struct ListCmd {
    /// The user or creator key (hex); this node's user without one.
    pub key: Option<String>,
    /// The daemon's API.
    #[command(flatten)]
    pub api: ApiArg,
}

/// `feed`.
#[derive(Args, Debug)]
pub struct FeedCmd {
    /// Keep printing notifications as they come (Ctrl-C ends).
    #[arg(long)]
    pub follow: bool,
    /// The daemon's API.
    #[command(flatten)]
    pub api: ApiArg,
}

fn print_profile(p: &ProfileInfo) {
    println!("creator  {}", p.creator);
    println!("name     {}", p.name);
    if !p.bio.is_empty() {
        println!("bio      {}", p.bio.replace('\n', "\n         "));
    }
    if let Some(a) = &p.avatar {
        println!("avatar   {a}");
    }
    println!("version  {} (expires {})", p.version, p.expires_ms);
}

fn print_item(prefix: &str, i: &FeedItem) {
    let who = i.name.clone().unwrap_or_else(|| i.creator[..8].to_owned());
    let tags = if i.tags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", i.tags.join(", "))
    };
    println!("{prefix} {who}: {}{tags}  {}", i.title, i.stream);
}

/// Runs `profile …`.
pub async fn profile(cmd: ProfileCmd) -> Result<()> {
    match cmd {
        ProfileCmd::Set {
            name,
            bio,
            avatar,
            api,
        } => {
            let client = api.client();
            let avatar = match avatar {
                Some(path) => {
                    let bytes = tokio::fs::read(&path)
                        .await
                        .with_context(|| format!("reading {}", path.display()))?;
                    let a = client.add_avatar(bytes).await?;
                    eprintln!("avatar {} ({} bytes, {})", a.cid, a.bytes, a.content_type);
                    Some(a.cid)
                }
                None => None,
            };
            let p = client
                .set_profile(&ProfileSet { name, bio, avatar })
                .await?;
            print_profile(&p);
            Ok(())
        }
        ProfileCmd::Get {
            creator,
            avatar_out,
            api,
        } => {
            let client = api.client();
            let p = match creator {
                Some(c) => client.profile_of(&c).await?,
                None => client.profile().await?,
            };
            print_profile(&p);
            if let Some(out) = avatar_out {
                let cid = p.avatar.as_deref().context("this profile has no avatar")?;
                let bytes = client.avatar(cid).await?;
                tokio::fs::write(&out, &bytes)
                    .await
                    .with_context(|| format!("writing {}", out.display()))?;
                eprintln!(
                    "avatar written to {} ({} bytes)",
                    out.display(),
                    bytes.len()
                );
            }
            Ok(())
        }
    }
}

/// Runs `follow` (or `unfollow`).
pub async fn follow(cmd: FollowCmd, follow: bool) -> Result<()> {
    let f = cmd.api.client().follow(&cmd.creator, follow).await?;
    println!(
        "{} {} at {}",
        if f.follow { "following" } else { "unfollowed" },
        f.creator,
        f.at_ms
    );
    Ok(())
}

/// Runs `following`.
pub async fn following(cmd: ListCmd) -> Result<()> {
    let v = cmd.api.client().follows(cmd.key.as_deref()).await?;
    for f in &v.following {
        println!("{} since {}", f.creator, f.at_ms);
    }
    eprintln!(
        "{} followed ({} operations known)",
        v.following.len(),
        v.operations
    );
    Ok(())
}

/// Runs `followers`.
pub async fn followers(cmd: ListCmd) -> Result<()> {
    let client = cmd.api.client();
    let key = match cmd.key {
        Some(k) => k,
        None => client.id().await?.creator_key,
    };
    let v = client.followers(&key).await?;
    for f in &v.followers {
        println!("{f}");
    }
    eprintln!("{} followers (counted from signed operations)", v.count);
    Ok(())
}

/// Runs `feed`.
pub async fn feed(cmd: FeedCmd) -> Result<()> {
    let client = cmd.api.client();
    let mut events = if cmd.follow {
        Some(client.feed_events().await?)
    } else {
        None
    };
    let v = client.feed().await?;
    for i in &v.live {
        print_item("LIVE", i);
    }
    if v.live.is_empty() {
        eprintln!("no followed creator is live");
    }
    let Some(events) = events.as_mut() else {
        return Ok(());
    };
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(FeedEvent::Live(i))) => print_item("LIVE", &i),
                Some(Ok(FeedEvent::Ended(i))) => print_item("ENDED", &i),
                Some(Err(e)) => return Err(e).context("reading the feed's events"),
                None => return Ok(()),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// Runs `streams --search/--tag`.
pub async fn search(
    client: &vilokanam_api::ApiClient,
    text: Option<&str>,
    tag: Option<&str>,
    limit: usize,
) -> Result<()> {
    let r = client.search(text, tag, limit).await?;
    if let Some(p) = &r.creator {
        println!("creator {} ({})", p.name, p.creator);
    }
    for h in &r.hits {
        let state = match (h.kind.as_str(), h.live) {
            ("stream", true) => "LIVE ",
            ("stream", false) => "ended",
            _ => "VOD  ",
        };
        let who = h.name.clone().unwrap_or_else(|| h.creator[..8].to_owned());
        let star = if h.followed { "*" } else { " " };
        let tags = if h.tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", h.tags.join(", "))
        };
        println!("{state} {star}{who}: {}{tags}  {}", h.title, h.id);
    }
    eprintln!(
        "{} hits of {} indexed, in {} µs (* followed)",
        r.hits.len(),
        r.indexed,
        r.took_us
    );
    Ok(())
}
