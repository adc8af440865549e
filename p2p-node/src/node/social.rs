//! Profiles, follows and the feed: this node's side of
//! `swarm::protocols::social`.
//!
//! The user's records (its profile, its follow operations, the followers
//! index of its key) are signed here with the creator key, kept in the
//! `social` tree and handed to the swarm, which checks them like any
//! other, merges them with what peers hold and publishes them (DHT and
//! social topic). Records about the same key from elsewhere (the user's
//! second node) come back as events and are merged into the tree, so a
//! stale device never overwrites a newer list: each follow is its own
//! signed operation, and the later one per creator wins.
//!
//! The feed is the announce topic filtered by the creators followed: the
//! first announcement of a followed creator's stream (or its restart)
//! becomes a `live` notification, its end an `ended` one
//! ([`FeedEvent`], server-sent on `GET /api/v0/feed/events`).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use tokio::sync::broadcast;
use tracing::{debug, warn};
use vilokanam_api::{
    AvatarInfo, FeedEvent, FeedItem, FeedView, FollowInfo, FollowersView, FollowsView, ProfileInfo,
    ProfileSet,
};
use vilokanam_storage::unixfs::{self, Cid, CidVersion};
use vilokanam_swarm::protocols::social::core::followed;
use vilokanam_swarm::protocols::social::wire::{MAX_FOLLOW_OPS, MAX_PROFILE_TTL_MS};
use vilokanam_swarm::protocols::social::{
    FollowOp, Profile, RecordKey, RecordKind, SignedFollowOp, SocialRecord,
};
use vilokanam_swarm::{SignedAnnouncement, SwarmError};

use super::publisher::now_ms;
use super::{lock, Inner, NodeError, NodeHandle};

/// Largest avatar image.
pub const MAX_AVATAR_BYTES: usize = 1 << 20;
/// Notifications kept for `GET /api/v0/feed`.
const RECENT: usize = 100;
/// Feed events buffered per API subscriber.
const EVENT_BUFFER: usize = 256;
/// A profile is signed again when it expires within this.
const RESIGN_BEFORE_MS: u64 = MAX_PROFILE_TTL_MS / 2;
/// How often a running node checks its profile's expiry.
const RESIGN_CHECK: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// The node's social desk (in `Inner`).
pub(crate) struct SocialDesk {
    events: broadcast::Sender<FeedEvent>,
    recent: Mutex<VecDeque<FeedEvent>>,
    /// The creators the user follows (from its follows record).
    followed: Mutex<HashSet<[u8; 32]>>,
    /// One change of the user's records at a time (a follow's time is
    /// after the last one's).
    writing: tokio::sync::Mutex<()>,
}

impl SocialDesk {
    pub(crate) fn new() -> Self {
        SocialDesk {
            events: broadcast::channel(EVENT_BUFFER).0,
            recent: Mutex::new(VecDeque::new()),
            followed: Mutex::new(HashSet::new()),
            writing: tokio::sync::Mutex::new(()),
        }
    }
}

fn parse_key(s: &str, what: &str) -> Result<[u8; 32], NodeError> {
    super::parse_hex_key(s, what).map_err(NodeError::InvalidSocial)
}

fn social_error(e: SwarmError) -> NodeError {
    match e {
        SwarmError::Social(r) => NodeError::SocialRefused(r.to_string()),
        SwarmError::SocialStore(s) => NodeError::SocialFull(s),
        other => other.into(),
    }
}

fn profile_info(p: &Profile) -> ProfileInfo {
    ProfileInfo {
        creator: hex::encode(p.creator),
        name: p.name.clone(),
        bio: p.bio.clone(),
        avatar: p.avatar.clone(),
        version: p.version,
        expires_ms: p.expires_ms,
    }
}

fn follow_info(o: &SignedFollowOp) -> FollowInfo {
    FollowInfo {
        follower: hex::encode(o.op.follower),
        creator: hex::encode(o.op.creator),
        follow: o.op.follow,
        at_ms: o.op.at_ms,
    }
}

/// The image type of `bytes`, by its magic number: avatars are images.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

fn key_of(kind: RecordKind, subject: [u8; 32]) -> RecordKey {
    RecordKey { kind, subject }
}

impl NodeHandle {
    fn me(&self) -> [u8; 32] {
        self.inner.identity.creator
    }

