//! Label selectors: an AND of requirements on an object's labels, as upstream's
//! `labels.Selector`.
//!
//! A selector comes from the `labelSelector` query parameter ([`LabelSelector::parse`]) or
//! from a typed `metav1.LabelSelector` in a spec ([`LabelSelector::from_typed`]). Upstream
//! distinguishes the empty selector, which matches everything, from the "nothing" selector
//! a nil typed selector becomes, which matches no object; so does this type.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::Value;

use super::names::{label_key_errors, label_value_errors};
use super::{label_parse, Lookup, SelectorError};
use crate::field_error::{ErrorList, FieldError, FieldPath};

/// How a requirement relates its key to its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `key in (a,b)`: the label is present with one of the values.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key=a`.
    Equals,
    /// `key==a`, the same as `=` but remembered for the string form.
    DoubleEquals,
    /// `key!=a`: the label is absent or has another value.
    NotEquals,
    /// `key`.
    Exists,
    /// `!key`.
    DoesNotExist,
    /// `key>5`: the label is present and, as an integer, greater.
    GreaterThan,
    /// `key<5`.
    LessThan,
}

impl Operator {
    /// Upstream's `selection.Operator` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One condition on one label key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Upstream's `NewRequirement` without a path: validates the key, the number of
    /// values for the operator, and each value.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, ErrorList> {
        Self::new_at(key, operator, values, None)
    }

    /// [`new`](Self::new) with errors reported under `path` (`path.key`, `path.values[0]`).
    pub fn new_at(
        key: &str,
        operator: Operator,
        values: Vec<String>,
        path: Option<&FieldPath>,
    ) -> Result<Self, ErrorList> {
        let child = |name: &str| match path {
            Some(p) => p.child(name),
            None => FieldPath::new(name),
        };
        let mut errs = ErrorList::new();
        let key_errs = label_key_errors(key);
        if !key_errs.is_empty() {
            errs.push(FieldError::invalid(
                &child("key"),
                key,
                &key_errs.join("; "),
            ));
        }
        let values_path = child("values");
        let all_values = || Value::from(values.clone());
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(FieldError::invalid(
                &values_path,
                all_values(),
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errs.push(FieldError::invalid(
                    &values_path,
                    all_values(),
                    "exact-match compatibility requires one single value",
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errs.push(FieldError::invalid(
                    &values_path,
                    all_values(),
                    "values set must be empty for exists and does not exist",
                ))
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(FieldError::invalid(
                        &values_path,
                        all_values(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            &values_path.index(i),
                            v.as_str(),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = label_value_errors(v);
            if !value_errs.is_empty() {
                errs.push(FieldError::invalid(
                    &values_path.index(i).key(key),
                    v.as_str(),
                    &value_errs.join("; "),
                ));
            }
        }
        if errs.is_empty() {
            Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            })
        } else {
            Err(errs)
        }
    }

    /// A requirement without validation, for keys and values already known to be valid
    /// (upstream's `SelectorFromValidatedSet`).
    pub fn new_unchecked(key: &str, operator: Operator, values: Vec<String>) -> Self {
        Requirement {
            key: key.to_string(),
            operator,
            values,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values in the order given; the string form sorts them.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Whether `labels` satisfy this requirement.
    pub fn matches<L: Lookup + ?Sized>(&self, labels: &L) -> bool {
        let found = labels.lookup(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                found.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => found.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => found.is_some(),
            Operator::DoesNotExist => found.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), [want]) = (found, self.values.as_slice()) else {
                    return false;
                };
                match (have.parse::<i64>(), want.parse::<i64>()) {
                    (Ok(have), Ok(want)) if self.operator == Operator::GreaterThan => have > want,
                    (Ok(have), Ok(want)) => have < want,
                    _ => false,
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        // Upstream sorts the values for output only, keeping duplicates.
        let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        f.write_str(&sorted.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// An AND of [`Requirement`]s, kept sorted by key as upstream keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// Upstream's `labels.Nothing()`: matches no object whatever its labels.
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every object (an empty query parameter or `{}`).
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The selector that matches no object (a nil typed selector).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the `labelSelector` syntax, as upstream's `labels.Parse`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        Self::parse_at(s, None)
    }

    /// [`parse`](Self::parse) with field errors reported under `path`.
    pub fn parse_at(s: &str, path: Option<&FieldPath>) -> Result<Self, SelectorError> {
        let mut requirements = label_parse::parse(s, path)?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Upstream's `LabelSelectorAsSelector`: `None` selects nothing, an empty selector
    /// everything; `matchLabels` become `=` requirements and `matchExpressions` their
    /// operators, each validated as `NewRequirement` does.
    pub fn from_typed(selector: Option<&metav1::LabelSelector>) -> Result<Self, SelectorError> {
        let Some(sel) = selector else {
            return Ok(Self::nothing());
        };
        let labels = sel.match_labels.as_ref();
        let exprs = sel.match_expressions.as_deref().unwrap_or_default();
        let mut out = Self::everything();
        for (k, v) in labels.into_iter().flatten() {
            let r = Requirement::new(k, Operator::Equals, vec![v.clone()])
                .map_err(SelectorError::InvalidRequirement)?;
            out.requirements.push(r);
        }
        for expr in exprs {
            let op = match expr.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::Syntax(format!(
                        "{other:?} is not a valid pod selector operator"
                    )))
                }
            };
            let values = expr.values.clone().unwrap_or_default();
            let r = Requirement::new(&expr.key, op, values)
                .map_err(SelectorError::InvalidRequirement)?;
            out.requirements.push(r);
        }
        out.requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// A selector requiring exactly these labels, without validating them (upstream's
    /// `SelectorFromSet`); an empty set selects everything.
    pub fn from_set(set: &BTreeMap<String, String>) -> Self {
        LabelSelector {
            requirements: set
                .iter()
                .map(|(k, v)| Requirement::new_unchecked(k, Operator::Equals, vec![v.clone()]))
                .collect(),
            nothing: false,
        }
    }

    /// [`from_set`](Self::from_set) with each key and value validated (upstream's
    /// `ValidatedSelectorFromSet`).
    pub fn validated_from_set(set: &BTreeMap<String, String>) -> Result<Self, SelectorError> {
        let mut out = Self::everything();
        for (k, v) in set {
            let r = Requirement::new(k, Operator::Equals, vec![v.clone()])
                .map_err(SelectorError::InvalidRequirement)?;
            out.requirements.push(r);
        }
        Ok(out)
    }

    /// Adds requirements, keeping them sorted by key. Adding to the nothing selector
    /// leaves it matching nothing, as upstream.
    pub fn with_requirements(mut self, reqs: impl IntoIterator<Item = Requirement>) -> Self {
        if self.nothing {
            return self;
        }
        self.requirements.extend(reqs);
        self.requirements.sort_by(|a, b| a.key.cmp(&b.key));
        self
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether this selector restricts nothing (upstream's `Empty`); false for
    /// [`nothing`](Self::nothing).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether this is the selector that matches no object.
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    /// Whether an object with these labels is selected.
    pub fn matches<L: Lookup + ?Sized>(&self, labels: &L) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether an object (its JSON form) is selected by its `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(&obj.pointer("/metadata/labels"))
    }

    /// The single value the selector requires `label` to have, if it does (upstream's
    /// `RequiresExactMatch`): the first requirement on that key decides.
    pub fn requires_exact_match(&self, label: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == label)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [one]) => Some(one),
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
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

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Upstream's `FormatLabelSelector`, as table printers show selectors: the string form,
/// `<none>` when it is empty (or nil), `<error>` when the selector is invalid.
pub fn format_label_selector(selector: Option<&metav1::LabelSelector>) -> String {
    match LabelSelector::from_typed(selector) {
        Ok(s) if s.requirements.is_empty() => "<none>".to_string(),
        Ok(s) => s.to_string(),
        Err(_) => "<error>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requirements_match_like_upstream() {
        let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5"), ("bad", "x")]);
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=web", true),
            ("app in (web,db)", true),
            ("app in (db)", false),
            ("missing in (db)", false),
            ("app notin (db)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("n>4", true),
            ("n>5", false),
            ("n<6", true),
            ("n<5", false),
            ("missing>1", false),
            ("bad>1", false),
            ("bad<1", false),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            ("app=,tier=front", false),
            ("missing=", false),
            ("missing in ()", false),
        ];
        for (sel, want) in cases {
            let s = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
            assert_eq!(s.matches(&l), *want, "selector {sel:?}");
        }
    }

    #[test]
    fn empty_label_value_matches_in_with_empty_member() {
        let l = labels(&[("a", "")]);
        assert!(LabelSelector::parse("a in ()")
            .map(|s| s.matches(&l))
            .unwrap_or(false));
        assert!(LabelSelector::parse("a=")
            .map(|s| s.matches(&l))
            .unwrap_or(false));
    }

    #[test]
    fn nothing_and_everything_differ() {
        let l = labels(&[("a", "b")]);
        assert!(LabelSelector::everything().matches(&l));
        assert!(LabelSelector::everything().is_empty());
        assert!(!LabelSelector::nothing().matches(&l));
        assert!(!LabelSelector::nothing().matches(&BTreeMap::new()));
        assert!(!LabelSelector::nothing().is_empty());
        assert!(LabelSelector::nothing().matches_nothing());
        assert_eq!(LabelSelector::nothing().to_string(), "");
        let r = Requirement::new_unchecked("a", Operator::Exists, vec![]);
        assert!(!LabelSelector::nothing().with_requirements([r]).matches(&l));
    }

    /// A `matchExpressions` entry: key, operator, values.
    type Expr<'a> = (&'a str, &'a str, Option<Vec<&'a str>>);
    /// The selector's string form and whether it matches, or the error text.
    type Outcome<'a> = Result<(&'a str, bool), &'a str>;

    #[test]
    fn typed_selectors_convert_like_upstream() {
        let typed =
            |labels: Option<&[(&str, &str)]>, exprs: Option<Vec<Expr>>| metav1::LabelSelector {
                match_labels: labels.map(|l| {
                    l.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                }),
                match_expressions: exprs.map(|es| {
                    es.into_iter()
                        .map(|(k, op, vs)| metav1::LabelSelectorRequirement {
                            key: k.to_string(),
                            operator: op.to_string(),
                            values: vs.map(|v| v.iter().map(|s| s.to_string()).collect()),
                        })
                        .collect()
                }),
            };
        let l = labels(&[("app", "web"), ("env", "prod")]);
        let cases: Vec<(metav1::LabelSelector, Outcome)> = vec![
            (typed(None, None), Ok(("", true))),
            (typed(Some(&[]), Some(vec![])), Ok(("", true))),
            (typed(Some(&[("app", "web")]), None), Ok(("app=web", true))),
            (
                typed(
                    Some(&[("env", "prod")]),
                    Some(vec![("app", "In", Some(vec!["web", "db"]))]),
                ),
                Ok(("app in (db,web),env=prod", true)),
            ),
            (
                typed(None, Some(vec![("app", "NotIn", Some(vec!["web"]))])),
                Ok(("app notin (web)", false)),
            ),
            (
                typed(None, Some(vec![("x", "DoesNotExist", None)])),
                Ok(("!x", true)),
            ),
            (
                typed(None, Some(vec![("app", "Exists", Some(vec![]))])),
                Ok(("app", true)),
            ),
            (
                typed(None, Some(vec![("app", "In", None)])),
                Err("values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"),
            ),
            (
                typed(None, Some(vec![("app", "Exists", Some(vec!["a"]))])),
                Err("values: Invalid value: [\"a\"]: values set must be empty for exists and does not exist"),
            ),
            (
                typed(None, Some(vec![("app", "Gt", Some(vec!["1"]))])),
                Err("\"Gt\" is not a valid pod selector operator"),
            ),
            (
                typed(Some(&[("app", "a b")]), None),
                Err("values[0][app]: Invalid value: \"a b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
            ),
        ];
        for (sel, want) in cases {
            let got = LabelSelector::from_typed(Some(&sel));
            match (got, want) {
                (Ok(s), Ok((text, matches))) => {
                    assert_eq!(s.to_string(), text);
                    assert_eq!(s.matches(&l), matches, "{text}");
                }
                (Err(e), Err(msg)) => assert_eq!(e.to_string(), msg),
                (got, want) => panic!("{sel:?}: got {got:?}, want {want:?}"),
            }
        }
        let none = LabelSelector::from_typed(None).ok();
        assert_eq!(none, Some(LabelSelector::nothing()));
    }

    #[test]
    fn selectors_format_for_tables() {
        let typed = |k: &str, v: &str| metav1::LabelSelector {
            match_labels: Some([(k.to_string(), v.to_string())].into()),
            match_expressions: None,
        };
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(
            format_label_selector(Some(&metav1::LabelSelector::default())),
            "<none>"
        );
        assert_eq!(format_label_selector(Some(&typed("app", "web"))), "app=web");
        assert_eq!(format_label_selector(Some(&typed("app", "a b"))), "<error>");
    }

    #[test]
    fn requirement_validation_reports_every_problem() {
        let errs = Requirement::new("a$", Operator::GreaterThan, vec!["x".into(), "2".into()])
            .err()
            .unwrap_or_default();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["key", "values", "values[0]"]);
        let p = FieldPath::new("spec").child("selector");
        let errs = Requirement::new_at("a", Operator::Equals, vec!["-".into()], Some(&p))
            .err()
            .unwrap_or_default();
        assert_eq!(errs[0].field.as_str(), "spec.selector.values[0][a]");
    }

    #[test]
    fn exact_match_is_found_for_single_valued_requirements() {
        let s = LabelSelector::parse("a=1,b in (2),c in (3,4),d!=5,e").ok();
        let s = s.unwrap_or_default();
        assert_eq!(s.requires_exact_match("a"), Some("1"));
        assert_eq!(s.requires_exact_match("b"), Some("2"));
        assert_eq!(s.requires_exact_match("c"), None);
        assert_eq!(s.requires_exact_match("d"), None);
        assert_eq!(s.requires_exact_match("e"), None);
        assert_eq!(s.requires_exact_match("z"), None);
    }

    #[test]
    fn objects_are_matched_by_metadata_labels() {
        let obj = serde_json::json!({"metadata": {"labels": {"app": "web"}}});
        let bare = serde_json::json!({"metadata": {}});
        let s = LabelSelector::parse("app=web").unwrap_or_default();
        assert!(s.matches_object(&obj));
        assert!(!s.matches_object(&bare));
        let neg = LabelSelector::parse("!app").unwrap_or_default();
        assert!(neg.matches_object(&bare));
    }
}
