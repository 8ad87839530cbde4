//! The command line: clap definitions, and the two-phase parse that gives `exo connect` the
//! parameters of the login method it is asked for.
//!
//! Phase one finds `--method` (and `--plugin-dir`) in the raw arguments and loads only that
//! plugin; phase two parses with the plugin's parameters added, so that
//! `exo connect --method certificate --help` lists them and clap validates them. Secret
//! parameters are never accepted as values on the command line: only `--<name>-file PATH`
//! (`-` for stdin), an environment variable, or a prompt.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{
    ArgAction, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand, ValueEnum,
};
use plugin_abi::{ParameterKind, PluginDescription};
use session::environment::EnvironmentName;

use crate::discovery;
use crate::loader::{self, LoadedPlugin};

const ABOUT: &str =
    "Sign in to Exchange Online with any login method and run Exchange admin cmdlets";

const LONG_ABOUT: &str = "\
Sign in to Exchange Online with any login method and run Exchange admin cmdlets.

Each login method is a plugin (see `exo plugins list`). `exo connect` signs in and keeps the \
connection; `exo plugins info <method>` shows a method's parameters.";

const CONNECT_AFTER_HELP: &str = "\
Add `--method <METHOD> --help` to see that method's own parameters. Secret parameters are never \
taken from the command line: pass `--<name>-file PATH` (`-` reads stdin), set the environment \
variable the method names, or answer the prompt.

Examples:
  exo connect --method access-token --access-token-file token.jwt --environment sandbox
  exo-sandbox get-token | exo connect --method access-token --access-token-file - --environment sandbox";

/// `exo`'s arguments.
#[derive(Parser, Debug)]
#[command(name = "exo", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// Say more on stderr: -v progress, -vv HTTP requests, -vvv redacted request bodies
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Search this directory for plugins before the others (repeatable)
    #[arg(long, value_name = "DIR", global = true)]
    pub plugin_dir: Vec<PathBuf>,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sign in with a login method and keep the connection (Connect-ExchangeOnline)
    #[command(after_help = CONNECT_AFTER_HELP)]
    Connect(ConnectArgs),

    /// Show the connections (Get-ConnectionInformation)
    Connections(ConnectionsArgs),

    /// Remove connections and their tokens for good (Disconnect-ExchangeOnline)
    Disconnect(DisconnectArgs),

    /// Print a valid access token of a connection, renewing it if needed
    Token(TokenArgs),

    /// Run a cmdlet: `exo invoke Get-Mailbox -ResultSize 10`, or just `exo Get-Mailbox …`
    #[command(after_help = INVOKE_AFTER_HELP)]
    Invoke(InvokeArgs),

    /// List and inspect the login-method plugins
    #[command(subcommand)]
    Plugins(PluginsCommand),

    /// A cmdlet as a command: `exo Get-Mailbox -Identity alice`
    #[command(external_subcommand)]
    Cmdlet(Vec<String>),
}

/// `exo connect`.
#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// The login method (plugin) to use, e.g. access-token
    #[arg(long, short = 'm', value_name = "METHOD")]
    pub method: String,

    /// Where to connect.
    #[command(flatten)]
    pub endpoints: EndpointArgs,

    /// Target this customer organization (partner access): its primary domain or tenant ID
    #[arg(long, value_name = "ORG")]
    pub delegated_organization: Option<String>,

    /// Prefix for this connection's cmdlet nouns: with Contoso, `exo Get-ContosoMailbox` runs
    /// Get-Mailbox here
    #[arg(long, value_name = "PREFIX", value_parser = parse_prefix)]
    pub prefix: Option<String>,

    /// Rows per page for this connection's listings (1–1000)
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: u32,

    /// Never prompt or open a browser: fail instead (implied without a terminal)
    #[arg(long)]
    pub non_interactive: bool,

    /// Keep secrets typed at the prompt or read from stdin in the OS keyring, so that later
    /// commands can use them (a legacy Basic connection needs its password for each command);
    /// `exo disconnect` removes them
    #[arg(long)]
    pub remember_password: bool,
}

/// A module prefix: letters and digits, not `EXO` (reserved by the reference module).
fn parse_prefix(prefix: &str) -> Result<String, String> {
    if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
        Err("a prefix is letters and digits only".to_owned())
    } else if prefix.eq_ignore_ascii_case("exo") {
        Err("the prefix EXO is reserved".to_owned())
    } else {
        Ok(prefix.to_owned())
    }
}

/// Which connections a command is about.
#[derive(Args, Debug, Clone, Default)]
pub struct Selection {
    /// A connection's ConnectionId (repeatable)
    #[arg(long = "connection-id", value_name = "ID")]
    pub connection_ids: Vec<uuid::Uuid>,

