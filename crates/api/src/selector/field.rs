//! Field selectors: an AND of `field=value` / `field!=value` terms, as upstream's
//! `fields.Selector` parsed by `fields.ParseSelector`.
//!
//! Values may escape `\`, `,` and `=` with a backslash; the field name cannot be escaped,
//! so the first operator in a term splits it. Terms are sorted as strings before parsing,
//! as upstream sorts them, which fixes both the string form and which error is reported.

use std::collections::BTreeMap;
use std::fmt;

use super::{Lookup, SelectorError};

/// `=` (also written `==`) or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    Equals,
    NotEquals,
}

/// One term: the field's value (the empty string when the object has no such field)
/// must or must not equal `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    /// Whether the fields satisfy this term; a missing field counts as empty.
    pub fn matches<F: Lookup + ?Sized>(&self, fields: &F) -> bool {
        let have = fields.lookup(&self.field).unwrap_or("");
        match self.operator {
            FieldOperator::Equals => have == self.value,
            FieldOperator::NotEquals => have != self.value,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_value(&self.value))
    }
}

/// An AND of field terms; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// A selector for one `field=value` term (upstream's `OneTermEqualSelector`).
    pub fn one_term_equal(field: &str, value: &str) -> Self {
        FieldSelector {
            requirements: vec![FieldRequirement {
                field: field.to_string(),
                operator: FieldOperator::Equals,
                value: value.to_string(),
            }],
        }
    }

    /// A selector requiring exactly these field values (upstream's `SelectorFromSet`).
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        FieldSelector {
            requirements: set
                .iter()
                .map(|(k, v)| FieldRequirement {
                    field: k.clone(),
                    operator: FieldOperator::Equals,
                    value: v.clone(),
                })
                .collect(),
        }
    }

    /// Parses the `fieldSelector` syntax, as upstream's `fields.ParseSelector`.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut terms = split_terms(selector);
        terms.sort_unstable();
        let mut requirements = Vec::new();
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let Some((field, operator, raw)) = split_term(term) else {
                return Err(SelectorError::Syntax(format!(
                    "invalid selector: '{selector}'; can't understand '{term}'"
                )));
            };
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value: unescape_value(raw)?,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// The terms, in the (sorted) order parsed.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether this selector restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these field values is selected. Build the values with
    /// [`field_set`](super::field_set).
    pub fn matches<F: Lookup + ?Sized>(&self, fields: &F) -> bool {
        self.requirements.iter().all(|r| r.matches(fields))
    }

    /// Whether the values `get` returns are selected; `None` counts as empty.
    pub fn matches_fn(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let have = get(&r.field).unwrap_or_default();
            match r.operator {
                FieldOperator::Equals => have == r.value,
                FieldOperator::NotEquals => have != r.value,
            }
        })
    }

    /// The value an `=` term requires `field` to have (upstream's `RequiresExactMatch`):
    /// the first such term decides. Lets a list by `metadata.name` become a get.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == FieldOperator::Equals)
            .map(|r| r.value.as_str())
    }

    /// Rewrites every term through `f` (upstream's `Transform`); a term both of whose
    /// field and value come back empty is dropped.
    pub fn transform<E>(
        &self,
        mut f: impl FnMut(&str, &str) -> Result<(String, String), E>,
    ) -> Result<Self, E> {
        let mut requirements = Vec::with_capacity(self.requirements.len());
        for r in &self.requirements {
            let (field, value) = f(&r.field, &r.value)?;
            if field.is_empty() && value.is_empty() {
                continue;
            }
            requirements.push(FieldRequirement {
                field,
                operator: r.operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Upstream's `EscapeValue`: backslash-escapes `\`, `,` and `=`.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Upstream's `UnescapeValue`: undoes [`escape_value`], rejecting any other escape and
/// any unescaped `,` or `=`.
pub fn unescape_value(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::Syntax(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                )));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Upstream prints the rune with %v, i.e. as its code point number.
            ',' | '=' => {
                return Err(SelectorError::Syntax(format!(
                    "invalid field selector: unescaped character in value: {}",
                    u32::from(c)
                )))
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::Syntax(
            "invalid field selector: invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}

/// Splits on commas not escaped by a backslash, keeping the escapes in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at its first operator, trying `!=`, then `==`, then `=` at each position.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, len, kind) in [
            ("!=", 2, FieldOperator::NotEquals),
            ("==", 2, FieldOperator::Equals),
            ("=", 1, FieldOperator::Equals),
        ] {
            if rest.starts_with(op) {
                return Some((&term[..i], kind, &rest[len..]));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_render_like_upstream() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            (",", ""),
            ("a=b", "a=b"),
            ("a==b", "a=b"),
            ("a!=b", "a!=b"),
            ("a=", "a="),
            ("=b", "=b"),
            ("b=1,a=2", "a=2,b=1"),
            ("a=b,,c=d", "a=b,c=d"),
            ("x=a\\,b", "x=a\\,b"),
            ("x=a\\=b", "x=a\\=b"),
            ("x=a\\\\b", "x=a\\\\b"),
            ("x=a!b", "x=a!b"),
            ("a!b=c", "a!b=c"),
            (
                "metadata.name=foo,spec.nodeName!=",
                "metadata.name=foo,spec.nodeName!=",
            ),
            ("a b=c d", "a b=c d"),
        ];
        for (input, want) in cases {
            match FieldSelector::parse(input) {
                Ok(s) => assert_eq!(s.to_string(), *want, "input {input:?}"),
                Err(e) => panic!("{input:?}: {e}"),
            }
        }
        let s = FieldSelector::parse("x=a\\,b\\=c\\\\").unwrap_or_default();
        assert_eq!(s.requirements()[0].value, "a,b=c\\");
    }

    #[test]
    fn bad_selectors_fail_with_upstream_messages() {
        let cases: &[(&str, &str)] = &[
            ("a", "invalid selector: 'a'; can't understand 'a'"),
            ("b=c,a", "invalid selector: 'b=c,a'; can't understand 'a'"),
            (
                "a=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
            ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
            (
                "a=b\\c",
                "invalid field selector: invalid escape sequence: \\c",
            ),
            (
                "a=b\\",
                "invalid field selector: invalid escape sequence: \\",
            ),
            (
                "a=!=b",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "a===b",
                "invalid field selector: unescaped character in value: 61",
            ),
        ];
        for (input, want) in cases {
            match FieldSelector::parse(input) {
                Ok(s) => panic!("{input:?} parsed as {s}"),
                Err(e) => assert_eq!(e.to_string(), *want, "input {input:?}"),
            }
        }
    }

    #[test]
    fn terms_match_with_missing_fields_as_empty() {
        let fields: BTreeMap<String, String> = [("metadata.name", "foo"), ("status.phase", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("metadata.name=foo", true),
            ("metadata.name==foo", true),
            ("metadata.name=bar", false),
            ("metadata.name!=bar", true),
            ("metadata.name!=foo", false),
            ("status.phase=", true),
            ("missing=", true),
            ("missing!=", false),
            ("missing!=x", true),
            ("missing=x", false),
            ("metadata.name=foo,missing=x", false),
        ];
        for (sel, want) in cases {
            let s = FieldSelector::parse(sel).unwrap_or_default();
            assert_eq!(s.matches(&fields), *want, "{sel}");
            let get = |k: &str| fields.get(k).cloned();
            assert_eq!(s.matches_fn(&get), *want, "{sel} via fn");
        }
    }

    #[test]
    fn escaping_round_trips() {
        for v in ["", "a", "a,b", "a=b", "a\\b", "\\,=", "ü,ß"] {
            let escaped = escape_value(v);
            assert_eq!(unescape_value(&escaped).ok().as_deref(), Some(v));
            let s = FieldSelector::one_term_equal("f", v);
            let again = FieldSelector::parse(&s.to_string()).unwrap_or_default();
            assert_eq!(again, s, "{v}");
        }
    }

    #[test]
    fn exact_match_and_transform_follow_upstream() {
        let s = FieldSelector::parse("metadata.name!=a,metadata.name=b,x=c").unwrap_or_default();
        assert_eq!(s.requires_exact_match("metadata.name"), Some("b"));
        assert_eq!(s.requires_exact_match("y"), None);
        let t: Result<FieldSelector, ()> = s.transform(|f, v| {
            if f == "x" {
                Ok((String::new(), String::new()))
            } else {
                Ok((f.to_uppercase(), v.to_string()))
            }
        });
        assert_eq!(
            t.map(|t| t.to_string()).ok().as_deref(),
            Some("METADATA.NAME!=a,METADATA.NAME=b")
        );
    }
}
