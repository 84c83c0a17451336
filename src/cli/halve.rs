//! `tessera halve`: the weights of a models folder stored in half precision, in place,
//! for files written before `train` wrote them so.

use std::path::Path;

use anyhow::Context;

/// Halves every `.bpk` file of `models` and prints each one's size before and after.
pub fn halve(models: &Path) -> anyhow::Result<()> {
    let mut files: Vec<_> = std::fs::read_dir(models)
        .with_context(|| format!("reading {}", models.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "bpk"))
        .collect();
    files.sort();
    if files.is_empty() {
        anyhow::bail!("no model weights (.bpk) in {}", models.display());
    }
    let (mut total_before, mut total_after) = (0, 0);
    for file in &files {
        let (before, after) = crate::store::halve(file)?;
        println!(
            "{:<40} {:>12} -> {:>12} bytes",
            file.display(),
            before,
            after
        );
        (total_before, total_after) = (total_before + before, total_after + after);
    }
    println!(
        "{:<40} {:>12} -> {:>12} bytes",
        "all", total_before, total_after
    );
    Ok(())
}
