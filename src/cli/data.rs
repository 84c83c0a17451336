//! `tessera data …`: what `scripts/fetch-data.sh` produced.

use anyhow::bail;

use super::options::{DataCommand, DataOpts};
use crate::paths;

/// Runs a data verb.
pub fn run(opts: DataOpts) -> anyhow::Result<()> {
    match opts.command {
        DataCommand::Check => check(),
    }
}

/// Prints every expected piece and what was found; fails naming what is wrong.
fn check() -> anyhow::Result<()> {
    let dir = paths::data_dir();
    let pieces = crate::data::check::check(&dir);
    println!("data in {}", dir.display());
    println!("{:<36} {:>12} {:>12}", "piece", "found", "expected");
    for piece in &pieces {
        let mark = if piece.ok { "" } else { "  <- wrong" };
        println!(
            "{:<36} {:>12} {:>12}{mark}",
            piece.path, piece.found, piece.expected
        );
    }
    let bad: Vec<&str> = pieces
        .iter()
        .filter(|p| !p.ok)
        .map(|p| p.path.as_str())
        .collect();
    if !bad.is_empty() {
        bail!(
            "missing or damaged: {} (run scripts/fetch-data.sh)",
            bad.join(", ")
        );
    }
    Ok(())
}
