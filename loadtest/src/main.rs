//! `loadtest`: the load generator built for event gateways. Its scenarios, open-loop rate
//! control and `--verify` are the subject of their own issue; this binary only reserves the
//! name and the flags' shape so far.

use clap::Parser;

/// A load generator built for event gateways (not yet implemented).
#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about)]
struct Args {
    /// Base URL of the gateway under test.
    #[arg(long)]
    url: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::bail!(
        "loadtest is not implemented yet (target {:?}); see the open loadtest issue",
        args.url
    )
}
