//! `exo invoke <Cmdlet> …` and `exo <Cmdlet> …`: run a cmdlet on one connection or on all of
//! them, streaming rows to stdout as pages arrive.

use std::io::BufWriter;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context as _, bail};
use clap::Parser;
use exchange::cmdlet::{Cmdlet, is_cmdlet_name};
use exchange::invoke::{InvokeError, RetryPolicy, Summary, Target, app_anchor_mailbox, invoke};
use futures_util::StreamExt as _;
use session::cache::Entry;
use session::connection::AccountKind;

use crate::context::Context;
use crate::render::{Format, Progress, Renderer};
use crate::renewer::{ConnectionTokens, PluginRenewer};
use crate::select;

/// exo's own options among a cmdlet's words (they start with `--`).
#[derive(Parser, Debug)]
#[command(name = "exo invoke", about = "Run a cmdlet", after_help = crate::cli::INVOKE_AFTER_HELP, disable_version_flag = true)]
struct InvokeOptions {
    /// table, json (one object per line), csv or list [default: table on a terminal, json when piped]
    #[arg(long, short, value_parser = Format::parse)]
    output: Option<Format>,

    /// Only these properties, in this order (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "A,B,C")]
    property: Option<Vec<String>>,

    /// Run on this connection
    #[arg(long, value_name = "ID")]
    connection_id: Option<uuid::Uuid>,

    /// Run on the connection with this prefix
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,

    /// Run on every connection
    #[arg(long, conflicts_with_all = ["connection_id", "prefix"])]
    all_connections: bool,

    /// Connections at once with --all-connections
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,

    /// Retries of a throttled or failed request before giving up
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=20))]
    max_retries: u32,
}

/// exo's options that take a value (the others are switches).
const VALUE_OPTIONS: &[&str] = &[
    "--output",
    "-o",
    "--property",
    "--connection-id",
    "--prefix",
    "--concurrency",
    "--max-retries",
];