    /// The connection(s) with this prefix (repeatable)
    #[arg(long = "prefix", value_name = "PREFIX")]
    pub prefixes: Vec<String>,
}

/// `exo connections`.
#[derive(Args, Debug)]
pub struct ConnectionsArgs {
    /// Which connections (default: all).
    #[command(flatten)]
    pub selection: Selection,

    /// Output format [default: list on a terminal, json otherwise]
    #[arg(long, short, value_enum)]
    pub output: Option<ConnectionsFormat>,
}

/// Output of `exo connections`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConnectionsFormat {
    /// One block of `Field : value` lines per connection, like PowerShell
    List,
    /// One row per connection, every field a column
    Table,
    /// A JSON array
    Json,
}

/// `exo disconnect`.
#[derive(Args, Debug)]
pub struct DisconnectArgs {
    /// Which connections (default: all).
    #[command(flatten)]
    pub selection: Selection,

    /// Every connection (the default when no --connection-id or --prefix is given)
    #[arg(long, conflicts_with_all = ["connection_ids", "prefixes"])]
    pub all: bool,

    /// Do not ask for confirmation
    #[arg(long, short)]
    pub yes: bool,
}

/// `exo token`.
#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The connection (default: the most recent one)
    #[arg(long = "connection-id", value_name = "ID")]
    pub connection_id: Option<uuid::Uuid>,

    /// Print JSON with the expiry and the tenant instead of the bare token
    #[arg(long)]
    pub json: bool,
}

/// `exo invoke`.
#[derive(Args, Debug)]
pub struct InvokeArgs {
    /// The cmdlet, then its PowerShell-style parameters and exo's --options
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMDLET [ARGS]"
    )]
    pub words: Vec<String>,
}

/// The help text after `exo invoke --help`.
pub const INVOKE_AFTER_HELP: &str = "\
Parameters are written as in PowerShell: -Name value, -Switch, -Switch:false, lists a,b,c,
hashtables @{Add=\"x\";Remove=\"y\"}, true, false, '$true', '$false', '$null' (single quotes keep
the shell from expanding them). A value with a comma that is not a list keeps its own quotes:
-DisplayName \"'Smith, John'\". After --, every word belongs to the cmdlet. Words starting with --
are exo's options:

  --output table|json|csv|list  [default: table on a terminal, NDJSON (one JSON object per line)
                                  when piped]
  --property A,B,C              only these properties, in this order
  --secret NAME=SOURCE          a secret cmdlet parameter, read from file:PATH, env:VARIABLE or
                                  - (stdin), never the command line; hidden in logs (repeatable)
  --csv-formulas                with --output csv, write cells starting with = + - @ as they are
                                  (by default they get a leading ' so that a spreadsheet does not
                                  run them as formulas)
  --connection-id ID            run on this connection (default: the most recent, or the one whose
                                  prefix the cmdlet noun carries: Get-ContosoMailbox)
  --prefix PREFIX               run on the connection with this prefix
  --all-connections             run on every connection at once; each row gets an ExoConnection
                                  property, and failures are reported per connection
  --concurrency N               connections at once with --all-connections [default: 16]
  --max-retries N               retries of a throttled or failed request [default: 5]
  --idle-timeout SECONDS        how long an answer may stall once it has begun [default: 60];
                                  before it begins, exo says every 30 s that it is still waiting
  --max-page-mib N              the largest page exo reads; a larger one fails the command
                                  [default: 64]

Examples:
  exo Get-Mailbox -ResultSize 10
  exo Get-Mailbox -Filter \"RecipientTypeDetails -eq 'SharedMailbox'\" --output csv > shared.csv
  exo Set-Mailbox -Identity alice -HiddenFromAddressListsEnabled:true
  exo Get-AcceptedDomain --all-connections --output json";

/// Where to connect.
#[derive(Args, Debug, Clone)]
pub struct EndpointArgs {
    /// Cloud: O365Default, O365USGovGCCHigh, O365USGovDoD, O365China, O365GermanyCloud, or
    /// sandbox (the local sandbox tenant) [default: O365Default]
    #[arg(long, value_name = "NAME", env = "EXO_ENVIRONMENT")]
    pub environment: Option<EnvironmentName>,

    /// Exchange endpoint, overriding the environment's (https only)
    #[arg(long, value_name = "URI")]
    pub connection_uri: Option<String>,

    /// Sign-in authority, overriding the environment's (https only)
    #[arg(long, value_name = "URI")]
    pub authority_uri: Option<String>,

    /// Tenant to sign in to: its primary domain or GUID (app-only methods need it)
    #[arg(long, value_name = "ORG")]
    pub organization: Option<String>,

