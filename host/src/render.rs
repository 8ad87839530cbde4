//! Writing cmdlet rows as they arrive: NDJSON, a table, CSV, or a list.
//!
//! Rows arrive page by page and are written at once, so memory stays constant whatever the
//! row count. NDJSON writes Exchange's own JSON text of each row untouched when it can. A
//! table takes its columns and widths from the first page (the default columns of well-known
//! cmdlets, like PowerShell's views) and shortens later cells that do not fit. On a terminal,
//! while the output goes elsewhere, a progress line on stderr shows rows, pages and the rate.

use std::fmt::Write as _;
use std::io::{self, IsTerminal as _, Write};
use std::time::{Duration, Instant};

use exchange::invoke::Page;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::output::background::BackgroundWriter;

/// How rows are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON object per line.
    Json,
    /// Comma-separated values with a header.
    Csv,
    /// `Property : value` blocks.
    List,
}

impl Format {
    /// Table on a terminal, NDJSON when piped.
    pub fn default_for_stdout() -> Self {
        if io::stdout().is_terminal() {
            Self::Table
        } else {
            Self::Json
        }
    }

    /// Parses `table`, `json`, `csv` or `list`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "table" => Ok(Self::Table),
            "json" | "ndjson" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            "list" => Ok(Self::List),
            other => Err(format!(
                "unknown output format '{other}'; use table, json, csv or list"
            )),
        }
    }
}

/// The name of the property that says which connection a row came from.
pub const CONNECTION_PROPERTY: &str = "ExoConnection";

/// Widest a table column grows.
const MAX_COLUMN_WIDTH: usize = 48;

/// Writes rows to `out`.
pub struct Renderer<W: Write> {
    out: W,
    format: Format,
    cmdlet: String,
    properties: Option<Vec<String>>,
    tagged: bool,
    /// Whether CSV cells that a spreadsheet would run as formulas are written as they are.
    csv_formulas: bool,
    /// Columns and widths, fixed by the first rows (table, CSV).
    columns: Option<Vec<(String, usize)>>,
    rows: u64,
}

/// The largest page handed to the output thread whole (Exchange's pages of 1,000 rows are a
/// few MiB at most); a larger one is copied into the writer's buffers row by row.
const MAX_WHOLE_PAGE_BYTES: usize = 4 << 20;

impl Renderer<BackgroundWriter> {
    /// Writes a page from Exchange. Rows written as they came (JSON lines, no property chosen,
    /// no connection added) are handed over in the page's own text when it allows
    /// ([`Page::into_lines`]); any other output is made row by row.
    pub fn write_exchange_page(&mut self, page: Page, connection: &str) -> io::Result<()> {
        let as_it_came = self.format == Format::Json && self.properties.is_none() && !self.tagged;
        // A page waits whole for the output thread: only one of a usual size, so that a slow
        // reader keeps at most a few of them waiting.
        let page = if as_it_came && page.size() <= MAX_WHOLE_PAGE_BYTES {
            let count = page.len() as u64;
            match page.into_lines() {
                Ok(lines) => {
                    if count > 0 {
                        let (bytes, start) = lines.into_parts();
                        self.out.take_whole(bytes, start)?;
                        self.rows += count;
                    }
                    return Ok(());
                }
                Err(page) => page,
            }
        } else {
            page
        };
        let rows: Vec<&str> = page.rows().collect();
        self.write_page(&rows, connection)
    }
}

impl<W: Write> Renderer<W> {
    /// A renderer for `cmdlet`'s rows; `properties` selects columns; `tagged` adds the
    /// connection of each row.
    pub fn new(
        out: W,
        format: Format,
        cmdlet: &str,
        properties: Option<Vec<String>>,
        tagged: bool,
    ) -> Self {
        Self {
            out,
            format,
            cmdlet: cmdlet.to_owned(),
            properties,
            tagged,
            csv_formulas: false,
            columns: None,
            rows: 0,
        }
    }

