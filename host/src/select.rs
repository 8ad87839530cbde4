//! Which connection(s) a command runs on.
//!
//! A cmdlet runs on: every connection with `--all-connections`; the one named by
//! `--connection-id` or `--prefix`; the one whose prefix its noun carries
//! (`Get-ContosoMailbox` → Get-Mailbox on the connection with prefix Contoso); otherwise the
//! most recent connection, like the reference module's Get-EXO* cmdlets.

use anyhow::{anyhow, bail};
use session::cache::Entry;
use uuid::Uuid;

use crate::cli::Selection;

/// The connections `selection` names (all of them when it names none).
pub fn matching<'e>(entries: &'e [Entry], selection: &Selection) -> anyhow::Result<Vec<&'e Entry>> {
    if selection.connection_ids.is_empty() && selection.prefixes.is_empty() {
        return Ok(entries.iter().collect());
    }
    for id in &selection.connection_ids {
        if !entries.iter().any(|e| e.connection.id == *id) {
            bail!("no connection has ConnectionId {id}; `exo connections` lists them");
        }
    }
    for prefix in &selection.prefixes {
        if !entries.iter().any(|e| has_prefix(e, prefix)) {
            bail!("no connection has the prefix {prefix}; `exo connections` lists them");
        }
    }
    Ok(entries
        .iter()
        .filter(|e| {
            selection.connection_ids.contains(&e.connection.id)
                || selection.prefixes.iter().any(|p| has_prefix(e, p))
        })
        .collect())
}

/// Where a cmdlet runs, and its name there (without a connection prefix).
pub struct CmdletTargets<'e> {
    /// The connections.
    pub entries: Vec<&'e Entry>,
    /// The cmdlet's name as Exchange knows it.
    pub cmdlet: String,
}

/// Chooses the connections for cmdlet `name`.
pub fn for_cmdlet<'e>(
    entries: &'e [Entry],
    name: &str,
    connection_id: Option<Uuid>,
    prefix: Option<&str>,
    all: bool,
) -> anyhow::Result<CmdletTargets<'e>> {
    if entries.is_empty() {
        bail!("there is no connection; sign in first with `exo connect --method <METHOD>`");
    }
    if all {
        return Ok(CmdletTargets {
            entries: entries.iter().collect(),
            cmdlet: name.to_owned(),
        });
    }
    if let Some(id) = connection_id {
        let entry = entries
            .iter()
            .find(|e| e.connection.id == id)
            .ok_or_else(|| {
                anyhow!("no connection has ConnectionId {id}; `exo connections` lists them")
            })?;
        return Ok(CmdletTargets {
            entries: vec![entry],
            cmdlet: strip_prefix(name, entry),
        });
    }
    if let Some(prefix) = prefix {
        let entry = entries
            .iter()
            .find(|e| has_prefix(e, prefix))
            .ok_or_else(|| {
                anyhow!("no connection has the prefix {prefix}; `exo connections` lists them")
            })?;
        return Ok(CmdletTargets {
            entries: vec![entry],
            cmdlet: strip_prefix(name, entry),
        });
    }
    if let Some(entry) = entries.iter().find(|e| strip_prefix(name, e) != name) {
        return Ok(CmdletTargets {
            entries: vec![entry],
            cmdlet: strip_prefix(name, entry),
        });
    }
    let latest = entries
        .iter()
        .max_by_key(|e| (e.connection.created_at, e.connection.number))
        .expect("entries is not empty");
    Ok(CmdletTargets {
        entries: vec![latest],
        cmdlet: name.to_owned(),
    })
}

fn has_prefix(entry: &Entry, prefix: &str) -> bool {
    entry
        .connection
        .prefix
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// `Get-ContosoMailbox` → `Get-Mailbox` when `entry` has the prefix Contoso.
fn strip_prefix(name: &str, entry: &Entry) -> String {
    let (Some(prefix), Some((verb, noun))) =
        (entry.connection.prefix.as_deref(), name.split_once('-'))
    else {
        return name.to_owned();
    };
    match noun.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) && noun.len() > prefix.len() => {
            format!("{verb}-{}", &noun[prefix.len()..])
        }
        _ => name.to_owned(),
    }
}
