//! PowerShell parameter binding: names match case-insensitively, exactly or by a unique prefix
//! (an ambiguous prefix is refused with the list of candidates); PowerShell's common
//! parameters are accepted and ignored; `-Confirm`/`-WhatIf` exist on the cmdlets that change
//! something; values convert like PowerShell's (switches from booleans or "true"/"1",
//! `-ResultSize` from a number or "Unlimited", lists from arrays or comma-separated text), with
//! PowerShell's error texts.

use serde_json::{Map, Value};

use super::Spec;
use crate::exchange::errors::{self, ExoError};

/// What a parameter accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Switch,
    ResultSize,
    TextList,
}

/// Who may run a cmdlet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// Anyone with an Exchange management role (readers included).
    Read,
    /// Roles that change recipients.
    Write,
    /// Roles that change organization-wide settings.
    Organization,
}

/// PowerShell's common parameters (accepted, no effect) and the ShouldProcess ones.
pub(super) const COMMON: &[&str] = &[
    "ErrorAction",
    "WarningAction",
    "InformationAction",
    "Verbose",
    "Debug",
    "ErrorVariable",
    "WarningVariable",
    "InformationVariable",
    "OutVariable",
    "OutBuffer",
    "PipelineVariable",
];
pub(super) const SHOULD_PROCESS: &[&str] = &["Confirm", "WhatIf"];

/// A bound argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Arg {
    Text(Option<String>),
    Bool(bool),
    Size(Option<usize>),
    List(Vec<String>),
}

/// The bound parameters of one call.
#[derive(Debug, Default)]
pub(super) struct Bound {
    pub args: Vec<(&'static str, Arg)>,
    /// `-Confirm` (`Some(false)` = `-Confirm:$false`).
    pub confirm: Option<bool>,
    pub what_if: bool,
}

impl Bound {
    pub fn get(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Arg::Text(Some(t))) => Some(t),
            _ => None,
        }
    }

    pub fn flag(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(Arg::Bool(b)) => Some(*b),
            _ => None,
        }
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(super) fn convert(parameter: &str, kind: Kind, value: &Value) -> Result<Arg, ExoError> {
    let cannot = |target: &str, extra: &str| {
        errors::bad_argument(
            parameter,
            format!(
                "Cannot process argument transformation on parameter '{parameter}'. Cannot convert value \"{}\" to type \"{target}\".{extra}",
                describe(value)
            ),
        )
    };
    match kind {
        Kind::Text => match value {
            Value::Null => Ok(Arg::Text(None)),
            Value::String(s) => Ok(Arg::Text(Some(s.clone()))),
            Value::Number(n) => Ok(Arg::Text(Some(n.to_string()))),
            Value::Bool(b) => Ok(Arg::Text(Some(
                if *b { "True" } else { "False" }.to_owned(),
            ))),
            _ => Err(cannot("System.String", "")),
        },
        Kind::Switch => match value {
            Value::Bool(b) => Ok(Arg::Bool(*b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") || s == "1" => Ok(Arg::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") || s == "0" => Ok(Arg::Bool(false)),
            _ => Err(cannot(
                "System.Boolean",
                " Error: \"String was not recognized as a valid Boolean.\"",
            )),
        },
        Kind::ResultSize => {
            let target = "Microsoft.Exchange.Data.Unlimited`1[System.UInt32]";
            match value {
                Value::String(s) if s.eq_ignore_ascii_case("unlimited") => Ok(Arg::Size(None)),
                Value::String(s) => s.trim().parse::<u32>().map(|n| Arg::Size(Some(n as usize))).map_err(|_| {
                    cannot(target, " Error: \"Unlimited only accepts 'Unlimited' as a string value.\"")
                }),
                Value::Number(n) => n.as_u64().filter(|n| *n <= u64::from(u32::MAX)).map(|n| Arg::Size(Some(n as usize))).ok_or_else(|| cannot(target, "")),
                _ => Err(cannot(target, "")),
            }
            .and_then(|arg| {
                if arg == Arg::Size(Some(0)) {
                    Err(errors::bad_argument(parameter, "Cannot validate argument on parameter 'ResultSize'. The argument 0 is less than the minimum allowed range of 1.".into()))
                } else {
                    Ok(arg)
                }
            })
        }
        Kind::TextList => match value {
            Value::String(s) => Ok(Arg::List(
                s.split(',')
                    .map(|x| x.trim().to_owned())
                    .filter(|x| !x.is_empty())
                    .collect(),
            )),
            Value::Array(list) => list
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| cannot("System.String[]", ""))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Arg::List),
            _ => Err(cannot("System.String[]", "")),
        },
    }
}

/// Resolves a parameter name: exact (case-insensitive) first, then a unique prefix.
pub(super) fn resolve_name<'n>(given: &str, names: &[&'n str]) -> Result<&'n str, ExoError> {
    if given.is_empty() {
        return Err(errors::no_such_parameter(given));
    }
    if let Some(exact) = names.iter().find(|n| n.eq_ignore_ascii_case(given)) {
        return Ok(exact);
    }
    let lower = given.to_ascii_lowercase();
    let matches: Vec<&&str> = names
        .iter()
        .filter(|n| n.to_ascii_lowercase().starts_with(&lower))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(errors::no_such_parameter(given)),
        many => Err(errors::bad_argument(
            given,
            format!(
                "Parameter cannot be processed because the parameter name '{given}' is ambiguous. Possible matches include: {}.",
                many.iter()
                    .map(|m| format!("-{m}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        )),
    }
}

pub(super) fn bind(spec: &Spec, parameters: &Map<String, Value>) -> Result<Bound, ExoError> {
    let mut names: Vec<&'static str> = spec.params.iter().map(|(n, _)| *n).collect();
    names.extend_from_slice(COMMON);
    if spec.access != Access::Read {
        names.extend_from_slice(SHOULD_PROCESS);
    }
    let mut bound = Bound::default();
    for (given, value) in parameters {
        let name = resolve_name(given, &names)?;
        match name {
            "Confirm" => {
                bound.confirm = Some(matches!(
                    convert(name, Kind::Switch, value)?,
                    Arg::Bool(true)
                ))
            }
            "WhatIf" => {
                bound.what_if = matches!(convert(name, Kind::Switch, value)?, Arg::Bool(true))
            }
            _ => {
                if let Some((_, kind)) = spec.params.iter().find(|(n, _)| *n == name) {
                    bound.args.push((name, convert(name, *kind, value)?));
                }
            }
        }
    }
    let missing: Vec<&str> = spec
        .mandatory
        .iter()
        .copied()
        .filter(|m| bound.text(m).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(errors::missing_mandatory(&missing.join(", ")));
    }
    Ok(bound)
}
