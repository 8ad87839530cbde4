//! `exo plugins list` and `exo plugins info`.

use std::io::Write as _;
use std::process::ExitCode;

use plugin_abi::PluginDescription;
use serde::Serialize;

use crate::cli::{ListFormat, PluginsCommand, option_name};
use crate::context::Context;
use crate::loader::{self, LoadedPlugin};
use crate::output::write_table;

/// Runs `exo plugins …`.
pub fn run(context: &Context, command: &PluginsCommand) -> anyhow::Result<ExitCode> {
    let dirs = &context.plugin_dirs;
    let mut stdout = std::io::stdout().lock();
    match command {
        PluginsCommand::List { output } => {
            let catalog = loader::load_all(dirs);
            for (path, refusal) in &catalog.refused {
                crate::output::tell(format_args!("exo: refused {}: {refusal}", path.display()));
            }
            match output {
                ListFormat::Json => {
                    let listing = Listing {
                        plugins: catalog.plugins.iter().map(PluginInfo::from).collect(),
                        refused: catalog
                            .refused
                            .iter()
                            .map(|(path, refusal)| RefusedInfo {
                                path: path.display().to_string(),
                                reason: refusal.to_string(),
                            })
                            .collect(),
                        searched: dirs
                            .iter()
                            .map(|d| SearchedDir {
                                path: d.path.display().to_string(),
                                origin: d.origin.to_string(),
                            })
                            .collect(),
                    };
                    serde_json::to_writer_pretty(&mut stdout, &listing)?;
                    writeln!(stdout)?;
                }
                ListFormat::Table if catalog.plugins.is_empty() => {
                    let searched: Vec<String> = dirs
                        .iter()
                        .map(|d| format!("{} ({})", d.path.display(), d.origin))
                        .collect();
                    writeln!(
                        stdout,
                        "No plugins found. Searched: {}",
                        searched.join(", ")
                    )?;
                }
                ListFormat::Table => {
                    let rows: Vec<Vec<String>> = catalog
                        .plugins
                        .iter()
                        .map(|p| {
                            let d = &p.description;
                            vec![
                                d.method_id.to_string(),
                                d.name.to_string(),
                                d.version.to_string(),
                                p.abi_version.clone(),
                                parameter_summary(d),
                                p.path.display().to_string(),
                            ]
                        })
                        .collect();
                    write_table(
                        &mut stdout,
                        &["METHOD", "NAME", "VERSION", "ABI", "PARAMETERS", "PATH"],
                        &rows,
                    )?;
                }
            }
        }
        PluginsCommand::Info { method, output } => {
            let plugin = loader::load_method(dirs, method)?;
            match output {
                ListFormat::Json => {
                    serde_json::to_writer_pretty(&mut stdout, &PluginInfo::from(&plugin))?;
                    writeln!(stdout)?;
                }
                ListFormat::Table => write_info(&mut stdout, &plugin)?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--a-file, --b` for the table.
fn parameter_summary(description: &PluginDescription) -> String {
    let options: Vec<String> = description
        .parameters
        .iter()
        .map(|p| format!("--{}", option_name(&p.name, p.secret)))
        .collect();
    if options.is_empty() {
        "-".to_owned()
    } else {
        options.join(" ")
    }
}

fn write_info(out: &mut impl std::io::Write, plugin: &LoadedPlugin) -> std::io::Result<()> {
    let d = &plugin.description;
    writeln!(
        out,
        "{} — {} {} (plugin ABI {})",
        d.method_id, d.name, d.version, plugin.abi_version
    )?;
    writeln!(out, "Path: {}", plugin.path.display())?;
    if !d.summary.is_empty() {
        writeln!(out, "\n{}", d.summary)?;
    }
    writeln!(out, "\nParameters:")?;
    if d.parameters.is_empty() {
        writeln!(out, "  (none)")?;
    }
    let rows: Vec<Vec<String>> = d
        .parameters
        .iter()
        .map(|p| {
            let mut traits = Vec::new();
            if p.required {
                traits.push("required".to_owned());
            }
            if p.secret {
                traits.push("secret: a file, or - for stdin".to_owned());
            }
            if let Some(var) = p.env_var.as_ref().into_option() {
                traits.push(format!("env {var}"));
            }
            vec![
                format!("  --{}", option_name(&p.name, p.secret)),
                traits.join(", "),
                p.help.to_string(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        write_table(out, &["", "", ""], &rows)?;
    }
    let join = |items: &[abi_stable::std_types::RString]| {
        if items.is_empty() {
            "all".to_owned()
        } else {
            items
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    writeln!(out, "\nEnvironments: {}", join(&d.environments))?;
    writeln!(out, "Capabilities: {}", join(&d.capabilities))?;
    Ok(())
}

#[derive(Serialize)]
struct Listing {
    plugins: Vec<PluginInfo>,
    refused: Vec<RefusedInfo>,
    searched: Vec<SearchedDir>,
}

#[derive(Serialize)]
struct SearchedDir {
    path: String,
    origin: String,
}

#[derive(Serialize)]
struct RefusedInfo {
    path: String,
    reason: String,
}

#[derive(Serialize)]
struct PluginInfo {
    method_id: String,
    name: String,
    version: String,
    abi_version: String,
    path: String,
    summary: String,
    parameters: Vec<ParameterInfo>,
    environments: Vec<String>,
    capabilities: Vec<String>,
}

#[derive(Serialize)]
struct ParameterInfo {
    name: String,
    option: String,
    kind: &'static str,
    required: bool,
    secret: bool,
    env_var: Option<String>,
    help: String,
}

impl From<&LoadedPlugin> for PluginInfo {
    fn from(plugin: &LoadedPlugin) -> Self {
        let d = &plugin.description;
        let strings = |items: &abi_stable::std_types::RVec<abi_stable::std_types::RString>| {
            items.iter().map(|s| s.to_string()).collect()
        };
        Self {
            method_id: d.method_id.to_string(),
            name: d.name.to_string(),
            version: d.version.to_string(),
            abi_version: plugin.abi_version.clone(),
            path: plugin.path.display().to_string(),
            summary: d.summary.to_string(),
            parameters: d
                .parameters
                .iter()
                .map(|p| ParameterInfo {
                    name: p.name.to_string(),
                    option: format!("--{}", option_name(&p.name, p.secret)),
                    kind: match p.kind {
                        plugin_abi::ParameterKind::PATH => "path",
                        plugin_abi::ParameterKind::SWITCH => "switch",
                        plugin_abi::ParameterKind::INTEGER => "integer",
                        plugin_abi::ParameterKind::URL => "url",
                        _ => "string",
                    },
                    required: p.required,
                    secret: p.secret,
                    env_var: p.env_var.as_ref().map(|v| v.to_string()).into_option(),
                    help: p.help.to_string(),
                })
                .collect(),
            environments: strings(&d.environments),
            capabilities: strings(&d.capabilities),
        }
    }
}
