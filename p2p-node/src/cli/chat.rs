//! `vilokanam chat`: a stream's chat through the local daemon. `chat
//! STREAM` prints the recent messages, then new ones as they come, and
//! sends each line typed on stdin; the other subcommands send one message
//! or one moderation action (signed with the daemon's creator key, which
//! must be the stream's creator's or a moderator's).

use anyhow::{Context, Result};
use clap::Subcommand;
use futures::StreamExt;
use tokio::io::AsyncBufReadExt;
use vilokanam_api::{ApiClient, ChatActionInfo, ChatEvent, ChatMessageInfo, ChatModerate};

use super::ApiArg;

/// What to do in a chat.
#[derive(Subcommand, Debug)]
pub enum ChatCmd {
    /// Follow the chat: the recent messages, then new ones; each line typed
    /// is sent (Ctrl-D or Ctrl-C ends).
    Open {
        /// The stream (`<creator key>-<name>`).
        stream: String,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
    /// Send one message (at most 500 characters).
    Say {
        /// The stream.
        stream: String,
        /// The text.
        text: String,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
    /// Print the recent messages, moderators and actions in force.
    Log {
        /// The stream.
        stream: String,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
    /// Moderate: ban, unban, timeout, delete, slow mode, moderators.
    Mod {
        /// The stream.
        stream: String,
        /// The action.
        #[command(subcommand)]
        action: ModCmd,
        /// The daemon's API.
        #[command(flatten)]
        api: ApiArg,
    },
}

/// A moderation action.
#[derive(Subcommand, Debug)]
pub enum ModCmd {
    /// The key (hex) may not chat until unbanned; its messages go.
    Ban {
        /// Creator key (hex) of the sender.
        key: String,
    },
    /// Lifts a ban or a timeout.
    Unban {
        /// Key (hex).
        key: String,
    },
    /// The key may not chat for SECS seconds (1 to 1209600, two weeks).
    Timeout {
        /// Key (hex).
        key: String,
        /// Seconds.
        secs: u32,
    },
    /// Removes one message (its sender key and counter, as `chat log`
    /// prints them) everywhere.
    Delete {
        /// Sender key (hex).
        sender: String,
        /// Its counter.
        seq: u64,
    },
    /// One message per SECS per viewer (0 turns it off; at most 120).
    Slow {
        /// Seconds.
        secs: u32,
    },
    /// Followers-only: viewers chat only if they have followed the creator
    /// for at least MIN_SECS (0: any follow; at most 90 days).
    Followers {
        /// Follow age, seconds.
        #[arg(default_value_t = 0)]
        min_secs: u32,
    },
    /// Turns followers-only mode off.
    FollowersOff,
    /// Paid-viewers-only: viewers chat only while they pay for the stream.
    PaidOnly,
    /// Turns paid-viewers-only mode off.
    PaidOff,
    /// Names a moderator (the stream's creator only).
    Add {
        /// Key (hex).
        key: String,
    },
    /// Removes a moderator (the stream's creator only).
    Remove {
        /// Key (hex).
        key: String,
    },
}

fn short(key: &str) -> &str {
    key.get(..8).unwrap_or(key)
}

fn print_message(m: &ChatMessageInfo) {
    println!("[{}#{}] {}", short(&m.sender), m.seq, m.text);
}

fn describe(a: &ChatActionInfo) -> String {
    let what = match &a.action {
        ChatModerate::Ban { target } => format!("banned {}", short(target)),
        ChatModerate::Unban { target } => format!("unbanned {}", short(target)),
        ChatModerate::Timeout { target, secs } => {
            format!("timed out {} for {secs} s", short(target))
        }
        ChatModerate::Delete { sender, seq } => {
            format!("deleted message {}#{seq}", short(sender))
        }
        ChatModerate::SlowMode { secs: 0 } => "turned slow mode off".into(),
        ChatModerate::SlowMode { secs } => format!("set slow mode to {secs} s"),
        ChatModerate::FollowersOnly {
            min_follow_secs: None,
        } => "turned followers-only mode off".into(),
        ChatModerate::PaidOnly { on: true } => "set paid-viewers-only mode".into(),
        ChatModerate::PaidOnly { on: false } => "turned paid-viewers-only mode off".into(),
        ChatModerate::FollowersOnly {
            min_follow_secs: Some(s),
        } => format!("set followers-only mode (follows of at least {s} s)"),
        ChatModerate::AddModerator { key } => format!("named {} a moderator", short(key)),
        ChatModerate::RemoveModerator { key } => {
            format!("removed moderator {}", short(key))
        }
    };
    format!("* {} {what}", short(&a.issuer))
}

async fn open(client: &ApiClient, stream: &str) -> Result<()> {
    client.chat_join(stream).await?;
    let mut events = client.chat_events(stream).await?;
    let view = client.chat(stream).await?;
    for m in &view.messages {
        print_message(m);
    }
    eprintln!("-- in the chat of {stream}; type a line to send it, Ctrl-D to leave --");
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(ChatEvent::Message(m))) => print_message(&m),
                Some(Ok(ChatEvent::Moderation(a))) => println!("{}", describe(&a)),
                Some(Err(e)) => return Err(e).context("reading the chat's events"),
                None => {
                    eprintln!("the daemon closed the chat's event stream");
                    return Ok(());
                }
            },
            line = lines.next_line(), if stdin_open => match line? {
                Some(l) if l.trim().is_empty() => {}
                Some(l) => {
                    if let Err(e) = client.chat_send(stream, &l).await {
                        eprintln!("not sent: {e}");
                    }
                }
                None => stdin_open = false,
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        if !stdin_open {
            return Ok(());
        }
    }
}

/// Runs a chat subcommand.
pub async fn run(cmd: ChatCmd) -> Result<()> {
    match cmd {
        ChatCmd::Open { stream, api } => open(&api.client(), &stream).await,
        ChatCmd::Say { stream, text, api } => {
            let m = api.client().chat_send(&stream, &text).await?;
            println!("sent {}#{}", m.sender, m.seq);
            Ok(())
        }
        ChatCmd::Log { stream, api } => {
            let client = api.client();
            client.chat_join(&stream).await?;
            let view = client.chat(&stream).await?;
            for m in &view.messages {
                println!("{} {}#{} {}", m.sent_ms, m.sender, m.seq, m.text);
            }
            for k in &view.moderators {
                println!("moderator {k}");
            }
            for a in &view.actions {
                println!("{}", describe(a));
            }
            Ok(())
        }
        ChatCmd::Mod {
            stream,
            action,
            api,
        } => {
            let req = match action {
                ModCmd::Ban { key } => ChatModerate::Ban { target: key },
                ModCmd::Unban { key } => ChatModerate::Unban { target: key },
                ModCmd::Timeout { key, secs } => ChatModerate::Timeout { target: key, secs },
                ModCmd::Delete { sender, seq } => ChatModerate::Delete { sender, seq },
                ModCmd::Slow { secs } => ChatModerate::SlowMode { secs },
                ModCmd::Followers { min_secs } => ChatModerate::FollowersOnly {
                    min_follow_secs: Some(min_secs),
                },
                ModCmd::FollowersOff => ChatModerate::FollowersOnly {
                    min_follow_secs: None,
                },
                ModCmd::PaidOnly => ChatModerate::PaidOnly { on: true },
                ModCmd::PaidOff => ChatModerate::PaidOnly { on: false },
                ModCmd::Add { key } => ChatModerate::AddModerator { key },
                ModCmd::Remove { key } => ChatModerate::RemoveModerator { key },
            };
            let a = api.client().chat_moderate(&stream, &req).await?;
            println!("{}", describe(&a));
            Ok(())
        }
    }
}
