//! `exo invoke <Cmdlet> …` and `exo <Cmdlet> …`: run a cmdlet on one connection or on all of
//! them, streaming rows to stdout as pages arrive.
//!
//! The words after `exo` mix the cmdlet's PowerShell-style parameters (`-Identity alice`) with
//! exo's own options (`--output json`). Only exo's known long options are taken out (and `-o`,
//! `-v` before the cmdlet name); everything after `--` belongs to the cmdlet.

use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::{Context as _, bail};
use clap::Parser;
use exchange::cmdlet::{Cmdlet, is_cmdlet_name};
use exchange::invoke::{InvokeError, RetryPolicy, Route, Summary, invoke};
use futures_util::StreamExt as _;
use session::cache::Entry;

use crate::context::Context;
use crate::credentials::{self, Credentials};
use crate::output::background::BackgroundWriter;
use crate::plugin_runtime::PluginRenewer;
use crate::render::{Format, Progress, Renderer};
use crate::select;

/// exo's own options among a cmdlet's words.
#[derive(Parser, Debug)]
#[command(
    name = "exo invoke",
    about = "Run a cmdlet",
    after_help = crate::cli::INVOKE_AFTER_HELP,
    disable_version_flag = true
)]
struct InvokeOptions {
    /// table, json (one object per line), csv or list [default: table on a terminal, json when piped]
    #[arg(long, short, value_parser = Format::parse)]
    output: Option<Format>,

    /// Only these properties, in this order (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "A,B,C")]
    property: Option<Vec<String>>,

    /// With --output csv, write cells starting with = + - @ as they are (by default they get a
    /// leading ' so that a spreadsheet does not run them as formulas)
    #[arg(long)]
    csv_formulas: bool,

    /// A cmdlet parameter whose value is a secret, read from file:PATH, env:VARIABLE or - (stdin)
    /// rather than the command line; hidden in logs at every verbosity (repeatable)
    #[arg(long = "secret", value_name = "NAME=SOURCE")]
    secrets: Vec<String>,

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

    /// Seconds an answer may stall, once it has begun, before the attempt fails (exo says it
    /// is still waiting before the answer begins)
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=900))]
    idle_timeout: u64,

    /// The largest page exo reads, in MiB (Exchange's pages are a few MiB at most)
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_page_mib: u64,

    /// Say more on stderr (counted before parsing; accepted here too)
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// exo's long options that take a value.
const VALUE_OPTIONS: &[&str] = &[
    "output",
    "property",
    "connection-id",
    "prefix",
    "concurrency",
    "max-retries",
    "max-page-mib",
    "idle-timeout",
    "secret",
    "plugin-dir",
];
/// exo's long options without a value.
const FLAG_OPTIONS: &[&str] = &["all-connections", "csv-formulas", "verbose", "help"];

