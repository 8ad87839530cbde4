//! Which connection(s) a command runs on.
//!
//! A cmdlet runs on: every connection with `--all-connections`; the one named by
//! `--connection-id` or `--prefix`; the one whose prefix its noun carries
//! (`Get-ContosoMailbox` → Get-Mailbox on the connection with prefix Contoso); otherwise the
//! most recent connection, like the reference module's Get-EXO* cmdlets.

use anyhow::{anyhow, bail};
use session::cache::{CacheError, Entry, Store};
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
#[derive(Debug)]
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
    if all {
        ensure_any(entries)?;
        return Ok(CmdletTargets {
            entries: entries.iter().collect(),
            cmdlet: name.to_owned(),
        });
    }
    let entry = match (connection_id, prefix) {
        (Some(id), _) => by_id(entries, id)?,
        (None, Some(prefix)) => {
            entries
                .iter()
                .find(|e| has_prefix(e, prefix))
                .ok_or_else(|| {
                    anyhow!("no connection has the prefix {prefix}; `exo connections` lists them")
                })?
        }
        (None, None) => match entries.iter().find(|e| strip_prefix(name, e).is_some()) {
            Some(entry) => entry,
            None => latest(entries)?,
        },
    };
    let cmdlet = strip_prefix(name, entry).unwrap_or_else(|| name.to_owned());
    Ok(CmdletTargets {
        entries: vec![entry],
        cmdlet,
    })
}

/// The connections cmdlet `name` may run on, read from `store` without reading every connection
/// (except with `all`): the one named by `connection_id` or `prefix`; else those whose prefix the
/// noun may carry, and the most recent one. [`for_cmdlet`] chooses among them.
pub async fn cmdlet_candidates(
    store: &Store,
    name: &str,
    connection_id: Option<Uuid>,
    prefix: Option<&str>,
    all: bool,
) -> Result<Vec<Entry>, CacheError> {
    if all {
        return Ok(store.read().await?.entries);
    }
    let mut candidates = Vec::new();
    match (connection_id, prefix) {
        (Some(id), _) => candidates.extend(store.get(id).await?),
        (None, Some(prefix)) => candidates.extend(store.with_prefix(prefix).await?),
        (None, None) => {
            // `Get-ContosoMailbox`: a prefix ends where a new word starts.
            let noun = name.split_once('-').map_or("", |(_, noun)| noun);
            for (end, _) in noun
                .char_indices()
                .skip(1)
                .filter(|(_, c)| c.is_ascii_uppercase())
            {
                candidates.extend(store.with_prefix(&noun[..end]).await?);
            }
            candidates.extend(store.latest().await?);
        }
    }
    candidates.sort_by_key(|e| e.connection.number);
    candidates.dedup_by_key(|e| e.connection.id);
    Ok(candidates)
}

/// The connection `connection_id` names, else the most recent one, read from `store` without
/// reading every connection.
pub async fn one_from(store: &Store, connection_id: Option<Uuid>) -> anyhow::Result<Entry> {
    let found = match connection_id {
        Some(id) => store.get(id).await?,
        None => store.latest().await?,
    };
    Ok(one(found.as_slice(), connection_id)?.clone())
}

/// The connection named by `connection_id`, else the most recent one.
pub fn one(entries: &[Entry], connection_id: Option<Uuid>) -> anyhow::Result<&Entry> {
    match connection_id {
        Some(id) => by_id(entries, id),
        None => latest(entries),
    }
}

fn ensure_any(entries: &[Entry]) -> anyhow::Result<()> {
    if entries.is_empty() {
        bail!("there is no connection; sign in first with `exo connect --method <METHOD>`");
    }
    Ok(())
}

fn by_id(entries: &[Entry], id: Uuid) -> anyhow::Result<&Entry> {
    entries
        .iter()
        .find(|e| e.connection.id == id)
        .ok_or_else(|| anyhow!("no connection has ConnectionId {id}; `exo connections` lists them"))
}

/// The most recent connection, like the reference module's Get-EXO* cmdlets use.
fn latest(entries: &[Entry]) -> anyhow::Result<&Entry> {
    ensure_any(entries)?;
    Ok(entries
        .iter()
        .max_by_key(|e| (e.connection.created_at, e.connection.number))
        .expect("not empty"))
}

fn has_prefix(entry: &Entry, prefix: &str) -> bool {
    entry
        .connection
        .prefix
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// `Get-ContosoMailbox` → `Get-Mailbox` when `entry` has the prefix Contoso: the noun starts
/// with the prefix and what follows starts a new word (an uppercase letter), so that prefix
/// `Mail` does not turn `Get-Mailbox` into `Get-box`.
fn strip_prefix(name: &str, entry: &Entry) -> Option<String> {
    let prefix = entry.connection.prefix.as_deref()?;
    let (verb, noun) = name.split_once('-')?;
    let head = noun.get(..prefix.len())?;
    let rest = &noun[prefix.len()..];
    (head.eq_ignore_ascii_case(prefix) && rest.starts_with(|c: char| c.is_ascii_uppercase()))
        .then(|| format!("{verb}-{rest}"))
}

/// How each connection is named in output: the organization it acts for, else its name; when
/// two share an organization, their names are added.
pub fn labels(entries: &[&Entry]) -> Vec<String> {
    let base = |e: &Entry| {
        let c = &e.connection;
        c.delegated_organization
            .clone()
            .or_else(|| c.organization.clone())
            .unwrap_or_else(|| c.name())
    };
    let bases: Vec<String> = entries.iter().map(|e| base(e)).collect();
    entries
        .iter()
        .zip(&bases)
        .map(|(entry, label)| {
            if bases.iter().filter(|b| *b == label).count() > 1 && *label != entry.connection.name()
            {
                format!("{label} ({})", entry.connection.name())
            } else {
                label.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
