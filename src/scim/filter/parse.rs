//! Recursive-descent parser for RFC 7644 §3.4.2.2 filters and §3.5.2 PATCH paths.
//!
//! Precedence, loosest first: `or`, `and`, `not`/parentheses/attribute expressions. Both
//! binary operators associate to the left. Errors name the 1-based column and what was
//! expected there, because the person reading them is usually debugging a client.

use super::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
use crate::scim::error::ScimError;

/// Longest filter accepted, in bytes. Long enough for any real IdP query.
pub const MAX_LEN: usize = 8192;
/// Deepest nesting of parentheses, `not` and value paths accepted.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Str(String),
    Num(serde_json::Number),
    Word(&'a str),
}

struct Lexer<'a> {
    toks: Vec<(Tok<'a>, usize)>,
}

fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'$' | b':' | b'.')
}

impl<'a> Lexer<'a> {
    fn run(src: &'a str, what: &str) -> Result<Vec<(Tok<'a>, usize)>, ScimError> {
        let mut lx = Lexer { toks: Vec::new() };
        let b = src.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => i += 1,
                b'(' => lx.push(Tok::LParen, &mut i),
                b')' => lx.push(Tok::RParen, &mut i),
                b'[' => lx.push(Tok::LBracket, &mut i),
                b']' => lx.push(Tok::RBracket, &mut i),
                b'"' => {
                    let start = i;
                    i += 1;
                    loop {
                        match b.get(i) {
                            None => {
                                return Err(err(
                                    what,
                                    src,
                                    start,
                                    "unterminated string; close it with '\"'",
                                ))
                            }
                            Some(b'\\') => i += 2,
                            Some(b'"') => break,
                            Some(_) => i += 1,
                        }
                    }
                    i += 1;
                    let s: String = serde_json::from_str(&src[start..i]).map_err(|e| {
                        err(what, src, start, &format!("invalid string literal ({e}); escape quotes and backslashes as in JSON"))
                    })?;
                    lx.toks.push((Tok::Str(s), start));
                }
                b'-' | b'0'..=b'9' => {
                    let start = i;
                    i += 1;
                    while i < b.len()
                        && (b[i].is_ascii_digit()
                            || matches!(b[i], b'.' | b'e' | b'E' | b'+' | b'-'))
                    {
                        i += 1;
                    }
                    let n: serde_json::Number = src[start..i]
                        .parse()
                        .map_err(|_| err(what, src, start, "invalid number"))?;
                    lx.toks.push((Tok::Num(n), start));
                }
                c if is_word_char(c) => {
                    let start = i;
                    while i < b.len() && is_word_char(b[i]) {
                        i += 1;
                    }
                    lx.toks.push((Tok::Word(&src[start..i]), start));
                }
                _ => {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err(err(what, src, i, &format!("unexpected character '{ch}'")));
                }
            }
        }
        Ok(lx.toks)
    }

    fn push(&mut self, t: Tok<'a>, i: &mut usize) {
        self.toks.push((t, *i));
        *i += 1;
    }
}

fn err(what: &str, src: &str, pos: usize, msg: &str) -> ScimError {
    let m = format!("{msg} at column {} in {what} '{src}'", pos + 1);
    if what == "filter" {
        ScimError::invalid_filter(m)
    } else {
        ScimError::invalid_path(m)
    }
}

struct Parser<'a> {
    src: &'a str,
    what: &'static str,
    toks: Vec<(Tok<'a>, usize)>,
    pos: usize,
    depth: usize,
}