    /// Keeps one of the user's records in the `social` tree.
    fn keep_record(&self, record: &SocialRecord) {
        let r = self
            .inner
            .store
            .social
            .put(&record.key().to_string(), &record.encode());
        if let Err(e) = r {
            warn!(key = %record.key(), error = %e, "cannot keep a social record");
        }
    }

    /// The user's signed follow of `creator`, if it follows it now.
    pub(crate) async fn follow_of(&self, creator: [u8; 32]) -> Option<SignedFollowOp> {
        if !lock(&self.inner.social.followed).contains(&creator) {
            return None;
        }
        let held = self
            .inner
            .swarm
            .social_held_one(key_of(RecordKind::Follows, self.me()))
            .await?;
        held.ops()
            .iter()
            .find(|o| o.op.creator == creator && o.op.follow)
            .copied()
    }

    /// The creators this node's user follows.
    pub(crate) fn followed_creators(&self) -> HashSet<[u8; 32]> {
        lock(&self.inner.social.followed).clone()
    }

    fn set_followed(&self, record: &SocialRecord) {
        *lock(&self.inner.social.followed) = followed(record.ops()).map(|o| o.op.creator).collect();
    }

    /// Publishes the user's kept records again (at start): the swarm
    /// merges them with what peers hold. A profile that expires within 15
    /// days is signed again.
    pub(crate) async fn restore_social(&self) {
        let kept = match self.inner.store.social.all() {
            Ok(k) => k,
            Err(e) => return warn!(error = %e, "cannot read the social tree"),
        };
        for (key, bytes) in kept {
            let Ok(record) = SocialRecord::decode(&bytes) else {
                warn!(%key, "a kept social record does not decode: skipped");
                continue;
            };
            if let SocialRecord::Profile(p) = &record {
                if self.resign_if_expiring(&p.profile).await {
                    continue;
                }
            }
            if record.key().kind == RecordKind::Follows {
                self.set_followed(&record);
            }
            match self.inner.swarm.social_put(record, true).await {
                Ok(now) => {
                    if now.key().kind == RecordKind::Follows {
                        self.set_followed(&now);
                    }
                }
                Err(e) => warn!(%key, error = %e, "cannot publish a kept social record"),
            }
        }
    }

    /// Signs `p` (the user's profile) again, as a new version, when it
    /// expires within [`RESIGN_BEFORE_MS`]; whether it did.
    async fn resign_if_expiring(&self, p: &Profile) -> bool {
        if p.expires_ms >= now_ms() + RESIGN_BEFORE_MS {
            return false;
        }
        let set = ProfileSet {
            name: p.name.clone(),
            bio: p.bio.clone(),
            avatar: p.avatar.clone(),
        };
        if let Err(e) = self.set_profile(&set).await {
            warn!(error = %e, "cannot sign the profile again");
        }
        true
    }

