//! `ops outcomes recompute`: judges stored outcomes again from their recorded revisions and
//! the stored price minutes (`tracker::recompute`, the same code the live tracker replays
//! with) and rewrites the documents that differ.

use g3_appwrite::Client;
use tracker::recompute::{self, Recomputed};

/// Which outcomes to recompute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Signal(String),
    All,
}

/// Recomputes and (unless `dry_run`) rewrites what changed; one line per signal and a total.
pub async fn recompute(client: &Client, scope: &Scope, dry_run: bool) -> anyhow::Result<String> {
    let done: Vec<Recomputed> = match scope {
        Scope::Signal(id) => vec![recompute::signal(client, id, !dry_run).await?],
        Scope::All => recompute::all(client, !dry_run).await?,
    };
    let mut lines = Vec::with_capacity(done.len() + 1);
    let mut changed = 0;
    for r in &done {
        if r.changed() {
            changed += 1;
            lines.push(format!(
                "{}: {} ({} -> {})",
                r.id,
                if dry_run { "would change" } else { "rewritten" },
                r.before.status,
                r.after.status
            ));
        } else {
            lines.push(format!("{}: unchanged ({})", r.id, r.after.status));
        }
    }
    lines.push(format!(
        "{} outcome(s) recomputed, {changed} {}",
        done.len(),
        if dry_run { "would change" } else { "rewritten" }
    ));
    Ok(lines.join("\n"))
}
