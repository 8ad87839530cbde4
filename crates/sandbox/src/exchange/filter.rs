//! A subset of OPATH, the `-Filter` language of Exchange cmdlets:
//! `-eq -ne -like -notlike -and -or -not`, parentheses, values in single or double quotes
//! (`''` escapes a quote), bare words, `$true`, `$false`, `$null`. Comparisons are
//! case-insensitive; `-like` supports `*` wildcards; a multi-valued property (EmailAddresses)
//! matches when any value does.
//!
//! The parser is recursive descent, so nesting is capped: at most [`MAX_DEPTH`] levels of
//! parentheses and `-not` together (a request body of a megabyte could otherwise nest 200,000
//! levels and overflow the stack). Deeper filters get the ordinary "Invalid filter syntax"
//! error at the position of the first token past the limit. Chains of `-and` / `-or` are kept
//! flat (one node per chain), so neither evaluation nor dropping a parsed filter recurses
//! deeper than the nesting.

/// How deeply parentheses and `-not` may nest. UNVERIFIED: Exchange's own limit is not
/// documented; 64 is far beyond any filter a person or a tool writes.
pub(crate) const MAX_DEPTH: usize = 64;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Filter {
    Compare {
        property: String,
        op: Op,
        value: Option<String>,
    },
    /// Every operand of an `-and` chain (at least two).
    And(Vec<Filter>),
    /// Every operand of an `-or` chain (at least two).
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Like,
    NotLike,
}

/// A property value as the filter sees it.
pub(crate) enum Value<'a> {
    Text(&'a str),
    Bool(bool),
    Many(Vec<&'a str>),
    Null,
}

/// Why a filter was refused, as Exchange words it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FilterError {
    /// Syntax error at a character position (1-based).
    Syntax { filter: String, position: usize },
    /// A property the cmdlet cannot filter on.
    UnknownProperty(String),
}

