//! A cmdlet and its parameters, from PowerShell-style command-line arguments.
//!
//! `exo Get-Mailbox -Identity alice -ResultSize 10` works as it would in PowerShell, within what
//! a shell leaves of the words:
//! - `-Name value`, `-Name:value`; a parameter without a value is a switch (`true`);
//!   `-Switch:false` turns it off;
//! - `$true`, `$false`, `$null`, and `true`, `false` (a POSIX shell expands an unquoted or
//!   double-quoted `$false` to nothing, so exo refuses an empty `-Name:`); whole numbers become
//!   JSON numbers, except with leading zeros (`0042` stays text);
//! - `a,b,c` is a list; `@(a,b)` too;
//! - `@{Add="x";Remove="y","z"}` is a hashtable (sent as `#Exchange.GenericHashTable`);
//! - a value wrapped in quotes the shell kept (`"'Smith, John'"`) is a literal string: no list,
//!   no number, no `$`-keyword; so is a value whose quotes or brackets do not pair up
//!   (`o'brien@contoso.com`, `Smiley :)`).

use serde_json::{Map, Value};

/// A cmdlet invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct Cmdlet {
    /// Its name, e.g. `Get-Mailbox`.
    pub name: String,
    /// Its parameters, in the order given.
    pub parameters: Map<String, Value>,
    /// The parameters given as secrets ([`Cmdlet::add_secret`]): hidden in logs whatever
    /// their name.
    pub secrets: Vec<String>,
}

/// Why arguments could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgError {
    /// The name is not Verb-Noun.
    #[error("'{0}' is not a cmdlet name (Verb-Noun, e.g. Get-Mailbox)")]
    BadName(String),
    /// A value came where a parameter name was expected.
    #[error("'{0}' is not a parameter: parameters start with - (e.g. -Identity {0})")]
    StrayValue(String),
    /// A parameter name is malformed.
    #[error("'{0}' is not a valid parameter name")]
    BadParameter(String),
    /// A parameter was given twice.
    #[error("parameter -{0} is given twice")]
    Duplicate(String),
    /// `-Name:` with nothing after the colon.
    #[error(
        "-{0}: has no value; a shell turns -{0}:$false into -{0}: — write -{0}:false, or quote it: '-{0}:$false'"
    )]
    EmptyValue(String),
    /// A hashtable or list is malformed.
    #[error("cannot read the value of -{parameter}: {reason}")]
    BadValue {
        /// The parameter.
        parameter: String,
        /// What is wrong.
        reason: String,
    },
}

impl Cmdlet {
    /// Parses `name` and its `args`.
    pub fn parse(name: &str, args: &[String]) -> Result<Self, ArgError> {
        if !is_cmdlet_name(name) {
            return Err(ArgError::BadName(name.to_owned()));
        }
        let mut parameters = Map::new();
        let mut words = args.iter().peekable();
        while let Some(word) = words.next() {
            let Some(spec) = word
                .strip_prefix('-')
                .filter(|s| s.starts_with(|c: char| c.is_ascii_alphabetic()))
            else {
                return Err(ArgError::StrayValue(word.clone()));
            };
            let (parameter, inline) = match spec.split_once(':') {
                Some((parameter, value)) => (parameter, Some(value)),
                None => (spec, None),
            };
            if !parameter.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ArgError::BadParameter(word.clone()));
            }
            let text = match inline {
                Some("") => return Err(ArgError::EmptyValue(parameter.to_owned())),
                Some(value) => Some(value.to_owned()),
                None => words.next_if(|next| !is_parameter(next)).cloned(),
            };
            let value = match text {
                Some(text) => parse_value(&text, 0).map_err(|reason| ArgError::BadValue {
                    parameter: parameter.to_owned(),
                    reason,
                })?,
                None => Value::Bool(true),
            };
            if parameters.keys().any(|k| k.eq_ignore_ascii_case(parameter)) {
                return Err(ArgError::Duplicate(parameter.to_owned()));
            }
            parameters.insert(parameter.to_owned(), value);
        }
        Ok(Self {
            name: name.to_owned(),
            parameters,
            secrets: Vec::new(),
        })
    }

    /// Adds parameter `name` with a secret text `value` (read from a file, a variable or stdin
    /// rather than the command line).
    pub fn add_secret(&mut self, name: &str, value: &str) -> Result<(), ArgError> {
        if !name.starts_with(|c: char| c.is_ascii_alphabetic())
            || !name.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(ArgError::BadParameter(name.to_owned()));
        }
        if self.parameter(name).is_some() {
            return Err(ArgError::Duplicate(name.to_owned()));
        }
        self.parameters
            .insert(name.to_owned(), Value::String(value.to_owned()));
        self.secrets.push(name.to_owned());
        Ok(())
    }

    /// The `CmdletInput` envelope sent to InvokeCommand.
    pub fn body(&self) -> Value {
        serde_json::json!({ "CmdletInput": { "CmdletName": self.name, "Parameters": self.parameters } })
    }

    /// The value of parameter `name` (case-insensitive).
    pub fn parameter(&self, name: &str) -> Option<&Value> {
        self.parameters
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The verb, e.g. `Get`.
    pub fn verb(&self) -> &str {
        self.name.split_once('-').map_or("", |(verb, _)| verb)
    }

    /// Whether running it twice is harmless (its verb only reads), so that a request whose
    /// fate is unknown may be sent again.
    pub fn is_idempotent(&self) -> bool {
        ["get", "test", "search", "export"]
            .iter()
            .any(|v| self.verb().eq_ignore_ascii_case(v))
    }
}