    /// Writes CSV cells starting with `=`, `+`, `-`, `@`, a tab or a carriage return as they
    /// are, instead of guarding them with a leading `'` (the default, so that a spreadsheet
    /// opening the file does not run a cell's text as a formula).
    pub fn keep_csv_formulas(mut self, keep: bool) -> Self {
        self.csv_formulas = keep;
        self
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Whether rows say which connection they came from.
    pub fn is_tagged(&self) -> bool {
        self.tagged
    }

    /// Writes one page of rows, from the connection labelled `connection`.
    pub fn write_page(&mut self, rows: &[&str], connection: &str) -> io::Result<()> {
        if self.format == Format::Json && self.properties.is_none() {
            for row in rows {
                self.write_raw_json(row, connection)?;
            }
        } else {
            let mut parsed = Vec::with_capacity(rows.len());
            for row in rows {
                parsed.push(self.select(Row::parse(row), connection));
            }
            match self.format {
                Format::Json => {
                    for row in &parsed {
                        writeln!(self.out, "{}", row.to_json())?;
                    }
                }
                Format::Csv => self.write_csv(&parsed)?,
                Format::Table => self.write_table(&parsed)?,
                Format::List => self.write_list(&parsed)?,
            }
        }
        self.rows += rows.len() as u64;
        self.out.flush()
    }

    /// Flushes what is left.
    pub fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The writer, once the rows are written.
    pub fn into_writer(self) -> W {
        self.out
    }

    fn write_raw_json(&mut self, row: &str, connection: &str) -> io::Result<()> {
        // Exchange's JSON is compact; anything with a line break is written again compactly.
        let compact;
        let row = if row.contains('\n') {
            compact = serde_json::from_str::<serde_json::Value>(row)
                .map_err(io::Error::other)?
                .to_string();
            compact.as_str()
        } else {
            row
        };
        if self.tagged {
            let label = serde_json::to_string(connection).map_err(io::Error::other)?;
            match row.strip_prefix('{').map(str::trim_start) {
                Some("}") => writeln!(self.out, "{{\"{CONNECTION_PROPERTY}\":{label}}}"),
                Some(rest) => writeln!(self.out, "{{\"{CONNECTION_PROPERTY}\":{label},{rest}"),
                None => writeln!(
                    self.out,
                    "{{\"{CONNECTION_PROPERTY}\":{label},\"Value\":{row}}}"
                ),
            }
        } else {
            self.out.write_all(row.as_bytes())?;
            self.out.write_all(b"\n")
        }
    }

    /// The row with the connection first and only the chosen properties.
    fn select(&self, row: Row, connection: &str) -> Row {
        let mut fields = Vec::new();
        if self.tagged {
            let label =
                RawValue::from_string(serde_json::to_string(connection).unwrap_or_default())
                    .expect("a JSON string is valid JSON");
            fields.push((CONNECTION_PROPERTY.to_owned(), label));
        }
        match &self.properties {
            Some(wanted) => {
                let mut row = row.0;
                for name in wanted {
                    let found = row
                        .iter()
                        .position(|(key, _)| key.eq_ignore_ascii_case(name));
                    let value = match found {
                        Some(i) => row.swap_remove(i).1,
                        None => {
                            RawValue::from_string("null".to_owned()).expect("null is valid JSON")
                        }
                    };
                    fields.push((name.clone(), value));
                }
            }
            None => fields.extend(row.0.into_iter().filter(|(key, _)| !key.starts_with('@'))),
        }
        Row(fields)
    }

    fn columns_for(&mut self, first: &Row) -> Vec<(String, usize)> {
        if let Some(columns) = &self.columns {
            return columns.clone();
        }
        let names: Vec<String> = match (&self.properties, self.format) {
            (None, Format::Table) => default_view(&self.cmdlet, first, self.tagged),
            _ => first.0.iter().map(|(k, _)| k.clone()).collect(),
        };
        let columns: Vec<(String, usize)> = names
            .into_iter()
            .map(|name| (name.clone(), name.chars().count()))
            .collect();
        self.columns = Some(columns.clone());
        columns
    }

    fn write_table(&mut self, rows: &[Row]) -> io::Result<()> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let print_header = self.columns.is_none();
        let mut columns = self.columns_for(first);
        if print_header {
            for (name, width) in &mut columns {
                *width = rows
                    .iter()
                    .map(|r| cell(r.get(name), CellStyle::Terminal).chars().count())
                    .fold(*width, usize::max)
                    .min(MAX_COLUMN_WIDTH);
            }
            self.columns = Some(columns.clone());
            let header: Vec<String> = columns.iter().map(|(name, _)| name.clone()).collect();
            let rule: Vec<String> = columns
                .iter()
                .map(|(name, _)| "-".repeat(name.chars().count()))
                .collect();
            self.write_aligned(&columns, &header)?;
            self.write_aligned(&columns, &rule)?;
        }
        for row in rows {
            let cells: Vec<String> = columns
                .iter()
                .map(|(name, _)| cell(row.get(name), CellStyle::Terminal))
                .collect();
            self.write_aligned(&columns, &cells)?;
        }
        Ok(())
    }

