//! VOD announcements: a creator's node announces each VOD it builds (its
//! signed record: creator, stream, title, duration, root, size, price) on
//! the announce topic, and again every `vod_announce_secs` (its newest
//! [`REANNOUNCED`]) for nodes that join later. Every node keeps what it
//! hears, checked by the swarm (signature, fields, rates; see
//! `vilokanam_swarm::protocols::live::announce`), in a bounded catalog
//! ([`vilokanam_storage::HeardVods`]): `vilokanam vod ls --heard`,
//! `GET /api/v0/vods/heard`. The signature is the creator's on its stored
//! record, so a heard record is kept exactly as signed, and pinning a heard
//! VOD keeps it with the creator's title and signature.

use tracing::{debug, info, warn};
use vilokanam_storage::VodRecord;
use vilokanam_swarm::protocols::live::wire::{SignedVodAnnouncement, VodAnnouncement};
use vilokanam_swarm::wire::Sig;

use super::{NodeError, NodeHandle};

/// Own VODs announced again each round (newest first).
pub const REANNOUNCED: usize = 16;
/// Own VODs are announced to a newly subscribed peer at most this often.
pub const OFFER_EVERY_MS: u64 = 10_000;

/// The record a VOD announcement carries, as the creator's node stores it.
pub fn record_of(v: &SignedVodAnnouncement) -> VodRecord {
    let a = &v.vod;
    VodRecord {
        root: a.root.clone(),
        stream: a.stream.to_string(),
        creator: hex::encode(a.stream.creator),
        title: a.title.clone(),
        duration_ms: a.duration_ms,
        segments: a.segments,
        bytes: a.bytes,
        created_ms: a.created_ms,
        signature: hex::encode(v.signature.0),
        ipfs_pinned: None,
        price_per_sec: a.price_per_sec,
    }
}

/// What a stored VOD record says, as the wire's (and the signature's)
/// form: the one definition of the bytes a creator signs for its VOD.
pub fn vod_of(r: &VodRecord) -> Option<VodAnnouncement> {
    Some(VodAnnouncement {
        stream: r.stream.parse().ok()?,
        root: r.root.clone(),
        title: r.title.clone(),
        duration_ms: r.duration_ms,
        segments: r.segments,
        bytes: r.bytes,
        created_ms: r.created_ms,
        price_per_sec: r.price_per_sec,
    })
}

/// Signs `r` with the creator's key (its signature field); a record that
/// is not well formed stays unsigned.
pub fn sign_record(r: &mut VodRecord, key: &ed25519_dalek::SigningKey) -> Result<(), NodeError> {
    let vod =
        vod_of(r).ok_or_else(|| NodeError::Vod(format!("VOD {} names no valid stream", r.root)))?;
    let signed = vod
        .sign(key)
        .map_err(|e| NodeError::Vod(format!("VOD {} cannot be signed: {e}", r.root)))?;
    r.signature = hex::encode(signed.signature.0);
    Ok(())
}

/// The announcement of a signed VOD record (`None` if it is unsigned or
/// not well formed).
pub fn announcement_of(r: &VodRecord) -> Option<SignedVodAnnouncement> {
    let signature: [u8; 64] = hex::decode(&r.signature).ok()?.try_into().ok()?;
    let v = SignedVodAnnouncement {
        vod: vod_of(r)?,
        signature: Sig(signature),
        sent_ms: super::now_ms(),
    };
    v.verify().ok()?;
    Some(v)
}

impl NodeHandle {
    /// Announces one of this node's own signed VODs.
    pub(crate) async fn announce_vod(&self, r: &VodRecord) {
        let Some(v) = announcement_of(r) else {
            debug!(root = %r.root, "not announced: not a VOD this node signed");
            return;
        };
        if v.vod.stream.creator != self.inner.identity.creator {
            return;
        }
        if let Err(e) = self.inner.swarm.announce_vod(v).await {
            warn!(root = %r.root, error = %e, "announcing the VOD failed");
        }
    }

    /// Announces this node's newest own VODs again (the announcer's round).
    pub(crate) async fn announce_own_vods(&self) {
        for r in self.own_signed_vods() {
            self.announce_vod(&r).await;
        }
    }