fn keyword(t: Option<&Tok>, kw: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, what: &'static str) -> Result<Self, ScimError> {
        if src.len() > MAX_LEN {
            // The first 64 bytes, cut at a character boundary.
            let cut = (0..=64)
                .rev()
                .find(|&i| src.is_char_boundary(i))
                .unwrap_or(0);
            return Err(err(
                what,
                &src[..cut],
                0,
                &format!("{what} longer than {MAX_LEN} bytes; split the query"),
            ));
        }
        Ok(Parser {
            src,
            what,
            toks: Lexer::run(src, what)?,
            pos: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> Option<&Tok<'a>> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn here(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|t| t.1)
            .unwrap_or(self.src.len())
    }
    fn fail(&self, msg: &str) -> ScimError {
        err(self.what, self.src, self.here(), msg)
    }
    fn next(&mut self) -> Option<Tok<'a>> {
        let t = self.toks.get(self.pos).map(|t| t.0.clone());
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: Tok<'static>, what: &str) -> Result<(), ScimError> {
        if self.peek() == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.fail(&format!("expected {what}")))
        }
    }
    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.fail(&format!("nesting deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.and()?;
        while keyword(self.peek(), "or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.unary()?;
        while keyword(self.peek(), "and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, ScimError> {
        if keyword(self.peek(), "not")
            && self.toks.get(self.pos + 1).map(|t| &t.0) == Some(&Tok::LParen)
        {
            self.pos += 2;
            self.enter()?;
            let inner = self.or()?;
            self.expect(Tok::RParen, "')' closing 'not ('")?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            self.enter()?;
            let inner = self.or()?;
            self.expect(Tok::RParen, "')'")?;
            self.depth -= 1;
            return Ok(inner);
        }
        self.attr_exp()
    }

    fn attr_exp(&mut self) -> Result<Filter, ScimError> {
        let at = self.here();
        let path = match self.next() {
            Some(Tok::Word(w)) => parse_path_word(w, at, self.what, self.src)?,
            _ => {
                self.pos -= 1;
                return Err(self.fail("expected an attribute name"));
            }
        };
        if self.peek() == Some(&Tok::LBracket) {
            if path.sub.is_some() {
                return Err(
                    self.fail("a value filter '[...]' follows an attribute, not a sub-attribute")
                );
            }
            self.pos += 1;
            self.enter()?;
            let inner = self.or()?;
            self.expect(Tok::RBracket, "']' closing the value filter")?;
            self.depth -= 1;
            // Not in the RFC's filter ABNF but common in the wild:
            // `emails[type eq "work"].value eq "x"` means `emails[type eq "work" and value eq "x"]`.
            if let Some(Tok::Word(w)) = self.peek() {
                if let Some(sub) = w.strip_prefix('.') {
                    let sub_path = parse_path_word(sub, self.here() + 1, self.what, self.src)?;
                    self.pos += 1;
                    let tail = self.comparison(sub_path)?;
                    return Ok(Filter::ValuePath(
                        path,
                        Box::new(Filter::And(Box::new(inner), Box::new(tail))),
                    ));
                }
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        self.comparison(path)
    }

    fn comparison(&mut self, path: AttrPath) -> Result<Filter, ScimError> {
        let op = match self.peek() {
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("pr") => {
                self.pos += 1;
                return Ok(Filter::Present(path));
            }
            Some(Tok::Word(w)) => CompareOp::from_keyword(w),
            _ => None,
        };
        let Some(op) = op else {
            return Err(self.fail(&format!(
                "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '{path}'"
            )));
        };
        self.pos += 1;
        let value = match self.next() {
            Some(Tok::Str(s)) => CompValue::Str(s),
            Some(Tok::Num(n)) => CompValue::Number(n),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("true") => CompValue::Bool(true),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("false") => CompValue::Bool(false),
            Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") => CompValue::Null,
            _ => {
                self.pos -= 1;
                return Err(self.fail(&format!(
                    "expected a value (a \"quoted string\", number, true, false or null) after '{path} {}'",
                    op.as_str()
                )));
            }
        };
        Ok(Filter::Compare(path, op, value))
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    match c.next() {
        Some(f) if f.is_ascii_alphabetic() || f == '$' => {}
        _ => return false,
    }
    c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
}

fn parse_path_word(w: &str, at: usize, what: &str, src: &str) -> Result<AttrPath, ScimError> {
    // `get`, not `[..4]`: byte 4 may fall inside a character ("urnƞ…", found by
    // fuzzing the PATCH engine), and slicing there panicked the handler.
    let (urn, rest) = if w.len() > 4 && w.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
        match w.rfind(':') {
            Some(i) if i + 1 < w.len() => (Some(w[..i].to_string()), &w[i + 1..]),
            _ => {
                return Err(err(
                    what,
                    src,
                    at,
                    "a schema URN must be followed by ':' and an attribute name",
                ))
            }
        }
    } else {
        (None, w)
    };
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    if !valid_name(name) || sub.is_some_and(|s| !valid_name(s)) {
        return Err(err(
            what,
            src,
            at,
            &format!("'{w}' is not an attribute path"),
        ));
    }
    Ok(AttrPath {
        urn,
        name: name.to_string(),
        sub: sub.map(str::to_string),
    })
}

/// Parses a filter expression.
pub fn parse(src: &str) -> Result<Filter, ScimError> {
    let mut p = Parser::new(src, "filter")?;
    if p.toks.is_empty() {
        return Err(ScimError::invalid_filter(
            "the filter is empty; give an expression such as userName eq \"bjensen\"",
        ));
    }
    let f = p.or()?;
    if p.pos < p.toks.len() {
        return Err(p.fail("expected 'and', 'or' or the end of the filter"));
    }
    Ok(f)
}

/// Parses a bare attribute path (`attributes`, `sortBy`).
pub fn parse_attr_path(src: &str) -> Result<AttrPath, ScimError> {
    parse_path_word(src.trim(), 0, "path", src)
}

/// Parses a PATCH `path`.
pub fn parse_patch_path(src: &str) -> Result<PatchPath, ScimError> {
    let mut p = Parser::new(src, "path")?;
    let at = p.here();
    let attr = match p.next() {
        Some(Tok::Word(w)) => parse_path_word(w, at, "path", src)?,
        _ => {
            return Err(ScimError::invalid_path(format!(
                "'{src}' is not a PATCH path; use attr, attr.sub or attr[filter].sub"
            )))
        }
    };
    let mut path = PatchPath {
        attr,
        filter: None,
        filter_sub: None,
    };
    if p.peek() == Some(&Tok::LBracket) {
        p.pos += 1;
        p.what = "filter";
        let f = p.or()?;
        p.what = "path";
        p.expect(Tok::RBracket, "']' closing the value filter")?;
        path.filter = Some(f);
        if let Some(Tok::Word(w)) = p.peek() {
            let Some(sub) = w.strip_prefix('.').filter(|s| valid_name(s)) else {
                return Err(p.fail("expected '.subAttribute' after ']'"));
            };
            path.filter_sub = Some(sub.to_string());
            p.pos += 1;
        }
    }
    if p.pos < p.toks.len() {
        return Err(p.fail("unexpected text after the path"));
    }
    Ok(path)
}
