//! Profiles, follows and the feed with real `vilokanam` processes: five
//! daemons in a line (0 — 1 — 2 — 3 — 4, discovery off) plus node 5, a
//! second node of node 0's user (the same creator key) attached to node 4.
//!
//! - `vilokanam profile set --avatar` at node 0 resolves with `profile get`
//!   at node 4, four hops away; the avatar is fetched over Bitswap at node
//!   1 and is byte for byte the image;
//! - `vilokanam follow` at node 2 is visible from node 4 (`following`), and
//!   the creator's followers count it (`followers`);
//! - node 0 and node 5 (one user, two devices) follow and unfollow at the
//!   same time and both end with the same set, nothing lost; node 5 keeps
//!   it across a restart;
//! - node 4's user follows node 0's creator; node 0 goes live; node 4's
//!   feed (server-sent events) says so, and the time it took is printed;
//!   search at node 4 finds the stream by title, creator name and tag;
//! - the creator makes its chat followers-only: node 2's user, who does
//!   not follow it, is refused with the reason; node 4's user chats.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futures::StreamExt;
use vilokanam_api::FeedEvent;
use vilokanam_testnet::{wait_until, Api, NodeOptions, Testnet, FIXTURE};

const BIN: &str = env!("CARGO_BIN_EXE_vilokanam");

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn linked(to: usize) -> NodeOptions {
    NodeOptions {
        bootstrap: vec![to],
        ..NodeOptions::default()
    }
}

