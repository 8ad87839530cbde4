//! Paging and the success response body.
//!
//! `Prefer: odata.maxpagesize=N` (1…1000, default 1000; larger values are clamped) is
//! acknowledged with `Preference-Applied`. `@odata.nextLink` is an absolute URL to POST the
//! same body to; its `$skiptoken` opaquely encodes the position. Rows of Get-Mailbox are
//! pre-serialized and copied straight into the response buffer.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::exchange::store::Entry;

/// The largest page.
pub(crate) const MAX_PAGE_SIZE: usize = 1000;

/// The page size to use, and the value to echo in `Preference-Applied` (if the client asked).
pub(crate) fn page_size(prefer: Option<&str>) -> (usize, Option<usize>) {
    let requested = prefer.and_then(|p| {
        p.split(',').find_map(|pref| {
            let (name, value) = pref.trim().split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("odata.maxpagesize")
                .then(|| value.trim().trim_matches('"').parse::<usize>().ok())?
        })
    });
    match requested {
        Some(n) if n > 0 => {
            let n = n.min(MAX_PAGE_SIZE);
            (n, Some(n))
        }
        _ => (MAX_PAGE_SIZE, None),
    }
}

/// Encodes a position as an opaque skip token.
pub(crate) fn encode_skip(position: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("exosandbox:v1:{position}"))
}

/// Decodes a skip token; `None` if it isn't one of ours.
pub(crate) fn decode_skip(token: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("exosandbox:v1:")?
        .parse()
        .ok()
}

/// One output row.
#[derive(Debug)]
pub(crate) enum Row {
    /// A pre-serialized Get-Mailbox row.
    Mailbox(Arc<Entry>),
    /// A row serialized for this response.
    Json(String),
}

impl Row {
    pub fn text(&self) -> &str {
        match self {
            Row::Mailbox(entry) => &entry.row,
            Row::Json(text) => text,
        }
    }
}

/// Everything in a success body besides the context URL.
#[derive(Debug, Default)]
pub(crate) struct Output {
    pub rows: Vec<Row>,
    /// Position of the next page, if there is one.
    pub next: Option<usize>,
    pub warnings: Vec<String>,
    pub confirmation: Option<String>,
}

/// Keeps only the `$select`ed properties of a JSON object row.
fn project(row: &str, select: &[String]) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(row) else {
        return row.to_owned();
    };
    let kept: serde_json::Map<String, serde_json::Value> = map
        .into_iter()
        .filter(|(k, _)| select.iter().any(|s| s.eq_ignore_ascii_case(k)))
        .collect();
    serde_json::Value::Object(kept).to_string()
}

/// Writes the success body.
pub(crate) fn write_body(
    context: &str,
    output: &Output,
    next_link: Option<&str>,
    select: &[String],
) -> String {
    let rows_len: usize = output.rows.iter().map(|r| r.text().len() + 1).sum();
    let mut out = String::with_capacity(rows_len + 512);
    let json = |s: &str| serde_json::Value::from(s).to_string();
    out.push_str("{\"@odata.context\":");
    out.push_str(&json(context));
    if let Some(link) = next_link {
        out.push_str(",\"@odata.nextLink\":");
        out.push_str(&json(link));
    }
    if !output.warnings.is_empty() {
        out.push_str(",\"@adminapi.warnings\":");
        out.push_str(&serde_json::Value::from(output.warnings.clone()).to_string());
    }
    if let Some(message) = &output.confirmation {
        out.push_str(",\"@adminapi.confirmationmessage\":");
        out.push_str(&json(message));
    }
    out.push_str(",\"value\":[");
    for (i, row) in output.rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if select.is_empty() {
            out.push_str(row.text());
        } else {
            out.push_str(&project(row.text(), select));
        }
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests;
