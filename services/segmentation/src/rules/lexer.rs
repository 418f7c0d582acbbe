//! Splits a rule into tokens. Lexical errors are reported here and leave a
//! [`Kind::Bad`] token, which the parser skips without a second message.

use super::ast::{CmpOp, Number};
use super::error::{Pos, RuleError, shorten};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    And,
    Or,
    Not,
    In,
    Between,
    Contains,
    Exists,
    True,
    False,
}

const KEYWORDS: [(&str, Keyword); 9] = [
    ("AND", Keyword::And),
    ("OR", Keyword::Or),
    ("NOT", Keyword::Not),
    ("IN", Keyword::In),
    ("BETWEEN", Keyword::Between),
    ("CONTAINS", Keyword::Contains),
    ("EXISTS", Keyword::Exists),
    ("TRUE", Keyword::True),
    ("FALSE", Keyword::False),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A field name (or a misspelt one).
    Word(String),
    Keyword(Keyword),
    Number(Number),
    Text(String),
    Op(CmpOp),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    /// Something already reported as an error.
    Bad,
    End,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Kind,
    pub pos: Pos,
    /// The token as written, shortened for messages.
    pub shown: String,
}

struct Cursor<'a> {
    src: &'a str,
    at: usize,
    pos: Pos,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.at..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        self.src[self.at..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        if c == '\n' {
            self.pos.line += 1;
            self.pos.column = 1;
        } else {
            self.pos.column += 1;
        }
        Some(c)
    }

    fn bump_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
    }
}

fn word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// A character that may begin a token (`-` and `!` only with what follows).
fn token_start(c: char) -> bool {
    word_start(c) || c.is_ascii_digit() || "\"-!=<>()[],".contains(c)
}

pub(crate) fn lex(src: &str) -> (Vec<Token>, Vec<RuleError>) {
    let mut cur = Cursor { src, at: 0, pos: Pos::START };
    let mut tokens = Vec::new();
    let mut errors = Vec::new();
    loop {
        cur.bump_while(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
        let (start, pos) = (cur.at, cur.pos);
        let Some(c) = cur.peek() else {
            tokens.push(Token { kind: Kind::End, pos, shown: "end of rule".into() });
            return (tokens, errors);
        };
        let kind = match c {
            c if word_start(c) => {
                cur.bump_while(word_char);
                word(&src[start..cur.at])
            }
            c if c.is_ascii_digit() || (c == '-' && cur.peek2().is_some_and(|d| d.is_ascii_digit())) => {
                number(&mut cur, &mut errors)
            }
            '"' => text(&mut cur, &mut errors),
            '(' | ')' | '[' | ']' | ',' | '=' => {
                cur.bump();
                match c {
                    '(' => Kind::LParen,
                    ')' => Kind::RParen,
                    '[' => Kind::LBracket,
                    ']' => Kind::RBracket,
                    ',' => Kind::Comma,
                    _ => Kind::Op(CmpOp::Eq),
                }
            }
            '<' | '>' => {
                cur.bump();
                let eq = cur.peek() == Some('=');
                if eq {
                    cur.bump();
                }
                Kind::Op(match (c, eq) {
                    ('<', false) => CmpOp::Lt,
                    ('<', true) => CmpOp::Le,
                    (_, false) => CmpOp::Gt,
                    (_, true) => CmpOp::Ge,
                })
            }
            '!' if cur.peek2() == Some('=') => {
                cur.bump();
                cur.bump();
                Kind::Op(CmpOp::Ne)
            }
            _ => {
                // One message for a run of stray characters, not one each.
                cur.bump();
                cur.bump_while(|c| !c.is_whitespace() && !token_start(c));
                let run = &src[start..cur.at];
                let hint = match run {
                    "&&" | "&" => " — write AND",
                    "||" | "|" => " — write OR",
                    _ => "",
                };
                errors.push(RuleError::new(pos, format!("unexpected \"{}\"{hint}", shorten(run))));
                Kind::Bad
            }
        };
        tokens.push(Token { kind, pos, shown: shorten(&src[start..cur.at]) });
    }
}

fn word(text: &str) -> Kind {
    KEYWORDS
        .iter()
        .find(|(kw, _)| kw.eq_ignore_ascii_case(text))
        .map_or_else(|| Kind::Word(text.to_owned()), |(_, kw)| Kind::Keyword(*kw))
}

fn number(cur: &mut Cursor<'_>, errors: &mut Vec<RuleError>) -> Kind {
    let start = cur.at;
    cur.bump();
    cur.bump_while(|c| c.is_ascii_digit());
    if cur.peek() == Some('.') {
        cur.bump();
        if !cur.peek().is_some_and(|c| c.is_ascii_digit()) {
            let written = shorten(&cur.src[start..cur.at]);
            errors.push(RuleError::expected(cur.pos, "a digit", &format!("after \"{written}\""), &found_at(cur)));
            return Kind::Bad;
        }
        cur.bump_while(|c| c.is_ascii_digit());
    }
    // The text is digits by construction; parse cannot fail here.
    Number::parse(&cur.src[start..cur.at]).map_or(Kind::Bad, Kind::Number)
}

/// What is at the cursor, for a lexical "found".
fn found_at(cur: &Cursor<'_>) -> String {
    match cur.peek() {
        None => "end of rule".into(),
        Some('\n' | '\r') => "end of line".into(),
        Some(c) if c.is_whitespace() => "a space".into(),
        Some(c) => format!("\"{c}\""),
    }
}

/// A string: `\"` and `\\` are its only escapes; it ends on its line.
fn text(cur: &mut Cursor<'_>, errors: &mut Vec<RuleError>) -> Kind {
    let open = cur.pos;
    cur.bump();
    let mut value = String::new();
    let mut bad = false;
    loop {
        let here = cur.pos;
        match cur.peek() {
            Some('"') => {
                cur.bump();
                break;
            }
            None | Some('\n' | '\r') => {
                errors.push(RuleError::expected(
                    here,
                    "\"",
                    &format!("to close the string opened at {}:{}", open.line, open.column),
                    &found_at(cur),
                ));
                return Kind::Bad;
            }
            Some('\\') => {
                cur.bump();
                match cur.peek() {
                    Some(c @ ('"' | '\\')) => {
                        cur.bump();
                        value.push(c);
                    }
                    _ => {
                        let found = found_at(cur);
                        errors.push(RuleError::expected(here, "\\\" or \\\\", "after a backslash", &found));
                        bad = true;
                    }
                }
            }
            Some(c) => {
                cur.bump();
                value.push(c);
            }
        }
    }
    if bad { Kind::Bad } else { Kind::Text(value) }
}