impl FilterError {
    pub fn message(&self) -> String {
        match self {
            FilterError::Syntax { filter, position } => format!(
                "Invalid filter syntax. For a description of the filter parameter syntax see the command help.\r\n\"{filter}\" at position {position}."
            ),
            FilterError::UnknownProperty(p) => format!(
                "Cannot bind parameter 'Filter' to the target. Exception setting \"Filter\": \"\"{p}\" is not a recognized filterable property. For a list of filterable properties see the command help.\""
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Operator(String),
    Open,
    Close,
}

fn tokenize(input: &str) -> Result<Vec<(Token, usize)>, usize> {
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let start = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((Token::Open, start));
                i += 1;
            }
            ')' => {
                out.push((Token::Close, start));
                i += 1;
            }
            '\'' | '"' => {
                let quote = c;
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(start),
                        Some(&ch) if ch == quote => {
                            if chars.get(i + 1) == Some(&quote) {
                                value.push(quote);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&ch) => {
                            value.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((Token::Quoted(value), start));
            }
            _ => {
                let begin = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && chars[i] != '('
                    && chars[i] != ')'
                {
                    i += 1;
                }
                let word: String = chars[begin..i].iter().collect();
                let token = if word.starts_with('-') {
                    Token::Operator(word.to_ascii_lowercase())
                } else {
                    Token::Word(word)
                };
                out.push((token, start));
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<(Token, usize)>,
    pos: usize,
    /// Parentheses and `-not` currently open.
    depth: usize,
    source: &'a str,
    properties: &'a [&'a str],
}

impl Parser<'_> {
    fn error(&self) -> FilterError {
        let position = self
            .tokens
            .get(self.pos)
            .map_or(self.source.chars().count() + 1, |(_, p)| *p);
        FilterError::Syntax {
            filter: self.source.to_owned(),
            position,
        }
    }

    fn peek_operator(&self, name: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some((Token::Operator(op), _)) if op == name)
    }

    /// `operand (op operand)*` as one flat node.
    fn chain(
        &mut self,
        operator: &str,
        operand: fn(&mut Self) -> Result<Filter, FilterError>,
        node: fn(Vec<Filter>) -> Filter,
    ) -> Result<Filter, FilterError> {
        let mut operands = vec![operand(self)?];
        while self.peek_operator(operator) {
            self.pos += 1;
            operands.push(operand(self)?);
        }
        Ok(match operands.len() {
            1 => operands.swap_remove(0),
            _ => node(operands),
        })
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        self.chain("-or", Self::and, Filter::Or)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        self.chain("-and", Self::not, Filter::And)
    }

    /// Enters one level of nesting (the token at `pos` opens it).
    fn descend(&mut self) -> Result<(), FilterError> {
        if self.depth == MAX_DEPTH {
            return Err(self.error());
        }
        self.depth += 1;
        self.pos += 1;
        Ok(())
    }

    fn not(&mut self) -> Result<Filter, FilterError> {
        if self.peek_operator("-not") {
            self.descend()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Filter, FilterError> {
        match self.tokens.get(self.pos).cloned() {
            Some((Token::Open, _)) => {
                self.descend()?;
                let inner = self.or()?;
                self.depth -= 1;
                match self.tokens.get(self.pos) {
                    Some((Token::Close, _)) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err(self.error()),
                }
            }
            Some((Token::Word(name), _)) => {
                let property = self
                    .properties
                    .iter()
                    .find(|p| p.eq_ignore_ascii_case(&name))
                    .ok_or_else(|| FilterError::UnknownProperty(name.clone()))?;
                self.pos += 1;
                let op = match self.tokens.get(self.pos) {
                    Some((Token::Operator(op), _)) => match op.as_str() {
                        "-eq" => Op::Eq,
                        "-ne" => Op::Ne,
                        "-like" => Op::Like,
                        "-notlike" => Op::NotLike,
                        _ => return Err(self.error()),
                    },
                    _ => return Err(self.error()),
                };
                self.pos += 1;
                let value = match self.tokens.get(self.pos) {
                    Some((Token::Quoted(v), _)) => Some(v.clone()),
                    Some((Token::Word(v), _)) => match v.to_ascii_lowercase().as_str() {
                        "$null" => None,
                        "$true" => Some("True".to_owned()),
                        "$false" => Some("False".to_owned()),
                        _ => Some(v.clone()),
                    },
                    _ => return Err(self.error()),
                };
                self.pos += 1;
                Ok(Filter::Compare {
                    property: (*property).to_owned(),
                    op,
                    value,
                })
            }
            _ => Err(self.error()),
        }
    }
}

/// Parses `input`, allowing only `properties` (canonical names).
pub(crate) fn parse(input: &str, properties: &[&str]) -> Result<Filter, FilterError> {
    let tokens = tokenize(input).map_err(|position| FilterError::Syntax {
        filter: input.to_owned(),
        position,
    })?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        depth: 0,
        source: input,
        properties,
    };
    let filter = parser.or()?;
    if parser.pos != parser.tokens.len() {
        return Err(parser.error());
    }
    Ok(filter)
}

/// `*` wildcard match, case-insensitive.
pub(crate) fn like(text: &str, pattern: &str) -> bool {
    let text = text.to_lowercase();
    let pattern = pattern.to_lowercase();
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return text == pattern;
    }
    let mut rest = text.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

impl Filter {
    /// Evaluates the filter; `get` returns a property's value by canonical name.
    pub fn eval<'a>(&self, get: &dyn Fn(&str) -> Value<'a>) -> bool {
        match self {
            Filter::And(all) => all.iter().all(|f| f.eval(get)),
            Filter::Or(any) => any.iter().any(|f| f.eval(get)),
            Filter::Not(a) => !a.eval(get),
            Filter::Compare {
                property,
                op,
                value,
            } => {
                let texts: Vec<&str> = match get(property) {
                    Value::Text("") | Value::Null => vec![],
                    Value::Text(t) => vec![t],
                    Value::Bool(b) => vec![if b { "True" } else { "False" }],
                    Value::Many(list) => list,
                };
                let Some(value) = value else {
                    let is_null = texts.is_empty();
                    return matches!(op, Op::Eq | Op::Like) == is_null;
                };
                let hit = |pattern_match: bool| {
                    texts.iter().any(|t| {
                        if pattern_match {
                            like(t, value)
                        } else {
                            t.eq_ignore_ascii_case(value)
                        }
                    })
                };
                match op {
                    Op::Eq => hit(false),
                    Op::Ne => !hit(false),
                    Op::Like => hit(true),
                    Op::NotLike => !hit(true),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