/// Runs a cmdlet given as `words`: its name, its parameters, and exo's options.
pub async fn run(context: &Context, words: Vec<String>) -> anyhow::Result<ExitCode> {
    let Split {
        options: option_words,
        cmdlet: cmdlet_words,
        plugin_dirs,
    } = split(words);
    let options = match InvokeOptions::try_parse_from(
        std::iter::once("exo invoke".to_owned()).chain(option_words),
    ) {
        Ok(options) => options,
        Err(error) => crate::exit_with(&error),
    };
    let context = &context.with_plugin_dirs(&plugin_dirs);
    let Some((name, arguments)) = cmdlet_words.split_first() else {
        bail!("no cmdlet given; e.g. `exo Get-Mailbox -ResultSize 10` (see `exo invoke --help`)");
    };
    if !is_cmdlet_name(name) {
        bail!(
            "'{name}' is neither an exo command nor a cmdlet (Verb-Noun, e.g. Get-Mailbox); see `exo --help`"
        );
    }
    let candidates = select::cmdlet_candidates(
        &context.store,
        name,
        options.connection_id,
        options.prefix.as_deref(),
        options.all_connections,
    )
    .await?;
    let targets = select::for_cmdlet(
        &candidates,
        name,
        options.connection_id,
        options.prefix.as_deref(),
        options.all_connections,
    )?;
    let mut cmdlet = Cmdlet::parse(&targets.cmdlet, arguments)?;
    for secret in &options.secrets {
        let Some((name, source)) = secret.split_once('=') else {
            bail!("--secret takes NAME=SOURCE, e.g. --secret Password=file:./password.txt");
        };
        let value = crate::parameters::read_cmdlet_secret(source)
            .with_context(|| format!("--secret {name}"))?;
        cmdlet.add_secret(name, &value)?;
    }
    let renderer = Mutex::new(
        Renderer::new(
            // Rows are formatted while the previous ones are being written.
            BackgroundWriter::spawn(|| std::io::stdout().lock()),
            options.output.unwrap_or_else(Format::default_for_stdout),
            &cmdlet.name,
            options.property.clone(),
            options.all_connections,
        )
        .keep_csv_formulas(options.csv_formulas),
    );
    let progress = Mutex::new(Progress::new(&cmdlet.name));
    let renewer = PluginRenewer::new(context);
    let policy = RetryPolicy {
        max_retries: options.max_retries,
        idle_timeout: std::time::Duration::from_secs(options.idle_timeout),
        ..RetryPolicy::default()
    };
    let labels = select::labels(&targets.entries);
    let runner = Runner {
        context,
        renewer: &renewer,
        cmdlet: &cmdlet,
        policy,
        renderer: &renderer,
        progress: &progress,
        max_page_mib: options.max_page_mib,
    };
    let work = futures_util::stream::iter(targets.entries.iter().copied().zip(labels))
        .map(|(entry, label)| {
            let running = runner.run(entry, label.clone());
            async move { (label, running.await) }
        })
        .buffer_unordered(usize::from(options.concurrency))
        .collect::<Vec<_>>();
    let results = tokio::select! {
        results = work => results,
        _ = tokio::signal::ctrl_c() => {
            // A renewal may be running in a plugin: tell it to stop, and let it return.
            context.cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
            crate::plugin_runtime::let_plugin_calls_stop(std::time::Duration::from_secs(1)).await;
            abandon(renderer);
            lock(&progress).finish();
            crate::output::tell(format_args!("exo: interrupted"));
            return Ok(ExitCode::from(130));
        }
    };
    lock(&progress).finish();
    // Ctrl-C while the output waited for its reader (the runtime could not see it then), or
    // while the last rows are written.
    if crate::output::interrupted() {
        abandon(renderer);
    } else {
        let flushed = finish(renderer);
        if !crate::output::interrupted() {
            return Ok(report(&results, flushed, options.all_connections));
        }
    }
    crate::output::tell(format_args!("exo: interrupted"));
    Ok(ExitCode::from(130))
}

/// Hands over what was written so far, without waiting for a reader that may not be reading
/// (the user pressed Ctrl-C).
fn abandon(renderer: Mutex<Renderer<BackgroundWriter>>) {
    let mut renderer = renderer
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = renderer.finish();
    renderer.into_writer().abandon();
}

/// Writes the last rows and waits until everything is written.
fn finish(renderer: Mutex<Renderer<BackgroundWriter>>) -> std::io::Result<()> {
    let mut renderer = renderer
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let flushed = renderer.finish();
    flushed.and(renderer.into_writer().finish())
}