    fn write_aligned(&mut self, columns: &[(String, usize)], cells: &[String]) -> io::Result<()> {
        let mut line = String::new();
        for (i, ((_, width), text)) in columns.iter().zip(cells).enumerate() {
            let text = shorten(text, *width);
            line.push_str(&text);
            if i + 1 < columns.len() {
                let pad = width.saturating_sub(text.chars().count()) + 1;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(self.out, "{}", line.trim_end())
    }

    fn write_csv(&mut self, rows: &[Row]) -> io::Result<()> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let print_header = self.columns.is_none();
        let columns = self.columns_for(first);
        if print_header {
            let header: Vec<String> = columns
                .iter()
                .map(|(name, _)| self.csv_cell(name.clone()))
                .collect();
            writeln!(self.out, "{}", header.join(","))?;
        }
        for row in rows {
            let fields: Vec<String> = columns
                .iter()
                .map(|(name, _)| self.csv_cell(cell(row.get(name), CellStyle::Csv)))
                .collect();
            writeln!(self.out, "{}", fields.join(","))?;
        }
        Ok(())
    }

    /// A CSV cell (header or value), guarded against formulas unless asked not to.
    fn csv_cell(&self, text: String) -> String {
        if self.csv_formulas {
            csv_field(&text)
        } else {
            csv_field(&formula_guarded(text))
        }
    }

    fn write_list(&mut self, rows: &[Row]) -> io::Result<()> {
        for row in rows {
            let width = row
                .0
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0);
            let mut block = String::new();
            for (key, value) in &row.0 {
                let line = format!(
                    "{} : {}",
                    escape_controls(&format!("{key:width$}")),
                    cell(Some(value), CellStyle::Terminal)
                );
                let _ = writeln!(block, "{}", line.trim_end());
            }
            writeln!(self.out, "{block}")?;
        }
        Ok(())
    }
}

/// The columns PowerShell's default view shows for well-known cmdlets (those present in the
/// row), else the row's first properties.
fn default_view(cmdlet: &str, first: &Row, tagged: bool) -> Vec<String> {
    let noun = cmdlet
        .split_once('-')
        .map_or(cmdlet, |(_, noun)| noun)
        .to_ascii_lowercase();
    let view: &[&str] = match noun.as_str() {
        "mailbox" => &[
            "Name",
            "Alias",
            "Database",
            "ProhibitSendQuota",
            "ExternalDirectoryObjectId",
        ],
        "recipient" | "user" => &["Name", "RecipientType"],
        "accepteddomain" => &["Name", "DomainName", "DomainType", "Default"],
        _ => &[],
    };
    let mut columns: Vec<String> = Vec::new();
    if tagged {
        columns.push(CONNECTION_PROPERTY.to_owned());
    }
    let present: Vec<String> = view
        .iter()
        .filter(|c| first.get(c).is_some())
        .map(|c| (*c).to_owned())
        .collect();
    if present.len() >= 2 {
        columns.extend(present);
    } else {
        columns.extend(
            first
                .0
                .iter()
                .map(|(k, _)| k.clone())
                .filter(|k| k != CONNECTION_PROPERTY)
                .take(6),
        );
    }
    columns
}

fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let short: String = text.chars().take(width.saturating_sub(1)).collect();
        format!("{}…", short.trim_end())
    }
}

/// How a cell is shown.
#[derive(Clone, Copy, PartialEq, Eq)]
enum CellStyle {
    /// For people: strings bare with control characters escaped (tenant data must not drive the
    /// terminal), lists as `{a, b}` like PowerShell, null empty.
    Terminal,
    /// For CSV: strings bare, null empty, anything structured as JSON text.
    Csv,
}

fn cell(value: Option<&RawValue>, style: CellStyle) -> String {
    let Some(value) = value else {
        return String::new();
    };
    let text = match serde_json::from_str::<serde_json::Value>(value.get()) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Null) | Err(_) => String::new(),
        Ok(serde_json::Value::Array(items)) if style == CellStyle::Terminal => {
            let items: Vec<String> = items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Ok(other) => other.to_string(),
    };
    match style {
        CellStyle::Terminal => escape_controls(&text),
        CellStyle::Csv => text,
    }
}

/// `text` with control characters shown as escapes (`\n`, `\u{1b}`).
fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| match c {
            '\n' => "\\n".to_owned(),
            '\r' => "\\r".to_owned(),
            '\t' => "\\t".to_owned(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// `text` with a leading `'` when a spreadsheet would take it as a formula (OWASP's guard
/// against CSV injection); numbers such as `-5` are left alone.
fn formula_guarded(text: String) -> String {
    let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    // A plain number (digits, sign, point, exponent): not `-inf` or `+NaN`, which Rust parses.
    let number = text
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
        && text.parse::<f64>().is_ok();
    if risky && !number {
        format!("'{text}")
    } else {
        text
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A JSON object with its properties in order, values kept as JSON text.
pub struct Row(Vec<(String, Box<RawValue>)>);

impl Row {
    /// The properties of `raw` (JSON text); a value that is not an object is one property,
    /// `Value`.
    fn parse(raw: &str) -> Self {
        serde_json::from_str(raw).unwrap_or_else(|_| {
            let value = RawValue::from_string(raw.to_owned())
                .unwrap_or_else(|_| RawValue::from_string("null".to_owned()).expect("valid JSON"));
            Self(vec![("Value".to_owned(), value)])
        })
    }

    fn get(&self, name: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }

    fn to_json(&self) -> String {
        let mut json = String::from("{");
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&serde_json::to_string(key).unwrap_or_default());
            json.push(':');
            json.push_str(value.get());
        }
        json.push('}');
        json
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = Row;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    fields.push(entry);
                }
                Ok(Row(fields))
            }
        }
        deserializer.deserialize_map(RowVisitor)
    }
}

/// A progress line on stderr, shown only when stderr is a terminal and stdout is not (when
/// rows go to a terminal, they are the progress).
pub struct Progress {
    label: String,
    enabled: bool,
    started: Instant,
    pages: u64,
    shown: Option<Instant>,
}

impl Progress {
    /// A progress line for `label` (the cmdlet).
    pub fn new(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            enabled: io::stderr().is_terminal() && !io::stdout().is_terminal(),
            started: Instant::now(),
            pages: 0,
            shown: None,
        }
    }

    /// Counts one more page, from any connection, and shows the total `rows` at most five
    /// times a second.
    pub fn page(&mut self, rows: u64) {
        self.pages += 1;
        if !self.enabled
            || self
                .shown
                .is_some_and(|at| at.elapsed() < Duration::from_millis(200))
        {
            return;
        }
        let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        let _ = write!(
            io::stderr(),
            "\r{}: {rows} rows, {} pages, {rate:.0} rows/s\x1b[K",
            self.label,
            self.pages
        );
        self.shown = Some(Instant::now());
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.shown.is_some() {
            let _ = write!(io::stderr(), "\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests;