async fn cli(args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .output()
        .await
        .context("running vilokanam")?;
    ensure!(
        out.status.success(),
        "vilokanam {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn followed(api: &Api) -> Result<Vec<String>> {
    let mut v: Vec<String> = api
        .follows(None)
        .await?
        .following
        .into_iter()
        .map(|f| f.creator)
        .collect();
    v.sort();
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_follows_and_the_feed_cross_real_daemons() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut t = Testnet::new(BIN, Some(dir.path().to_path_buf()))?;
    t.spawn(NodeOptions::default()).await?;
    for i in 1..5 {
        t.spawn(linked(i - 1)).await?;
    }
    // Node 5: node 0's user on a second machine (its creator key copied).
    let second = dir.path().join("node5");
    std::fs::create_dir_all(&second)?;
    std::fs::copy(
        t.node(0)?.data_dir.join("creator.key"),
        second.join("creator.key"),
    )?;
    t.spawn(linked(4)).await?;
    t.wait_connected().await?;
    let apis: Vec<Api> = (0..6).map(|i| t.api(i)).collect::<Result<_>>()?;
    let keys: Vec<String> = {
        let mut k = Vec::new();
        for a in &apis {
            k.push(a.id().await?.creator_key);
        }
        k
    };
    ensure!(keys[5] == keys[0], "node 5 must be node 0's user");
    let addrs: Vec<String> = (0..6)
        .map(|i| t.node(i).map(|n| n.api_addr.clone()))
        .collect::<Result<_>>()?;
    let addr = |i: usize| -> Result<String> { Ok(addrs[i].clone()) };

    // A profile with an avatar, set with the CLI at node 0.
    let png = dir.path().join("avatar.png");
    std::fs::write(&png, PNG)?;
    cli(&[
        "profile",
        "set",
        "--name",
        "Alice",
        "--bio",
        "streams chess",
        "--avatar",
        &png.to_string_lossy(),
        "--api",
        &addr(0)?,
    ])
    .await?;
    let started = Instant::now();
    let a4 = apis[4].clone();
    let k0 = keys[0].clone();
    wait_until(
        "node 4 resolves the profile",
        Duration::from_secs(30),
        move || {
            let (a4, k0) = (a4.clone(), k0.clone());
            async move { Ok(a4.profile_of(&k0).await.is_ok_and(|p| p.name == "Alice")) }
        },
    )
    .await?;
    eprintln!(
        "profile set at node 0 resolved at node 4 in {:?}",
        started.elapsed()
    );
    let out = cli(&["profile", "get", &keys[0], "--api", &addr(4)?]).await?;
    ensure!(
        out.contains("Alice") && out.contains("streams chess"),
        "{out}"
    );
    let got = dir.path().join("got.png");
    cli(&[
        "profile",
        "get",
        &keys[0],
        "--avatar-out",
        &got.to_string_lossy(),
        "--api",
        &addr(1)?,
    ])
    .await?;
    ensure!(
        std::fs::read(&got)? == PNG,
        "the avatar fetched is not the image"
    );
    // Garbage as an avatar is refused with the reason.
    let (status, body) = apis[0]
        .raw(
            vilokanam_api::reqwest::Method::POST,
            "/api/v0/avatar",
            b"not an image".to_vec(),
        )
        .await?;
    ensure!(
        status == 400 && body.contains("not a PNG"),
        "{status} {body}"
    );

    // A follow at node 2, seen from node 4; the creator's followers count it.
    let out = cli(&["follow", &keys[3], "--api", &addr(2)?]).await?;
    ensure!(out.starts_with("following"), "{out}");
    let (a4, k2, k3) = (apis[4].clone(), keys[2].clone(), keys[3].clone());
    wait_until(
        "node 4 sees node 2's follow",
        Duration::from_secs(30),
        move || {
            let (a4, k2, k3) = (a4.clone(), k2.clone(), k3.clone());
            async move {
                Ok(a4
                    .follows(Some(&k2))
                    .await?
                    .following
                    .iter()
                    .any(|f| f.creator == k3))
            }
        },
    )
    .await?;
    let out = cli(&["following", &keys[2], "--api", &addr(4)?]).await?;
    ensure!(out.contains(&keys[3]), "{out}");
    let (a3, k3) = (apis[3].clone(), keys[3].clone());
    wait_until(
        "the creator's followers index",
        Duration::from_secs(30),
        move || {
            let (a3, k3) = (a3.clone(), k3.clone());
            async move { Ok(a3.followers(&k3).await?.count == 1) }
        },
    )
    .await?;

    // One user, two devices, at the same time: node 0 follows 1 and 2,
    // node 5 follows 3 and unfollows 1 (after node 0's follow of 1).
    let (r0, r5) = tokio::join!(
        async {
            apis[0].follow(&keys[1], true).await?;
            apis[0].follow(&keys[2], true).await
        },
        async {
            apis[5].follow(&keys[3], true).await?;
            apis[5].follow(&keys[1], true).await?;
            apis[5].follow(&keys[1], false).await
        }
    );
    r0?;
    r5?;
    let mut want = vec![keys[2].clone(), keys[3].clone()];
    want.sort();
    for i in [0, 5] {
        let (api, want) = (apis[i].clone(), want.clone());
        wait_until(
            &format!("node {i} converges"),
            Duration::from_secs(30),
            move || {
                let (api, want) = (api.clone(), want.clone());
                async move { Ok(followed(&api).await? == want) }
            },
        )
        .await?;
    }
    // Node 5 keeps the merged set across a restart.
    t.stop(5).await?;
    t.restart(5, linked(4)).await?;
    ensure!(followed(&t.api(5)?).await? == want, "node 5 lost follows");

    // Node 4's user follows node 0's creator; node 0 goes live.
    apis[4].follow(&keys[0], true).await?;
    let mut feed = apis[4].feed_events().await?;
    let clip = dir.path().join("sample.ts");
    std::fs::write(&clip, FIXTURE)?;
    let live_at = Instant::now();
    let _publish = t.publish(
        0,
        &[
            "--name",
            "chess",
            "--title",
            "Sicilian defence, move by move",
            "--tags",
            "chess,openings",
            "--input",
            &clip.to_string_lossy(),
            "--realtime",
            "--loop",
        ],
        Stdio::null(),
    )?;
    let ev = tokio::time::timeout(Duration::from_secs(30), feed.next())
        .await
        .context("no feed event at node 4 in 30 s")?
        .context("the feed's event stream ended")??;
    let FeedEvent::Live(item) = ev else {
        anyhow::bail!("expected a live notification, got {ev:?}");
    };
    eprintln!("go-live to node 4's notification: {:?}", live_at.elapsed());
    ensure!(item.stream == format!("{}-chess", keys[0]), "{item:?}");
    ensure!(item.name.as_deref() == Some("Alice"), "{item:?}");
    let out = cli(&["feed", "--api", &addrs[4]]).await?;
    ensure!(out.contains("LIVE Alice"), "{out}");

    // Search at node 4: by a word of the title, by the creator's name, by
    // tag; the live stream of a followed creator first.
    let a4 = apis[4].clone();
    wait_until(
        "the stream in node 4's index",
        Duration::from_secs(10),
        move || {
            let a4 = a4.clone();
            async move { Ok(!a4.search(Some("sicilian"), None, 10).await?.hits.is_empty()) }
        },
    )
    .await?;
    for (text, tag) in [
        (Some("sicilian"), None),
        (Some("alice"), None),
        (None, Some("Chess")),
    ] {
        let r = apis[4].search(text, tag, 10).await?;
        let top = r.hits.first().context("no hit")?;
        ensure!(
            top.id == item.stream && top.live && top.followed,
            "{text:?} {tag:?}: {r:?}"
        );
    }
    let out = cli(&[
        "streams",
        "--search",
        "sicilian defence",
        "--api",
        &addrs[4],
    ])
    .await?;
    ensure!(out.contains("LIVE  *Alice: Sicilian defence"), "{out}");
    ensure!(
        apis[4]
            .search(Some("checkers"), None, 10)
            .await?
            .hits
            .is_empty(),
        "a word in no title matched"
    );

    // Followers-only chat: the creator turns it on with the CLI; node 2's
    // user (who does not follow the creator) is refused with the reason,
    // node 4's (who does) chats, and its message reaches the creator.
    let stream = item.stream.clone();
    vilokanam_testnet::join_chat_line(&apis[..5], &stream).await?;
    cli(&["chat", "mod", &stream, "--api", &addrs[0], "followers", "0"]).await?;
    for i in [2, 4] {
        let (api, stream) = (apis[i].clone(), stream.clone());
        wait_until(
            &format!("node {i} applies followers-only"),
            Duration::from_secs(20),
            move || {
                let (api, stream) = (api.clone(), stream.clone());
                async move {
                    Ok(api.chat(&stream).await?.actions.iter().any(|a| {
                        matches!(
                            a.action,
                            vilokanam_api::ChatModerate::FollowersOnly {
                                min_follow_secs: Some(0)
                            }
                        )
                    }))
                }
            },
        )
        .await?;
    }
    let refused = tokio::process::Command::new(BIN)
        .args(["chat", "say", &stream, "not a follower", "--api", &addrs[2]])
        .output()
        .await?;
    let err = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        !refused.status.success() && err.contains("followers-only"),
        "{err}"
    );
    cli(&[
        "chat",
        "say",
        &stream,
        "hello from a follower",
        "--api",
        &addrs[4],
    ])
    .await?;
    let (a0, s0) = (apis[0].clone(), stream.clone());
    wait_until(
        "the follower's message at the creator",
        Duration::from_secs(20),
        move || {
            let (a0, s0) = (a0.clone(), s0.clone());
            async move {
                Ok(a0
                    .chat(&s0)
                    .await?
                    .messages
                    .iter()
                    .any(|m| m.text == "hello from a follower"))
            }
        },
    )
    .await?;
    ensure!(
        !apis[0]
            .chat(&stream)
            .await?
            .messages
            .iter()
            .any(|m| m.text == "not a follower"),
        "the refused message travelled"
    );
    t.shutdown().await?;
    Ok(())
}