    /// This node's newest own signed VODs (at most [`REANNOUNCED`]).
    fn own_signed_vods(&self) -> Vec<VodRecord> {
        let own = &self.inner.identity.creator_key;
        let mut vods = self.inner.store.vods.all().unwrap_or_default();
        vods.retain(|r| r.creator == *own && !r.signature.is_empty());
        vods.truncate(REANNOUNCED);
        vods
    }

    /// A peer subscribed to the announce topic (a node that joined): it
    /// hears this node's VODs now rather than at the next round (at most
    /// once every [`OFFER_EVERY_MS`]).
    pub(crate) fn on_announce_subscriber(&self) {
        let node = self.clone();
        tokio::spawn(async move {
            use std::sync::atomic::Ordering;
            let vods = node.own_signed_vods();
            if vods.is_empty() {
                return;
            }
            let now = super::now_ms();
            let last = node.inner.vods_offered_ms.load(Ordering::Relaxed);
            if now.saturating_sub(last) < OFFER_EVERY_MS
                || node
                    .inner
                    .vods_offered_ms
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                return;
            }
            for r in vods {
                node.announce_vod(&r).await;
            }
        });
    }

    /// A VOD announcement the swarm checked: kept in the catalog (not this
    /// node's own).
    pub(crate) async fn on_vod_announced(&self, v: SignedVodAnnouncement) {
        if v.vod.stream.creator == self.inner.identity.creator {
            return;
        }
        let rec = record_of(&v);
        let store = self.inner.store.clone();
        let now = super::now_ms();
        let r = tokio::task::spawn_blocking(move || store.heard_vods.put(&rec, now)).await;
        match r {
            Ok(Ok(true)) => {
                self.inner.metrics.vods_heard.inc();
                super::super::search::index(
                    &self.inner,
                    super::super::search::vod_doc(&record_of(&v)),
                );
                info!(root = %v.vod.root, stream = %v.vod.stream, title = %v.vod.title, "VOD announced");
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => warn!(root = %v.vod.root, error = %e, "keeping a heard VOD failed"),
            Err(e) => warn!(error = %e, "the heard-VOD task failed"),
        }
    }

    /// The VODs other creators announced, newest first.
    pub fn heard_vods(&self) -> Result<Vec<VodRecord>, NodeError> {
        Ok(self.inner.store.heard_vods.all()?)
    }

    /// The creator's record of `root`, if this node heard it announced
    /// and the record fits the content: for a paid VOD, the record of its
    /// paywall's stream at its price; for a free one, the record when only
    /// one creator claims the root (anyone can sign a record naming any
    /// root, and a free VOD's files do not name their creator).
    pub(super) async fn heard_vod(
        &self,
        root: &str,
        paid: Option<&super::PaidVod>,
    ) -> Option<VodRecord> {
        let store = self.inner.store.clone();
        let root = root.to_owned();
        let claims = tokio::task::spawn_blocking(move || store.heard_vods.of_root(&root))
            .await
            .ok()?
            .ok()?;
        match paid {
            Some(p) => {
                let stream = p.stream.to_string();
                claims
                    .into_iter()
                    .find(|r| r.stream == stream && r.price_per_sec == p.offer.price_per_sec)
            }
            None => {
                let free: Vec<VodRecord> = claims.into_iter().filter(|r| !r.is_paid()).collect();
                let one = free.iter().all(|r| r.creator == free[0].creator);
                (one && !free.is_empty()).then(|| free[0].clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_record_and_its_announcement_carry_one_signature() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
        let creator = hex::encode(key.verifying_key().to_bytes());
        for price in [0, 7] {
            let mut r = VodRecord {
                root: "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi".into(),
                stream: format!("{creator}-show"),
                creator: creator.clone(),
                title: "a show".into(),
                duration_ms: 3_000,
                segments: 3,
                bytes: 999,
                created_ms: 12,
                signature: String::new(),
                ipfs_pinned: Some("http://x".into()),
                price_per_sec: price,
            };
            assert!(announcement_of(&r).is_none(), "unsigned");
            sign_record(&mut r, &key).unwrap();
            let v = announcement_of(&r).expect("the record's signature verifies");
            let back = record_of(&v);
            assert_eq!(
                back,
                VodRecord {
                    ipfs_pinned: None,
                    ..r.clone()
                }
            );
            // Tampered: no announcement.
            r.title = "another".into();
            assert!(announcement_of(&r).is_none());
        }
    }
}