/// Prints each connection's failure and says how the command ends: any failure fails it; a
/// reader that went away (`exo … | head`) is that reader's choice, not a failure.
fn report(results: &[(String, Outcome)], flushed: std::io::Result<()>, tagged: bool) -> ExitCode {
    let broken_pipe = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    let mut failed = false;
    for (label, outcome) in results {
        let prefix = if tagged {
            format!("[{label}] ")
        } else {
            String::new()
        };
        match &outcome.result {
            Ok(_) => {}
            Err(InvokeError::Output(e)) if broken_pipe(e) => {}
            Err(error) => {
                failed = true;
                crate::output::tell(format_args!(
                    "exo: error: {prefix}{}",
                    crate::output::untrusted(&error.to_string(), false)
                ));
            }
        }
        for error in &outcome.reported_errors {
            failed = true;
            crate::output::tell(format_args!(
                "exo: error: {prefix}{}",
                crate::output::untrusted(&error.to_string(), false)
            ));
        }
    }
    if let Err(e) = flushed
        && !broken_pipe(&e)
    {
        failed = true;
        crate::output::tell(format_args!("exo: error: cannot write the output: {e}"));
    }
    if tagged {
        let rows: u64 = results
            .iter()
            .filter_map(|(_, o)| o.result.as_ref().ok())
            .map(|s| s.rows)
            .sum();
        let failures = results
            .iter()
            .filter(|(_, o)| o.result.is_err() || !o.reported_errors.is_empty())
            .count();
        tracing::info!(target: "exo::invoke", "{rows} rows from {} connections, {failures} failed", results.len());
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// How one connection's run ended.
struct Outcome {
    result: Result<Summary, InvokeError>,
    /// Errors Exchange reported next to rows (`@adminapi.errors`).
    reported_errors: Vec<String>,
}

/// Runs the cmdlet on connections, writing to a shared renderer.
struct Runner<'a> {
    context: &'a Context,
    renewer: &'a PluginRenewer<'a>,
    cmdlet: &'a Cmdlet,
    policy: RetryPolicy,
    renderer: &'a Mutex<Renderer<BackgroundWriter>>,
    progress: &'a Mutex<Progress>,
    max_page_mib: u64,
}

impl Runner<'_> {
    async fn run(&self, entry: &Entry, label: String) -> Outcome {
        let connection = &entry.connection;
        let http = match self.context.clients.get(&connection.endpoints.trust) {
            Ok(http) => http,
            Err(e) => {
                return Outcome {
                    result: Err(InvokeError::Token(format!("{e:#}"))),
                    reported_errors: Vec::new(),
                };
            }
        };
        if let Some(refused) = credentials::still_refused(entry) {
            return Outcome {
                result: Err(InvokeError::Token(refused)),
                reported_errors: Vec::new(),
            };
        }
        // One process at a time opens a legacy connection's shell; the others reuse it.
        let (shell_turn, stored_shell) = credentials::shell_turn(&self.context.store, entry).await;
        let entry = &Entry {
            legacy_shell: stored_shell,
            ..entry.clone()
        };
        let target = credentials::target(entry, self.max_page_mib << 20);
        let credentials = Credentials::of(self.context, self.renewer, entry);
        let tagged = lock(self.renderer).is_tagged();
        let mut reported_errors = Vec::new();
        let result = invoke(
            &http,
            &target,
            self.cmdlet,
            &credentials,
            self.policy,
            |page| {
                for warning in &page.warnings {
                    let prefix = if tagged {
                        format!("[{label}] ")
                    } else {
                        String::new()
                    };
                    let warning = crate::output::untrusted(warning, false);
                    crate::output::tell(format_args!("WARNING: {prefix}{warning}"));
                }
                reported_errors.extend(
                    page.errors
                        .iter()
                        .map(|e| format!("{}: {e}", self.cmdlet.name)),
                );
                let mut renderer = lock(self.renderer);
                renderer.write_exchange_page(page, &label)?;
                lock(self.progress).page(renderer.rows());
                Ok(())
            },
        )
        .await;
        if let Route::Legacy { shell, .. } = &target.route {
            let store = &self.context.store;
            let before = entry.legacy_shell.as_deref();
            let extra = credentials::keep_shell(store, connection.id, before, shell).await;
            drop(shell_turn);
            if let Some(extra) = extra {
                credentials::close_extra_shell(&http, &target, &credentials, &extra).await;
            }
            credentials::note_password_outcome(store, entry, &result).await;
        }
        Outcome {
            result,
            reported_errors,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The words of an invocation, sorted out.
#[derive(Debug, Default, PartialEq, Eq)]
struct Split {
    /// exo's options, for [`InvokeOptions`].
    options: Vec<String>,
    /// The cmdlet's name and parameters.
    cmdlet: Vec<String>,
    /// `--plugin-dir` values (a global option, accepted after the cmdlet too).
    plugin_dirs: Vec<String>,
}

/// Splits `words` into exo's options (with their values), `--plugin-dir`s, and the cmdlet's
/// words. Unknown `--words` belong to the cmdlet (they may be values, e.g. `-Notes --urgent`).
fn split(words: Vec<String>) -> Split {
    let mut split = Split::default();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let before_cmdlet = split.cmdlet.is_empty();
        if word == "--" {
            split.cmdlet.extend(words.by_ref());
            break;
        }
        let long = word
            .strip_prefix("--")
            .map(|rest| rest.split_once('=').map_or(rest, |(name, _)| name));
        let short_before_cmdlet = before_cmdlet && ["-o", "-h"].contains(&word.as_str());
        let verbosity = crate::cli::is_verbosity(&word);
        match long {
            Some("plugin-dir") => split.plugin_dirs.extend(value_of(&word, &mut words)),
            Some(name) if VALUE_OPTIONS.contains(&name) => {
                let value = value_of(&word, &mut words);
                split.options.push(format!("--{name}"));
                split.options.extend(value);
            }
            Some(name) if FLAG_OPTIONS.contains(&name) => split.options.push(word),
            _ if short_before_cmdlet || verbosity => {
                let takes_value = word == "-o";
                split.options.push(word);
                if takes_value {
                    split.options.extend(words.next());
                }
            }
            _ => split.cmdlet.push(word),
        }
    }
    split
}

/// The value of `--name=value`, or the next word.
fn value_of(word: &str, words: &mut impl Iterator<Item = String>) -> Option<String> {
    match word.split_once('=') {
        Some((_, value)) => Some(value.to_owned()),
        None => words.next(),
    }
}

#[cfg(test)]
mod tests;
