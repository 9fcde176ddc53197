//! The `labelSelector` string grammar, as upstream's `labels.Parse` lexes and parses it.
//!
//! ```text
//! selector    ::= requirement | requirement "," selector
//! requirement ::= ["!"] KEY [ ("in" | "notin") "(" values ")" | ("=" | "==" | "!=" | ">" | "<") VALUE ]
//! ```
//!
//! The lexer and the error texts follow upstream's closely, quirks included (a NUL byte ends
//! the input where a token may start; `in` and `notin` are values inside a value
//! position), because clients see these messages.

use std::collections::BTreeSet;

use super::label::{Operator, Requirement};
use super::names::label_key_errors;
use super::SelectorError;
use crate::field_error::{FieldError, FieldPath};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// The literal tokens; identifiers are everything else.
fn keyword(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    /// The next byte, 0 at the end; like upstream, a NUL byte also reads as 0.
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&c) => {
                self.pos += 1;
                c
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn id_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut end;
        loop {
            end = self.pos;
            let c = self.read();
            if c == 0 {
                break;
            }
            if is_special(c) || is_whitespace(c) {
                self.unread();
                break;
            }
        }
        let lit = &self.s[start..end];
        let text = String::from_utf8_lossy(lit).into_owned();
        (keyword(lit).unwrap_or(Token::Identifier), text)
    }

    /// Operators are one special character, or two when the pair is `!=` or `==`.
    fn special(&mut self) -> (Token, String) {
        let first = self.read();
        let mut lit = vec![first];
        let mut tok = keyword(&lit).unwrap_or(Token::EndOfString);
        let second = self.read();
        if second != 0 {
            lit.push(second);
            match keyword(&lit) {
                Some(t) if is_special(second) => {
                    tok = t;
                    // Upstream reads on after a pair, swallowing a NUL but nothing else.
                    if self.read() != 0 {
                        self.unread();
                    }
                }
                _ => {
                    self.unread();
                    lit.pop();
                }
            }
        }
        (tok, String::from_utf8_lossy(&lit).into_owned())
    }

    fn lex(&mut self) -> (Token, String) {
        let mut c = self.read();
        while is_whitespace(c) {
            c = self.read();
        }
        if c == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special(c) {
            self.special()
        } else {
            self.id_or_keyword()
        }
    }
}

/// In a value position the keywords `in` and `notin` are plain identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct Parser<'p> {
    items: Vec<(Token, String)>,
    position: usize,
    path: Option<&'p FieldPath>,
}

type ParseResult<T> = Result<T, SelectorError>;

fn syntax<T>(msg: String) -> ParseResult<T> {
    Err(SelectorError::Syntax(msg))
}