    /// Also trust the CA certificates in this PEM file (e.g. a TLS-inspecting proxy)
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// `exo plugins …`.
#[derive(Subcommand, Debug)]
pub enum PluginsCommand {
    /// Load every plugin on the search path and list them, with the ones refused and why
    List {
        /// Output format
        #[arg(long, short, value_enum, default_value_t = ListFormat::Table)]
        output: ListFormat,
    },
    /// Show one login method and its parameters
    Info {
        /// The method id, e.g. access-token
        method: String,
        /// Output format
        #[arg(long, short, value_enum, default_value_t = ListFormat::Table)]
        output: ListFormat,
    },
}

/// Output of listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// Aligned columns for people
    Table,
    /// JSON for programs
    Json,
}

/// The parsed command line, with the plugin `exo connect` asked for.
pub struct Parsed {
    /// The arguments.
    pub cli: Cli,
    /// For `exo connect`: the plugin and the method parameters given on the command line.
    pub connect: Option<(LoadedPlugin, Vec<GivenParameter>)>,
}

/// A method parameter as given on the command line.
pub struct GivenParameter {
    /// The parameter's name.
    pub name: String,
    /// Its value; for a secret, the path given to `--<name>-file`.
    pub value: String,
}

/// Why the command line could not be used.
pub enum ParseError {
    /// Clap's own error (or help/version output); it knows how to print and exit.
    Clap(clap::Error),
    /// The login method's plugin could not be loaded.
    Plugin(anyhow::Error),
}

/// Parses `args` (including the program name).
pub fn parse(mut args: Vec<OsString>) -> Result<Parsed, ParseError> {
    let mut command = Cli::command();
    let method = match connect_subcommand(&args) {
        Some(ConnectMethod::Given(method)) => Some(method),
        Some(ConnectMethod::Default { position }) => {
            if !crate::services::terminal_available() {
                return Err(ParseError::Plugin(anyhow::anyhow!(
                    "--method is required without a terminal (a person signs in with the \
                     browser or a device code; automation uses certificate, managed-identity or \
                     access-token)"
                )));
            }
            let method = default_method();
            crate::output::tell(format_args!("{}", default_method_note(method)));
            args.splice(position..position, ["--method".into(), method.into()]);
            Some(method.to_owned())
        }
        None => None,
    };
    let plugin = match method {
        Some(method) => {
            let dirs = discovery::search_path(
                &flag_values(&args, "--plugin-dir")
                    .map(PathBuf::from)
                    .collect::<Vec<_>>(),
            );
            let plugin =
                loader::load_method(&dirs, &method).map_err(|e| ParseError::Plugin(e.into()))?;
            command = command.mut_subcommand("connect", |connect| {
                add_method_parameters(connect, &plugin.description)
            });
            Some(plugin)
        }
        None => None,
    };
    let matches = command
        .try_get_matches_from(args)
        .map_err(ParseError::Clap)?;
    let cli = Cli::from_arg_matches(&matches).map_err(ParseError::Clap)?;
    let connect = plugin.map(|plugin| {
        let connect_matches = matches.subcommand_matches("connect");
        let given = plugin
            .description
            .parameters
            .iter()
            .filter_map(|spec| {
                let id = option_name(spec.name.as_str(), spec.secret);
                let value = if spec.kind == ParameterKind::SWITCH && !spec.secret {
                    connect_matches?.get_flag(&id).then(|| "true".to_owned())
                } else {
                    connect_matches?.get_one::<String>(&id).cloned()
                };
                value.map(|value| GivenParameter {
                    name: spec.name.to_string(),
                    value,
                })
            })
            .collect();
        (plugin, given)
    });
    Ok(Parsed { cli, connect })
}

/// The command-line option of a method parameter: `--name`, or `--name-file` for a secret.
pub fn option_name(name: &str, secret: bool) -> String {
    if secret {
        format!("{name}-file")
    } else {
        name.to_owned()
    }
}

fn add_method_parameters(command: clap::Command, description: &PluginDescription) -> clap::Command {
    let heading = format!("Parameters of the {} method", description.method_id);
    let mut command = command;
    for spec in description.parameters.iter() {
        let id = option_name(spec.name.as_str(), spec.secret);
        let mut help = spec.help.to_string();
        if spec.secret {
            help.push_str(". A secret: read from this file, or `-` for stdin");
        }
        if let Some(var) = spec.env_var.as_ref().into_option() {
            help.push_str(&format!(" [env: {var}]"));
        }
        if spec.required {
            help.push_str(" [required]");
        }
        let aliases = spec
            .aliases
            .iter()
            .map(|alias| option_name(alias.as_str(), spec.secret));
        let arg = clap::Arg::new(id.clone())
            .long(id)
            .visible_aliases(aliases)
            .help(help)
            .help_heading(heading.clone());
        let arg = if spec.kind == ParameterKind::SWITCH && !spec.secret {
            arg.action(ArgAction::SetTrue)
        } else {
            arg.value_name(value_name(spec.kind, spec.secret))
                .action(ArgAction::Set)
        };
        command = command.arg(arg);
    }
    command
}