/// Runs a cmdlet given as `words`: its name, its parameters, and exo's `--options`.
pub async fn run(context: &Context, words: Vec<String>) -> anyhow::Result<ExitCode> {
    let (option_words, cmdlet_words) = split(words);
    let options = match InvokeOptions::try_parse_from(
        std::iter::once("exo invoke".to_owned()).chain(option_words),
    ) {
        Ok(options) => options,
        Err(error) => error.exit(),
    };
    let Some((name, arguments)) = cmdlet_words.split_first() else {
        bail!("no cmdlet given; e.g. `exo Get-Mailbox -ResultSize 10` (see `exo invoke --help`)");
    };
    if !is_cmdlet_name(name) {
        bail!(
            "'{name}' is neither an exo command nor a cmdlet (Verb-Noun, e.g. Get-Mailbox); see `exo --help`"
        );
    }
    let contents = context.store.read().await?;
    let targets = select::for_cmdlet(
        &contents.entries,
        name,
        options.connection_id,
        options.prefix.as_deref(),
        options.all_connections,
    )?;
    let cmdlet = Cmdlet::parse(&targets.cmdlet, arguments)?;
    let format = options.output.unwrap_or_else(Format::default_for_stdout);
    let renderer = Mutex::new(Renderer::new(
        BufWriter::with_capacity(1 << 16, std::io::stdout()),
        format,
        &cmdlet.name,
        options.property.clone(),
        options.all_connections,
    ));
    let progress = Mutex::new(Progress::new(&cmdlet.name));
    let renewer = PluginRenewer::new(context);
    let policy = RetryPolicy {
        max_retries: options.max_retries,
        ..RetryPolicy::default()
    };
    let work = async {
        if targets.entries.len() == 1 && !options.all_connections {
            let entry = targets.entries[0];
            let result = run_on(
                context, &renewer, entry, &cmdlet, policy, &renderer, &progress,
            )
            .await;
            return vec![(entry, result)];
        }
        futures_util::stream::iter(targets.entries.iter().copied())
            .map(|entry| {
                let running = run_on(
                    context, &renewer, entry, &cmdlet, policy, &renderer, &progress,
                );
                async move { (entry, running.await) }
            })
            .buffer_unordered(usize::from(options.concurrency))
            .collect::<Vec<_>>()
            .await
    };
    let results = tokio::select! {
        results = work => results,
        _ = tokio::signal::ctrl_c() => {
            let _ = lock(&renderer).finish();
            lock(&progress).finish();
            eprintln!("exo: interrupted");
            return Ok(ExitCode::from(130));
        }
    };
    lock(&progress).finish();
    let flushed = lock(&renderer).finish();
    let mut failures = 0;
    for (entry, result) in &results {
        match result {
            Ok(_) => {}
            // The reader went away (`exo … | head`): that is the reader's choice, not a failure.
            Err(InvokeError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                return Ok(ExitCode::SUCCESS);
            }
            Err(error) => {
                failures += 1;
                if options.all_connections {
                    eprintln!("exo: error: [{}] {error}", label(entry));
                } else {
                    eprintln!("exo: error: {error}");
                }
            }
        }
    }
    if let Err(e) = flushed
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e).context("cannot write the output");
    }
    if options.all_connections {
        let rows: u64 = results
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .map(|s| s.rows)
            .sum();
        tracing::info!(target: "exo::invoke", "{rows} rows from {} connections, {failures} failed", results.len());
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs `cmdlet` on the connection of `entry`.
async fn run_on<W: std::io::Write>(
    context: &Context,
    renewer: &PluginRenewer<'_>,
    entry: &Entry,
    cmdlet: &Cmdlet,
    policy: RetryPolicy,
    renderer: &Mutex<Renderer<W>>,
    progress: &Mutex<Progress>,
) -> Result<Summary, InvokeError> {
    let connection = &entry.connection;
    let http = context
        .clients
        .get(&connection.endpoints.trust)
        .map_err(|e| InvokeError::Token(format!("{e:#}")))?;
    let anchor_mailbox = match (connection.account_kind, &connection.user_principal_name) {
        (AccountKind::User, Some(upn)) => format!("UPN:{upn}"),
        _ => app_anchor_mailbox(&connection.tenant_id),
    };
    let target = Target {
        exchange: connection.endpoints.exchange.clone(),
        tenant: connection.target_tenant().to_owned(),
        connection_id: connection.id,
        anchor_mailbox,
        page_size: connection.page_size,
        client_application: concat!("exo/", env!("CARGO_PKG_VERSION")).to_owned(),
    };
    let tokens = ConnectionTokens::new(context, renewer, connection.id, entry.tokens.clone());
    let label = label(entry);
    let mut pages = 0;
    invoke(&http, &target, cmdlet, &tokens, policy, |page| {
        pages += 1;
        for warning in &page.warnings {
            eprintln!(
                "WARNING: {}{warning}",
                if renderer_tagged(renderer) {
                    format!("[{label}] ")
                } else {
                    String::new()
                }
            );
        }
        let mut renderer = lock(renderer);
        renderer.write_page(&page.rows, &label)?;
        lock(progress).update(renderer.rows(), pages);
        Ok(())
    })
    .await
}

fn renderer_tagged<W: std::io::Write>(renderer: &Mutex<Renderer<W>>) -> bool {
    lock(renderer).is_tagged()
}

/// How a connection is named in output: the organization it acts for, else its name.
fn label(entry: &Entry) -> String {
    let c = &entry.connection;
    c.delegated_organization
        .clone()
        .or_else(|| c.organization.clone())
        .unwrap_or_else(|| c.name())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Splits `words` into exo's options (`--…`, with their values) and the cmdlet's words.
fn split(words: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut options = Vec::new();
    let mut cmdlet = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        if word.starts_with("--") || (cmdlet.is_empty() && (word == "-o" || word == "-h")) {
            let takes_value = VALUE_OPTIONS.contains(&word.as_str());
            options.push(word);
            if takes_value {
                options.extend(words.next());
            }
        } else {
            cmdlet.push(word);
        }
    }
    (options, cmdlet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exo_options_are_told_apart_from_cmdlet_parameters() {
        let words: Vec<String> = "--output csv Get-Mailbox -ResultSize 5 --property Name,Alias -Filter x --all-connections"
            .split(' ')
            .map(str::to_owned)
            .collect();
        let (options, cmdlet) = split(words);
        assert_eq!(
            options,
            [
                "--output",
                "csv",
                "--property",
                "Name,Alias",
                "--all-connections"
            ]
        );
        assert_eq!(cmdlet, ["Get-Mailbox", "-ResultSize", "5", "-Filter", "x"]);
    }
}