/// Whether `name` looks like Verb-Noun.
pub fn is_cmdlet_name(name: &str) -> bool {
    match name.split_once('-') {
        Some((verb, noun)) => {
            !verb.is_empty()
                && !noun.is_empty()
                && verb.chars().all(|c| c.is_ascii_alphabetic())
                && noun.chars().all(|c| c.is_ascii_alphanumeric())
        }
        None => false,
    }
}

fn is_parameter(word: &str) -> bool {
    word.strip_prefix('-')
        .is_some_and(|s| s.starts_with(|c: char| c.is_ascii_alphabetic()))
}

/// How deep hashtables may nest in one value; Exchange's parameters use one or two levels.
const MAX_NESTING: usize = 16;

/// Parses one value, `depth` hashtables deep.
fn parse_value(text: &str, depth: usize) -> Result<Value, String> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix("@{") {
        if depth >= MAX_NESTING {
            return Err(format!(
                "hashtables nest more than {MAX_NESTING} deep; no Exchange parameter needs that"
            ));
        }
        let inner = inner
            .strip_suffix('}')
            .ok_or("a hashtable @{…} is not closed")?;
        return parse_hashtable(inner, depth + 1);
    }
    if let Some(inner) = text.strip_prefix("@(") {
        let inner = inner.strip_suffix(')').ok_or("a list @(…) is not closed")?;
        return Ok(Value::Array(
            split_top_level(inner, ',')?
                .iter()
                .map(|item| scalar(item))
                .collect(),
        ));
    }
    // Outside @{…} and @(…), text whose quotes or brackets do not pair up is just text.
    let Ok(items) = split_top_level(text, ',') else {
        return Ok(Value::String(text.to_owned()));
    };
    if items.len() > 1 {
        return Ok(Value::Array(
            items.iter().map(|item| scalar(item)).collect(),
        ));
    }
    Ok(scalar(text))
}

/// `Add="x";Remove="y","z"` → a GenericHashTable, `depth` hashtables deep.
fn parse_hashtable(inner: &str, depth: usize) -> Result<Value, String> {
    let mut table = Map::new();
    table.insert(
        "@odata.type".into(),
        Value::String("#Exchange.GenericHashTable".into()),
    );
    for entry in split_top_level(inner, ';')? {
        if entry.trim().is_empty() {
            continue;
        }
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| format!("'{entry}' is not key=value"))?;
        let key = unquote(key.trim()).unwrap_or(key.trim());
        if key.is_empty() {
            return Err(format!("'{entry}' has no key"));
        }
        table.insert(key.to_owned(), parse_value(value, depth)?);
    }
    Ok(Value::Object(table))
}

/// Splits at `separator` outside quotes and brackets.
fn split_top_level(text: &str, separator: char) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '{') => depth += 1,
            (None, ')' | '}') => depth = depth.checked_sub(1).ok_or("unbalanced brackets")?,
            (None, c) if c == separator && depth == 0 => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if quote.is_some() {
        return Err("a quote is not closed".into());
    }
    items.push(current);
    Ok(items)
}

fn unquote(text: &str) -> Option<&str> {
    ['\'', '"']
        .iter()
        .find_map(|q| text.strip_prefix(*q)?.strip_suffix(*q))
}

/// A single value: a literal string, `$true`/`$false`/`$null`, a whole number, or text.
fn scalar(text: &str) -> Value {
    let text = text.trim();
    if let Some(literal) = unquote(text).filter(|_| text.len() >= 2) {
        return Value::String(literal.to_owned());
    }
    match text.to_ascii_lowercase().as_str() {
        "$true" | "true" => return Value::Bool(true),
        "$false" | "false" => return Value::Bool(false),
        "$null" => return Value::Null,
        _ => {}
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty()
        && (digits == "0" || !digits.starts_with('0'))
        && digits.len() < 16
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(number) = text.parse::<i64>()
    {
        return Value::from(number);
    }
    Value::String(text.to_owned())
}

#[cfg(test)]
mod tests;