    /// Signs the user's profile again when it expires within
    /// [`RESIGN_BEFORE_MS`] (checked every [`RESIGN_CHECK`] while the node
    /// runs; at start, [`NodeHandle::restore_social`] does it).
    pub(crate) fn spawn_resigner(&self) -> tokio::task::JoinHandle<()> {
        let weak = std::sync::Arc::downgrade(&self.inner);
        let mut stop = self.inner.stop.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(RESIGN_CHECK) => {}
                    _ = stop.changed() => return,
                }
                let Some(inner) = weak.upgrade() else { return };
                let node = NodeHandle { inner };
                let key = key_of(RecordKind::Profile, node.me());
                if let Some(SocialRecord::Profile(p)) = node.inner.swarm.social_held_one(key).await
                {
                    node.resign_if_expiring(&p.profile).await;
                }
            }
        })
    }

    /// A social record changed what the swarm holds: the user's own
    /// (from its other node) are kept; follow operations naming the user
    /// go into its followers index.
    pub(crate) fn on_social_record(&self, record: &SocialRecord) {
        let key = record.key();
        if let SocialRecord::Profile(p) = record {
            let r = self
                .inner
                .search
                .set_name(&hex::encode(p.profile.creator), &p.profile.name);
            if let Err(e) = r {
                warn!(error = %e, "indexing a profile name failed");
            }
        }
        let me = self.me();
        if key.subject == me {
            self.keep_record(record);
            if key.kind == RecordKind::Follows {
                self.set_followed(record);
            }
            return;
        }
        if key.kind == RecordKind::Follows {
            let mine: Vec<SignedFollowOp> = record
                .ops()
                .iter()
                .filter(|o| o.op.creator == me)
                .copied()
                .collect();
            if mine.is_empty() {
                return;
            }
            let node = self.clone();
            tokio::spawn(async move {
                let index = SocialRecord::Followers {
                    subject: me,
                    ops: mine,
                };
                match node.inner.swarm.social_put(index, true).await {
                    Ok(r) => node.keep_record(&r),
                    Err(SwarmError::Social(e)) => debug!(error = %e, "followers index unchanged"),
                    Err(e) => warn!(error = %e, "cannot update the followers index"),
                }
            });
        }
    }

    /// The user's profile.
    pub async fn profile(&self) -> Result<ProfileInfo, NodeError> {
        self.profile_of(&hex::encode(self.me())).await
    }

    /// A creator's profile: what this node holds, then the DHT (every
    /// record checked; the newest version).
    pub async fn profile_of(&self, creator: &str) -> Result<ProfileInfo, NodeError> {
        let key = key_of(RecordKind::Profile, parse_key(creator, "creator")?);
        match self
            .inner
            .swarm
            .social_get(key)
            .await
            .map_err(social_error)?
        {
            Some(SocialRecord::Profile(p)) => Ok(profile_info(&p.profile)),
            _ => Err(NodeError::NoRecord(format!(
                "no profile of {creator} found here or on the DHT"
            ))),
        }
    }

    /// Signs and publishes the user's profile (a version newer than the
    /// last). An avatar must be held here (`POST /api/v0/avatar`).
    pub async fn set_profile(&self, set: &ProfileSet) -> Result<ProfileInfo, NodeError> {
        let _w = self.inner.social.writing.lock().await;
        if let Some(a) = &set.avatar {
            let cid = super::vod::parse_cid(a)
                .map_err(|e| NodeError::InvalidSocial(format!("avatar: {e}")))?;
            let held = self.inner.store.recordings.has_block(&cid).unwrap_or(false);
            if !held {
                return Err(NodeError::InvalidSocial(format!(
                    "avatar {a} is not held by this node: POST the image to /api/v0/avatar first"
                )));
            }
        }
        let me = self.me();
        let last = match self
            .inner
            .swarm
            .social_held_one(key_of(RecordKind::Profile, me))
            .await
        {
            Some(SocialRecord::Profile(p)) => p.profile.version,
            _ => 0,
        };
        let version = now_ms().max(last + 1);
        let profile = Profile {
            creator: me,
            version,
            expires_ms: version + MAX_PROFILE_TTL_MS,
            name: set.name.trim().to_owned(),
            bio: set.bio.clone(),
            avatar: set.avatar.clone(),
        }
        .sign(self.inner.publisher.signing_key())
        .map_err(|e| NodeError::InvalidSocial(e.to_string()))?;
        let kept = self
            .inner
            .swarm
            .social_put(SocialRecord::Profile(profile.clone()), true)
            .await
            .map_err(social_error)?;
        self.keep_record(&kept);
        Ok(profile_info(&profile.profile))
    }

    /// Stores an avatar image (PNG, JPEG, GIF or WebP, at most 1 MiB) as a
    /// UnixFS file served to peers over Bitswap; returns its CID.
    pub async fn add_avatar(&self, bytes: Vec<u8>) -> Result<AvatarInfo, NodeError> {
        if bytes.len() > MAX_AVATAR_BYTES {
            return Err(NodeError::InvalidSocial(format!(
                "avatar of {} bytes, more than {MAX_AVATAR_BYTES}",
                bytes.len()
            )));
        }
        let content_type = image_type(&bytes).ok_or_else(|| {
            NodeError::InvalidSocial("avatar is not a PNG, JPEG, GIF or WebP image".into())
        })?;
        let store = self.inner.store.clone();
        let n = bytes.len() as u64;
        let cid = tokio::task::spawn_blocking(move || {
            let mut blocks = Vec::new();
            let entry = unixfs::import_file(&bytes, CidVersion::V1, &mut |c: &Cid, b: &[u8]| {
                blocks.push((*c, b.to_vec()));
                Ok(())
            })?;
            store.recordings.write_blocks(&blocks, None)?;
            store.social.set_avatar(&entry.cid.to_string())?;
            Ok::<_, NodeError>(entry.cid)
        })
        .await
        .map_err(|e| NodeError::InvalidSocial(format!("avatar task failed: {e}")))??;
        Ok(AvatarInfo {
            cid: cid.to_string(),
            bytes: n,
            content_type: content_type.into(),
        })
    }

    /// An avatar image by CID: held here, or fetched from peers over
    /// Bitswap (every block checked against its CID), and refused unless it
    /// is an image within the size limit.
    pub async fn avatar(&self, cid: &str) -> Result<(Vec<u8>, &'static str), NodeError> {
        let root = super::vod::parse_cid(cid)?;
        let bytes = self
            .with_blocks(move |get| {
                let size = match unixfs::decode(&root, get(&root)?)? {
                    unixfs::Node::Raw(b) => b.len() as u64,
                    unixfs::Node::Pb(_, d) => d.filesize.unwrap_or(u64::MAX),
                };
                if size > MAX_AVATAR_BYTES as u64 {
                    return Err(unixfs::UnixfsError::Malformed(format!(
                        "{size} bytes, more than an avatar's {MAX_AVATAR_BYTES}"
                    )));
                }
                unixfs::read_file(&root, get)
            })
            .await?;
        let t = image_type(&bytes).ok_or_else(|| {
            NodeError::InvalidSocial(format!("{cid} is not a PNG, JPEG, GIF or WebP image"))
        })?;
        Ok((bytes, t))
    }

    /// Follows (`follow`) or unfollows a creator: one signed operation,
    /// merged into the user's follows record and the creator's followers
    /// index, both published.
    pub async fn follow(&self, creator: &str, follow: bool) -> Result<FollowInfo, NodeError> {
        let c = parse_key(creator, "creator")?;
        let me = self.me();
        if c == me {
            return Err(NodeError::InvalidSocial(
                "a user cannot follow itself".into(),
            ));
        }
        let _w = self.inner.social.writing.lock().await;
        let held = self
            .inner
            .swarm
            .social_held_one(key_of(RecordKind::Follows, me))
            .await;
        let ops = held.as_ref().map(|r| r.ops().to_vec()).unwrap_or_default();
        let last = ops.iter().find(|o| o.op.creator == c).map(|o| o.op.at_ms);
        if last.is_none() && ops.len() >= MAX_FOLLOW_OPS {
            return Err(NodeError::InvalidSocial(format!(
                "this user has follow operations for {MAX_FOLLOW_OPS} creators, the most one record holds"
            )));
        }
        let at_ms = now_ms().max(last.map_or(0, |l| l + 1));
        let op = FollowOp {
            follower: me,
            creator: c,
            follow,
            at_ms,
        }
        .sign(self.inner.publisher.signing_key())
        .map_err(|e| NodeError::InvalidSocial(e.to_string()))?;
        let record = SocialRecord::Follows {
            subject: me,
            ops: vec![op],
        };
        let kept = self
            .inner
            .swarm
            .social_put(record, true)
            .await
            .map_err(social_error)?;
        self.keep_record(&kept);
        self.set_followed(&kept);
        let index = SocialRecord::Followers {
            subject: c,
            ops: vec![op],
        };
        if let Err(e) = self.inner.swarm.social_put(index, false).await {
            debug!(error = %e, "the creator's followers index was not updated");
        }
        Ok(follow_info(&op))
    }

    /// The user's follows.
    pub async fn follows(&self) -> Result<FollowsView, NodeError> {
        self.follows_of(&hex::encode(self.me())).await
    }

    /// A user's follows, from its signed operations (held here, then the
    /// DHT).
    pub async fn follows_of(&self, user: &str) -> Result<FollowsView, NodeError> {
        let u = parse_key(user, "user")?;
        let r = self
            .inner
            .swarm
            .social_get(key_of(RecordKind::Follows, u))
            .await
            .map_err(social_error)?;
        let ops = r.as_ref().map(|r| r.ops()).unwrap_or_default();
        let mut following: Vec<FollowInfo> = followed(ops).map(follow_info).collect();
        following.sort_by_key(|f| std::cmp::Reverse(f.at_ms));
        Ok(FollowsView {
            user: user.to_owned(),
            following,
            operations: ops.len(),
        })
    }

    /// A creator's followers, counted from the signed operations of its
    /// followers index (held here, then the DHT).
    pub async fn followers_of(&self, creator: &str) -> Result<FollowersView, NodeError> {
        let c = parse_key(creator, "creator")?;
        let r = self
            .inner
            .swarm
            .social_get(key_of(RecordKind::Followers, c))
            .await
            .map_err(social_error)?;
        let mut ops: Vec<&SignedFollowOp> = r
            .as_ref()
            .map(|r| followed(r.ops()).collect())
            .unwrap_or_default();
        ops.sort_by_key(|o| std::cmp::Reverse(o.op.at_ms));
        Ok(FollowersView {
            creator: creator.to_owned(),
            count: ops.len(),
            followers: ops.iter().map(|o| hex::encode(o.op.follower)).collect(),
        })
    }

    fn feed_item(&self, a: &SignedAnnouncement, live: bool, name: Option<String>) -> FeedItem {
        let an = &a.announcement;
        FeedItem {
            stream: an.stream.to_string(),
            creator: hex::encode(an.stream.creator),
            name,
            title: an.title.clone(),
            tags: an.tags.clone(),
            live,
            at_ms: an.updated_at_ms,
        }
    }

    /// The live streams of followed creators, and the latest
    /// notifications.
    pub async fn feed(&self) -> FeedView {
        let followed = lock(&self.inner.social.followed).clone();
        let now = tokio::time::Instant::now();
        let stale = self.inner.config.announce_interval() * 4;
        let mut live: Vec<FeedItem> = lock(&self.inner.catalog)
            .all()
            .filter(|(id, e)| {
                followed.contains(&id.creator)
                    && e.state(now, stale) == vilokanam_api::StreamState::Live
            })
            .filter_map(|(_, e)| {
                e.announcement
                    .as_ref()
                    .map(|a| self.feed_item(a, true, None))
            })
            .collect();
        live.sort_by_key(|f| std::cmp::Reverse(f.at_ms));
        for item in &mut live {
            item.name = self.held_name(&item.creator).await;
        }
        let recent = lock(&self.inner.social.recent).iter().cloned().collect();
        FeedView { live, recent }
    }

    /// Feed events as they happen, and the node's stop signal.
    pub fn feed_events(
        &self,
    ) -> (
        broadcast::Receiver<FeedEvent>,
        tokio::sync::watch::Receiver<bool>,
    ) {
        (
            self.inner.social.events.subscribe(),
            self.inner.stop.subscribe(),
        )
    }

    /// A creator's display name, when its profile is held here (no
    /// lookup).
    async fn held_name(&self, creator_hex: &str) -> Option<String> {
        let creator = parse_key(creator_hex, "creator").ok()?;
        match self
            .inner
            .swarm
            .social_held_one(key_of(RecordKind::Profile, creator))
            .await
        {
            Some(SocialRecord::Profile(p)) => Some(p.profile.name),
            _ => None,
        }
    }

    fn notify(&self, ev: FeedEvent) {
        let mut r = lock(&self.inner.social.recent);
        r.push_front(ev.clone());
        r.truncate(RECENT);
        drop(r);
        self.inner.metrics.feed_notifications.inc();
        let _ = self.inner.social.events.send(ev);
    }
}