fn value_name(kind: ParameterKind, secret: bool) -> &'static str {
    match kind {
        _ if secret => "PATH",
        ParameterKind::PATH => "PATH",
        ParameterKind::INTEGER => "N",
        ParameterKind::URL => "URL",
        _ => "VALUE",
    }
}

/// What `exo connect` was told about the login method.
enum ConnectMethod {
    /// `--method METHOD`.
    Given(String),
    /// No `--method` (and no `--help`): exo chooses, and inserts the option at `position`.
    Default { position: usize },
}

/// The method of `exo connect`, when the subcommand is `connect`.
fn connect_subcommand(args: &[OsString]) -> Option<ConnectMethod> {
    if let Some(method) = connect_method(args) {
        return Some(ConnectMethod::Given(method));
    }
    let words: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().unwrap_or_default())
        .collect();
    let position = connect_position(&words)? + 1;
    let wants_help = words[position..]
        .iter()
        .take_while(|w| **w != "--")
        .any(|w| matches!(*w, "-h" | "--help"));
    (!wants_help).then_some(ConnectMethod::Default { position })
}

/// Like `Connect-ExchangeOnline` without a method switch: the browser where one can be opened
/// (`$BROWSER`, a desktop session, macOS, Windows), a device code otherwise (an SSH session, a
/// server without a display).
fn default_method() -> &'static str {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let remote = set("SSH_CONNECTION") || set("SSH_TTY");
    let desktop =
        cfg!(any(target_os = "macos", windows)) || set("DISPLAY") || set("WAYLAND_DISPLAY");
    if set("BROWSER") || (desktop && !remote) {
        "sso"
    } else {
        "device"
    }
}

fn default_method_note(method: &str) -> &'static str {
    if method == "sso" {
        "exo: no --method given: signing in with the browser (--method sso); \
         --method device signs in from another device"
    } else {
        "exo: no --method given and no browser here: signing in with a device code \
         (--method device); set BROWSER or use --method sso to use a browser"
    }
}

/// The index of the `connect` subcommand in `args` (program name included), if that is the
/// subcommand: the first word that is not one of exo's global options.
fn connect_position(words: &[&str]) -> Option<usize> {
    let mut position = 1;
    while let Some(word) = words.get(position) {
        match *word {
            "--plugin-dir" => position += 2,
            w if w.starts_with("--plugin-dir=") || w == "--verbose" || is_verbosity(w) => {
                position += 1
            }
            "connect" => return Some(position),
            _ => return None,
        }
    }
    None
}

/// The value of `--method`/`-m` when the subcommand is `connect`: the first word that is not
/// one of exo's global options (so `exo Set-Mailbox -Identity connect -m x` is not a connect).
fn connect_method(args: &[OsString]) -> Option<String> {
    let words: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().unwrap_or_default())
        .collect();
    let after = words.get(connect_position(&words)? + 1..)?;
    after.iter().enumerate().find_map(|(i, word)| match *word {
        "--method" | "-m" => after.get(i + 1).map(|m| (*m).to_owned()),
        w => w
            .strip_prefix("--method=")
            .or_else(|| {
                w.strip_prefix("-m=").or_else(|| {
                    w.strip_prefix("-m")
                        .filter(|m| !m.is_empty() && !m.starts_with('-'))
                })
            })
            .map(str::to_owned),
    })
}

/// `-v`, `-vv`, …
pub(crate) fn is_verbosity(word: &str) -> bool {
    word.len() > 1 && word.starts_with('-') && word[1..].bytes().all(|b| b == b'v')
}

/// Every value of option `name` (`--name VALUE` or `--name=VALUE`) in the raw arguments.
fn flag_values<'a>(args: &'a [OsString], name: &'a str) -> impl Iterator<Item = String> + 'a {
    let words: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let mut values = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if *word == name {
            values.extend(words.get(i + 1).map(|v| (*v).to_owned()));
        } else if let Some(value) = word
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
        {
            values.push(value.to_owned());
        }
    }
    values.into_iter()
}

/// How many `-v` were given, counted before parsing so that logging covers plugin loading.
pub fn verbosity(args: &[OsString]) -> u8 {
    args.iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .take_while(|a| *a != "--")
        .map(|a| match a {
            "--verbose" => 1,
            _ if is_verbosity(a) => a.len() - 1,
            _ => 0,
        })
        .sum::<usize>()
        .min(u8::MAX as usize) as u8
}

#[cfg(test)]
mod tests;