impl Parser<'_> {
    fn peek_at(&self, at: usize, ctx: Context) -> (Token, &str) {
        match self.items.get(at) {
            Some((tok, lit)) => {
                let tok = match (ctx, tok) {
                    (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
                    _ => *tok,
                };
                (tok, lit.as_str())
            }
            None => (Token::EndOfString, ""),
        }
    }

    fn lookahead(&self, ctx: Context) -> (Token, String) {
        let (t, l) = self.peek_at(self.position, ctx);
        (t, l.to_string())
    }

    fn consume(&mut self, ctx: Context) -> (Token, String) {
        let out = self.lookahead(ctx);
        self.position += 1;
        out
    }

    fn parse(&mut self) -> ParseResult<Vec<Requirement>> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Context::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self.requirement().map_err(|e| match e {
                        SelectorError::Syntax(m) => {
                            SelectorError::Syntax(format!("unable to parse requirement: {m}"))
                        }
                        SelectorError::InvalidRequirement(errs) => {
                            SelectorError::InvalidParsedRequirement(errs)
                        }
                        other => other,
                    })?;
                    reqs.push(r);
                    let (t, l) = self.consume(Context::Values);
                    match t {
                        Token::EndOfString => return Ok(reqs),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Context::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return syntax(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return syntax(format!("found '{l}', expected: ',' or 'end of string'"))
                        }
                    }
                }
                Token::EndOfString => return Ok(reqs),
                _ => {
                    return syntax(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ))
                }
            }
        }
    }

    fn requirement(&mut self) -> ParseResult<Requirement> {
        let (key, inferred) = self.key_and_inferred_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = inferred {
            return Requirement::new_at(&key, op, Vec::new(), self.path)
                .map_err(SelectorError::InvalidRequirement);
        }
        let op = self.operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.values()?,
            _ => self.exact_value()?,
        };
        Requirement::new_at(&key, op, values.into_iter().collect(), self.path)
            .map_err(SelectorError::InvalidRequirement)
    }

    /// The key, and `Exists`/`DoesNotExist` when no binary operator follows it (a `!key`
    /// followed by anything still yields `DoesNotExist`, leaving the rest to fail).
    fn key_and_inferred_operator(&mut self) -> ParseResult<(String, Option<Operator>)> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Context::Values);
        if tok == Token::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Context::Values);
        }
        if tok != Token::Identifier {
            return syntax(format!("found '{lit}', expected: identifier"));
        }
        let errs = label_key_errors(&lit);
        if !errs.is_empty() {
            let nil = FieldPath::new("<nil>");
            let path = self.path.unwrap_or(&nil);
            return Err(SelectorError::InvalidRequirement(vec![
                FieldError::invalid(path, lit.as_str(), &errs.join("; ")),
            ]));
        }
        let (next, _) = self.lookahead(Context::Values);
        if matches!(next, Token::EndOfString | Token::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((lit, op))
    }

    fn operator(&mut self) -> ParseResult<Operator> {
        let (tok, lit) = self.consume(Context::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return syntax(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ))
            }
        })
    }

    /// `(a,b,...)`: a sorted set; empty members (`()`, `(a,)`, `(,a)`) are the empty value.
    fn values(&mut self) -> ParseResult<BTreeSet<String>> {
        let (tok, lit) = self.consume(Context::Values);
        if tok != Token::OpenPar {
            return syntax(format!("found '{lit}' expected: '('"));
        }
        let (tok, lit) = self.lookahead(Context::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let set = self.identifiers()?;
                let (tok, _) = self.consume(Context::Values);
                if tok != Token::ClosedPar {
                    return syntax(format!("found '{lit}', expected: ')'"));
                }
                Ok(set)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => syntax(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn identifiers(&mut self) -> ParseResult<BTreeSet<String>> {
        let mut set = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Context::Values);
            match tok {
                Token::Identifier => {
                    set.insert(lit);
                    let (next, next_lit) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(set),
                        _ => return syntax(format!("found '{next_lit}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        set.insert(String::new());
                        return Ok(set);
                    }
                    if next == Token::Comma {
                        set.insert(String::new());
                    }
                }
                _ => return syntax(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
    }

    fn exact_value(&mut self) -> ParseResult<BTreeSet<String>> {
        let (tok, _) = self.lookahead(Context::Values);
        if matches!(tok, Token::EndOfString | Token::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (tok, lit) = self.consume(Context::Values);
        if tok == Token::Identifier {
            return Ok(BTreeSet::from([lit]));
        }
        syntax(format!("found '{lit}', expected: identifier"))
    }
}

/// Parses a selector string into its requirements, in the order written.
pub(super) fn parse(s: &str, path: Option<&FieldPath>) -> Result<Vec<Requirement>, SelectorError> {
    let mut lexer = Lexer {
        s: s.as_bytes(),
        pos: 0,
    };
    let mut items = Vec::new();
    loop {
        let item = lexer.lex();
        let end = item.0 == Token::EndOfString;
        items.push(item);
        if end {
            break;
        }
    }
    Parser {
        items,
        position: 0,
        path,
    }
    .parse()
}

#[cfg(test)]
mod tests {
    use crate::selector::LabelSelector;

    #[test]
    fn valid_selectors_render_canonically() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("   ", ""),
            ("x=a", "x=a"),
            ("x==a", "x==a"),
            ("x!=a", "x!=a"),
            ("x = a", "x=a"),
            ("\tx\t=\ta\n", "x=a"),
            ("x>1", "x>1"),
            ("x<1", "x<1"),
            ("x", "x"),
            ("!x", "!x"),
            (" ! x ", "!x"),
            ("x=", "x="),
            ("x=,y=b", "x=,y=b"),
            ("z=a,x=b,y", "x=b,y,z=a"),
            ("x in (a)", "x in (a)"),
            ("x in (b,a,b)", "x in (a,b)"),
            ("x in(a)", "x in (a)"),
            ("x notin (a, b)", "x notin (a,b)"),
            ("x in ()", "x in ()"),
            ("x in (,)", "x in ()"),
            ("x in (a,)", "x in (,a)"),
            ("x in (,a)", "x in (,a)"),
            ("x in (a,,b)", "x in (,a,b)"),
            ("x in (in,notin)", "x in (in,notin)"),
            ("in", "in"),
            ("notin=in", "notin=in"),
            ("x=in", "x=in"),
            (
                "x in (foo,,baz),y,z notin ()",
                "x in (,baz,foo),y,z notin ()",
            ),
            ("example.com/app=web", "example.com/app=web"),
            ("a=\0b", "a=b"),
        ];
        for (input, want) in cases {
            match LabelSelector::parse(input) {
                Ok(s) => assert_eq!(s.to_string(), *want, "input {input:?}"),
                Err(e) => panic!("{input:?}: {e}"),
            }
        }
    }

    #[test]
    fn invalid_selectors_fail_with_upstream_messages() {
        let key_err = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        let value_err = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
        let cases: Vec<(&str, String)> = vec![
            (",", "found ',', expected: !, identifier, or 'end of string'".into()),
            ("x=a,", "found '', expected: identifier after ','".into()),
            ("x=a,,y", "found ',', expected: identifier after ','".into()),
            ("x=a y=b", "found 'y', expected: ',' or 'end of string'".into()),
            ("x y", "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt".into()),
            ("x in a", "unable to parse requirement: found 'a' expected: '('".into()),
            ("x in (a", "unable to parse requirement: found '', expected: ',' or ')'".into()),
            ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'".into()),
            ("x in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier".into()),
            ("x in (,=)", "unable to parse requirement: found '=', expected: ',', or identifier".into()),
            ("x=(a)", "unable to parse requirement: found '(', expected: identifier".into()),
            ("!", "unable to parse requirement: found '', expected: identifier".into()),
            ("!=a", "found '!=', expected: !, identifier, or 'end of string'".into()),
            ("!x=a", "found '=', expected: ',' or 'end of string'".into()),
            // A NUL ends an identifier and is swallowed, so "c" becomes a new token.
            ("a=b\0c", "found 'c', expected: ',' or 'end of string'".into()),
            ("x=a)", "found ')', expected: ',' or 'end of string'".into()),
            ("x<=1", "unable to parse requirement: found '=', expected: identifier".into()),
            ("x=a=b", "found '=', expected: ',' or 'end of string'".into()),
            ("a$=b", format!("unable to parse requirement: <nil>: Invalid value: \"a$\": {key_err}")),
            ("x=a$", format!("unable to parse requirement: values[0][x]: Invalid value: \"a$\": {value_err}")),
            ("x>a", "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer".into()),
            ("x>-", format!("unable to parse requirement: [values[0]: Invalid value: \"-\": for 'Gt', 'Lt' operators, the value must be an integer, values[0][x]: Invalid value: \"-\": {value_err}]")),
            // Values are sorted before validation, so "-b" is values[0].
            ("x in (a,-b)", format!("unable to parse requirement: values[0][x]: Invalid value: \"-b\": {value_err}")),
        ];
        for (input, want) in cases {
            match LabelSelector::parse(input) {
                Ok(s) => panic!("{input:?} parsed as {s}"),
                Err(e) => assert_eq!(e.to_string(), want, "input {input:?}"),
            }
        }
    }

    #[test]
    fn long_values_and_keys_are_rejected() {
        let long = "a".repeat(64);
        assert!(LabelSelector::parse(&format!("x={long}")).is_err());
        assert!(LabelSelector::parse(&format!("{long}=x")).is_err());
        assert!(LabelSelector::parse(&format!("x={}", &long[1..])).is_ok());
    }

    #[test]
    fn no_input_panics() {
        let inputs = [
            "(",
            ")",
            "((",
            "x in",
            "x in (",
            "x notin (,",
            "!!",
            "!(",
            "==",
            "x==",
            "x!",
            "ü=ü",
            "\0",
            "x\0",
            "x in (\0",
            ",,",
            "x,",
            "x=\u{7f}",
        ];
        for i in inputs {
            let _ = LabelSelector::parse(i);
        }
    }
}