/// How recent a stream's start must be for its first announcement heard
/// here to be a "went live" notification (older: it is in the feed's live
/// list, but this node only now heard of it).
const FRESH_START_MS: u64 = 5 * 60 * 1000;

/// An announcement was heard and the catalog said what it changed: a
/// followed creator's stream that started (first heard and started
/// recently, or started again) or ended becomes a notification.
pub(crate) fn on_announcement(
    inner: &std::sync::Arc<Inner>,
    a: &SignedAnnouncement,
    change: super::catalog::Change,
) {
    use super::catalog::Change;
    let an = &a.announcement;
    if !lock(&inner.social.followed).contains(&an.stream.creator) {
        return;
    }
    let node = NodeHandle {
        inner: inner.clone(),
    };
    let live = match change {
        Change::Ended => false,
        Change::Restarted if !an.ended => true,
        Change::New if !an.ended && an.started_at_ms + FRESH_START_MS >= now_ms() => true,
        _ => return,
    };
    if !live {
        let item = node.feed_item(a, false, None);
        node.notify(FeedEvent::Ended(item));
        return;
    }
    // The profile's name when it is held here already (no lookup on the
    // event path).
    let a = a.clone();
    tokio::spawn(async move {
        let name = node
            .held_name(&hex::encode(a.announcement.stream.creator))
            .await;
        let item = node.feed_item(&a, true, name);
        node.notify(FeedEvent::Live(item));
    });
}
