//! Resource quantities as validation reads them: upstream's parser (`crate::quantity`),
//! reduced to a float that is exact enough to order requests and limits and check signs.

/// Upstream's parse error, which it reports for any malformed quantity.
pub(crate) const QUANTITY_FORMAT_ERROR: &str = crate::quantity::QuantityError::FORMAT_WRONG;

/// A parsed quantity as a float, or `None` when upstream would refuse it.
pub(crate) fn parse(s: &str) -> Option<f64> {
    crate::quantity::Quantity::parse(s).ok().map(|q| q.to_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_forms() {
        let cases: &[(&str, Option<f64>)] = &[
            ("1", Some(1.0)),
            ("500m", Some(0.5)),
            ("1Gi", Some(1073741824.0)),
            ("1.5k", Some(1500.0)),
            ("1e3", Some(1000.0)),
            ("-2", Some(-2.0)),
            (".5", Some(0.5)),
            ("", None),
            ("abc", None),
            ("1..2", None),
            ("1X", None),
            ("1e", None),
            ("1Gib", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s), *want, "{s}");
        }
    }
}
