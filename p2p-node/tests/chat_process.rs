//! Chat with real `vilokanam` processes: five daemons in a line (0 — 1 —
//! 2 — 3 — 4, discovery off, so every message crosses up to four hops)
//! take part in the chat of node 0's stream. A message sent with `vilokanam
//! chat say` at node 2 reaches every node once (and node 4's server-sent
//! event stream); the creator bans node 3's key with `vilokanam chat mod
//! ... ban`, every node applies it and node 3's `chat say` is refused with
//! the reason; a sixth daemon that joins late gets the history and the
//! ban from its peer (`vilokanam chat log`); the creator's node, restarted,
//! still holds the ban it issued.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futures::StreamExt;
use vilokanam_api::{ChatEvent, ChatModerate};
use vilokanam_testnet::{wait_until, Api, NodeOptions, Testnet};

const BIN: &str = env!("CARGO_BIN_EXE_vilokanam");

fn line(i: usize) -> NodeOptions {
    NodeOptions {
        bootstrap: if i == 0 { vec![] } else { vec![i - 1] },
        ..NodeOptions::default()
    }
}

async fn cli(args: &[&str]) -> Result<std::process::Output> {
    tokio::process::Command::new(BIN)
        .args(args)
        .output()
        .await
        .context("running vilokanam")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_crosses_real_daemons_and_a_ban_holds_everywhere() -> Result<()> {
    let mut t = Testnet::new(BIN, None)?;
    for i in 0..5 {
        t.spawn(line(i)).await?;
    }
    let apis: Vec<Api> = (0..5).map(|i| t.api(i)).collect::<Result<_>>()?;
    let creator = apis[0].id().await?.creator_key;
    let stream = format!("{creator}-show");
    vilokanam_testnet::join_chat_line(&apis, &stream).await?;
    let mut events = apis[4].chat_events(&stream).await?;

    // A message from node 2, sent with the CLI.
    let addr2 = t.node(2)?.api_addr.clone();
    let sent = Instant::now();
    let out = cli(&[
        "chat",
        "say",
        &stream,
        "hello from two Kappa",
        "--api",
        &addr2,
    ])
    .await?;
    ensure!(out.status.success(), "chat say: {out:?}");
    let ev = tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .context("node 4's event stream: nothing in 20 s")?
        .context("node 4's event stream ended")??;
    let ChatEvent::Message(m) = ev else {
        anyhow::bail!("expected a message, got {ev:?}");
    };
    ensure!(m.text == "hello from two Kappa", "{m:?}");
    eprintln!("four hops in {:?}", sent.elapsed());
    for (i, api) in apis.iter().enumerate() {
        let view = api.chat(&stream).await?;
        ensure!(
            view.messages
                .iter()
                .filter(|m| m.text == "hello from two Kappa")
                .count()
                == 1,
            "node {i}: {view:?}"
        );
    }

    // The creator bans node 3's key with the CLI; every node applies it.
    let troll = apis[3].id().await?.creator_key;
    let addr0 = t.node(0)?.api_addr.clone();
    let out = cli(&["chat", "mod", &stream, "--api", &addr0, "ban", &troll]).await?;
    ensure!(out.status.success(), "chat mod ban: {out:?}");
    let banned = |a: &vilokanam_api::ChatActionInfo| matches!(&a.action, ChatModerate::Ban { target } if *target == troll);
    for (i, api) in apis.iter().enumerate() {
        let api = api.clone();
        let stream = stream.clone();
        wait_until(
            &format!("node {i} applies the ban"),
            Duration::from_secs(20),
            move || {
                let (api, stream) = (api.clone(), stream.clone());
                async move { Ok(api.chat(&stream).await?.actions.iter().any(banned)) }
            },
        )
        .await?;
    }
    let addr3 = t.node(3)?.api_addr.clone();
    let out = cli(&["chat", "say", &stream, "you cannot ban me", "--api", &addr3]).await?;
    ensure!(!out.status.success(), "a banned key's message was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("banned"), "the refusal says why: {err}");

    // A late joiner gets the history and the ban from node 4.
    t.spawn(line(5)).await?;
    let addr5 = t.node(5)?.api_addr.clone();
    let api5 = t.api(5)?;
    api5.chat_join(&stream).await?;
    {
        let (api5, stream) = (api5.clone(), stream.clone());
        wait_until(
            "the late joiner's history",
            Duration::from_secs(30),
            move || {
                let (api5, stream) = (api5.clone(), stream.clone());
                async move {
                    let v = api5.chat(&stream).await?;
                    Ok(!v.messages.is_empty() && !v.actions.is_empty())
                }
            },
        )
        .await?;
    }
    let out = cli(&["chat", "log", &stream, "--api", &addr5]).await?;
    let log = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "chat log: {out:?}");
    ensure!(log.contains("hello from two Kappa"), "{log}");
    ensure!(log.contains(&format!("banned {}", &troll[..8])), "{log}");

    // The creator's node restarts with no peer (its neighbour is stopped
    // first): the ban it issued is still in force there, from its store.
    t.stop(1).await?;
    t.stop(0).await?;
    t.restart(0, line(0)).await?;
    ensure!(
        t.api(0)?.peers().await?.is_empty(),
        "no peer to learn it from"
    );
    let api0 = t.api(0)?;
    api0.chat_join(&stream).await?;
    let view = api0.chat(&stream).await?;
    ensure!(view.actions.iter().any(banned), "after a restart: {view:?}");
    t.shutdown().await?;
    Ok(())
}
