//! `vilokanam`: the command-line entry point (see the library docs).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    vilokanam::cli::main().await
}
