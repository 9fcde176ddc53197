//! Resource quantities (`500m`, `1Gi`, `1e3`), as upstream's `resource.Quantity`.
//!
//! Parsing follows upstream's scanner and its two paths: a small value is kept as given
//! and, when the input is already in a canonical-looking form, the input string itself is
//! what [`Display`](std::fmt::Display) gives back (so `+1`, `05` and `1.234k` round-trip
//! unchanged, as they do upstream); anything else is held exactly, rounded up to
//! nanounits, binary values capped at 2^63-1, and printed in canonical form: no fraction,
//! the largest suffix of the parsed format (`1000m` → `1`, `1024Mi` → `1Gi`,
//! `0.5` → `500m`, `1.5Gi` → `1536Mi`).
//!
//! One deliberate difference: a decimal-SI value beyond the `E` suffix (10^21 and up)
//! prints in exponent form (`1e21`) instead of v1.33's magnitude-dropping `1`, as upstream
//! has since fixed it.

mod decimal;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use decimal::Decimal;

/// The suffix family a quantity was written in, and is printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// `12e6`.
    DecimalExponent,
    /// `12Mi` (12 × 2^20).
    BinarySI,
    /// `12M` (12 × 10^6).
    #[default]
    DecimalSI,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::DecimalExponent => "DecimalExponent",
            Format::BinarySI => "BinarySI",
            Format::DecimalSI => "DecimalSI",
        }
    }
}

/// Why a string is not a quantity; the texts are upstream's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("{}", QuantityError::FORMAT_WRONG)]
    FormatWrong,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

impl QuantityError {
    /// The text of [`QuantityError::FormatWrong`], which validation reports as a detail.
    pub const FORMAT_WRONG: &'static str =
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
}

/// An exact fixed-point number with the format it was written in.
///
/// Equality, ordering and hashing are by value: `1Ki == 1024`.
#[derive(Debug, Clone, Default)]
pub struct Quantity {
    negative: bool,
    magnitude: Decimal,
    format: Format,
    /// The input, when upstream would keep and re-emit it.
    original: Option<String>,
}

/// The most significant digits the fast path accepts for decimal formats.
const MAX_INT64_FACTORS: i64 = 18;
/// Upstream caps binary-SI quantities at the largest int64.
const MAX_BINARY: u128 = i64::MAX as u128;

/// The pieces upstream's scanner finds: sign, the numeric prefix, the integer digits
/// without leading zeros ("0" when none), the fraction digits, and the suffix.
struct Scanned<'a> {
    positive: bool,
    value: &'a str,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

fn scan(s: &str) -> Result<Scanned<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    let mut out = Scanned {
        positive,
        value: "0",
        num: "0",
        denom: "",
        suffix: "",
    };
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(out);
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos >= end {
        out.num = &s[num_start..];
        out.value = s;
        return Ok(out);
    }
    if pos > num_start {
        out.num = &s[num_start..pos];
    }
    if b[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        out.denom = &s[denom_start..pos];
        if pos >= end {
            out.value = s;
            return Ok(out);
        }
    }
    out.value = &s[..pos];
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && matches!(b[pos], b'-' | b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    out.suffix = &s[suffix_start..];
    Ok(out)
}

/// A suffix's base, exponent and format.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    let dec = |e| Some((10, e, Format::DecimalSI));
    let bin = |e| Some((2, e, Format::BinarySI));
    match suffix {
        "" => dec(0),
        "n" => dec(-9),
        "u" => dec(-6),
        "m" => dec(-3),
        "k" => dec(3),
        "M" => dec(6),
        "G" => dec(9),
        "T" => dec(12),
        "P" => dec(15),
        "E" => dec(18),
        "Ki" => bin(10),
        "Mi" => bin(20),
        "Gi" => bin(30),
        "Ti" => bin(40),
        "Pi" => bin(50),
        "Ei" => bin(60),
        _ => {
            let rest = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))?;
            if rest.is_empty() {
                return None;
            }
            // Upstream parses an int64 and truncates it to int32.
            let e = rest.parse::<i64>().ok()? as i32;
            Some((10, e, Format::DecimalExponent))
        }
    }
}

/// Upstream's `inf.Dec` scan of the numeric prefix: sign, digits, at most one point, at
/// least one digit.
fn parse_number(value: &str) -> Result<Decimal, QuantityError> {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits_only = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    if int.len() + frac.len() == 0 || !digits_only(int) || !digits_only(frac) {
        return Err(QuantityError::Numeric);
    }
    Ok(Decimal::from_parts(int, frac))
}

impl Quantity {
    /// Parses a quantity as upstream's `ParseQuantity` (no surrounding whitespace).
    pub fn parse(s: &str) -> Result<Self, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if s == "0" {
            return Ok(Quantity {
                original: Some(s.to_string()),
                ..Quantity::default()
            });
        }
        let sc = scan(s)?;
        let (base, exponent, format) = interpret(sc.suffix).ok_or(QuantityError::Suffix)?;
        if let Some(q) = Self::fast_path(s, &sc, exponent, format) {
            return Ok(q);
        }
        let mut magnitude = parse_number(sc.value)?;
        magnitude = if base == 10 {
            magnitude.scale10(i64::from(exponent))
        } else {
            magnitude.mul_small(1u64 << exponent.clamp(0, 63))
        };
        // Upstream rounds any non-zero amount up to a whole nanounit, so that a tiny
        // request still gets something.
        magnitude = magnitude.round_up(-9);
        let mut format = format;
        if format == Format::BinarySI {
            let cap = Decimal::from_u128(MAX_BINARY);
            if magnitude > cap {
                magnitude = cap;
            }
            // Below one unit a binary suffix cannot show the value.
            if !magnitude.is_zero() && magnitude < Decimal::from_u128(1) {
                format = Format::DecimalSI;
            }
        }
        Ok(Quantity {
            negative: !sc.positive && !magnitude.is_zero(),
            magnitude,
            format,
            original: None,
        })
    }

    /// Upstream's int64 fast path, which alone may keep the input string.
    fn fast_path(s: &str, sc: &Scanned<'_>, exponent: i32, format: Format) -> Option<Quantity> {
        let digits = i64::try_from(sc.num.len() + sc.denom.len()).ok()?;
        let (mut scale, precision, mantissa): (i64, i64, i64) = match format {
            Format::BinarySI if sc.denom.is_empty() => {
                let e = i64::from(exponent);
                (
                    0,
                    14 - digits - e * 3 / 10,
                    1i64.checked_shl(exponent.try_into().ok()?)?,
                )
            }
            Format::BinarySI => return None,
            _ => (i64::from(exponent), MAX_INT64_FACTORS - digits, 1),
        };
        if precision < 0 {
            return None;
        }
        scale -= i64::try_from(sc.denom.len()).ok()?;
        if scale < -9 {
            return None;
        }
        let shifted = format!("{}{}", sc.num, sc.denom);
        let value: i64 = shifted.parse().ok()?;
        let result = value.checked_mul(mantissa)?;
        let keep = match format {
            Format::BinarySI => value & 0x07 != 0,
            _ => scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0'),
        };
        let magnitude = Decimal::from_u128(u128::from(result.unsigned_abs())).scale10(scale);
        Some(Quantity {
            negative: !sc.positive && !magnitude.is_zero(),
            magnitude,
            format,
            original: keep.then(|| s.to_string()),
        })
    }

    /// `value` in `format` (upstream's `NewQuantity`).
    pub fn from_i64(value: i64, format: Format) -> Self {
        Self::from_scaled(value, 0, format)
    }

    /// `value / 1000` in `format` (upstream's `NewMilliQuantity`).
    pub fn from_milli(value: i64, format: Format) -> Self {
        Self::from_scaled(value, -3, format)
    }

    /// `value × 10^scale` in `format`.
    pub fn from_scaled(value: i64, scale: i32, format: Format) -> Self {
        let magnitude =
            Decimal::from_u128(u128::from(value.unsigned_abs())).scale10(i64::from(scale));
        Quantity {
            negative: value < 0,
            magnitude,
            format,
            original: None,
        }
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.magnitude.is_zero()
    }

    /// -1, 0 or 1.
    pub fn sign(&self) -> i32 {
        match (self.is_zero(), self.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        }
    }

    /// `ceil(self × 10^scale)`, rounding away from zero, saturating at the int64 range
    /// (upstream's `ScaledValue` with the scale negated: `scaled_value(3)` is milli).
    pub fn scaled_value(&self, scale: i32) -> i64 {
        let limit = if self.negative {
            i64::MIN.unsigned_abs()
        } else {
            i64::MAX.unsigned_abs()
        };
        let magnitude = self
            .magnitude
            .ceil_scaled(i64::from(scale))
            .map_or(limit, |m| u64::try_from(m).unwrap_or(limit).min(limit));
        if self.negative {
            0i64.checked_sub_unsigned(magnitude).unwrap_or(i64::MIN)
        } else {
            i64::try_from(magnitude).unwrap_or(i64::MAX)
        }
    }

    /// The value rounded up (away from zero) to an integer, as upstream's `Value`.
    pub fn value(&self) -> i64 {
        self.scaled_value(0)
    }

    /// The value in thousandths rounded up, as upstream's `MilliValue`.
    pub fn milli_value(&self) -> i64 {
        self.scaled_value(3)
    }

    /// The exact value when it is an integer that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        let m = self.magnitude.to_u128()?;
        if self.negative {
            0i64.checked_sub_unsigned(u64::try_from(m).ok()?)
        } else {
            i64::try_from(m).ok()
        }
    }

    /// A floating-point approximation (upstream's `AsApproximateFloat64`).
    pub fn to_f64(&self) -> f64 {
        let v = self.magnitude.to_f64();
        if self.negative {
            -v
        } else {
            v
        }
    }

    /// `self + other` (upstream's `Add`): the format stays this one's unless this is zero.
    /// `None` only when the two exponents are so far apart (beyond thousands of digits)
    /// that the exact sum is not worth spelling out.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        let (negative, magnitude) = if self.negative == other.negative {
            (self.negative, self.magnitude.checked_add(&other.magnitude)?)
        } else if self.magnitude >= other.magnitude {
            (self.negative, self.magnitude.checked_sub(&other.magnitude)?)
        } else {
            (
                other.negative,
                other.magnitude.checked_sub(&self.magnitude)?,
            )
        };
        Some(Quantity {
            negative: negative && !magnitude.is_zero(),
            magnitude,
            format,
            original: None,
        })
    }

    /// `self - other` (upstream's `Sub`), as [`checked_add`](Self::checked_add).
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        let mut sum = self.checked_add(&other.negated())?;
        if self.is_zero() {
            sum.format = other.format;
        }
        Some(sum)
    }

    /// `-self` (upstream's `Neg`).
    pub fn negated(&self) -> Quantity {
        Quantity {
            negative: !self.negative && !self.is_zero(),
            magnitude: self.magnitude.clone(),
            format: self.format,
            original: None,
        }
    }

    /// The canonical form, ignoring a kept input string (upstream's `CanonicalizeBytes`).
    pub fn canonical(&self) -> String {
        if self.is_zero() {
            return "0".to_string();
        }
        let sign = if self.negative { "-" } else { "" };
        if self.format == Format::BinarySI {
            if let Some(s) = self.canonical_binary() {
                return format!("{sign}{s}");
            }
        }
        let (number, exponent) = self.canonical_decimal();
        let suffix = match (self.format, exponent) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        format!("{sign}{number}{suffix}")
    }

    /// Digits and a power of ten that is a multiple of three, lowered as needed.
    fn canonical_decimal(&self) -> (String, i64) {
        let e = self.magnitude.exponent();
        let e3 = e.div_euclid(3) * 3;
        let zeros = usize::try_from(e - e3).unwrap_or(0);
        (
            format!("{}{}", self.magnitude.digit_string(), "0".repeat(zeros)),
            e3,
        )
    }

    /// `n × 1024^k` for integers of magnitude at least 1024; `None` when upstream would
    /// fall back to decimal-SI (small or fractional values).
    fn canonical_binary(&self) -> Option<String> {
        let mut n = self.magnitude.to_u128()?;
        if n < 1024 {
            return None;
        }
        let mut k = 0;
        while k < 6 && n % 1024 == 0 {
            n /= 1024;
            k += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k];
        Some(format!("{n}{suffix}"))
    }
}

impl fmt::Display for Quantity {
    /// Upstream's `String`: the kept input if any, else the canonical form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.original {
            Some(s) => f.write_str(s),
            None => f.write_str(&self.canonical()),
        }
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl std::hash::Hash for Quantity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.negative.hash(state);
        self.magnitude.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.sign(), other.sign()) {
            (a, b) if a != b => a.cmp(&b),
            (-1, _) => other.magnitude.cmp(&self.magnitude),
            _ => self.magnitude.cmp(&other.magnitude),
        }
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    /// Accepts a string or a JSON number, trimmed of whitespace as upstream's
    /// `UnmarshalJSON` does.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let text = match &v {
            serde_json::Value::String(s) => s.trim().to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(serde::de::Error::custom(format!(
                    "a quantity must be a string or a number, not {other}"
                )))
            }
        };
        Quantity::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<&k8s_openapi::apimachinery::pkg::api::resource::Quantity> for Quantity {
    type Error = QuantityError;

    fn try_from(
        q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity,
    ) -> Result<Self, Self::Error> {
        Quantity::parse(q.0.trim())
    }
}

impl From<&Quantity> for k8s_openapi::apimachinery::pkg::api::resource::Quantity {
    fn from(q: &Quantity) -> Self {
        k8s_openapi::apimachinery::pkg::api::resource::Quantity(q.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn scaled(v: i64, scale: i32, f: Format) -> Quantity {
        Quantity::from_scaled(v, scale, f)
    }

    #[test]
    fn parses_to_upstream_values_and_formats() {
        use Format::*;
        let cases: &[(&str, Quantity, Format)] = &[
            ("0", scaled(0, 0, DecimalSI), DecimalSI),
            ("0n", scaled(0, 0, DecimalSI), DecimalSI),
            ("0Ki", scaled(0, 0, DecimalSI), BinarySI),
            ("0e0", scaled(0, 0, DecimalSI), DecimalExponent),
            ("1Ki", scaled(1024, 0, BinarySI), BinarySI),
            ("8Ki", scaled(8 * 1024, 0, BinarySI), BinarySI),
            ("7Mi", scaled(7 << 20, 0, BinarySI), BinarySI),
            ("6Gi", scaled(6 << 30, 0, BinarySI), BinarySI),
            ("5Ti", scaled(5 << 40, 0, BinarySI), BinarySI),
            ("4Pi", scaled(4 << 50, 0, BinarySI), BinarySI),
            ("3Ei", scaled(3 << 60, 0, BinarySI), BinarySI),
            ("5n", scaled(5, -9, DecimalSI), DecimalSI),
            ("4u", scaled(4, -6, DecimalSI), DecimalSI),
            ("3m", scaled(3, -3, DecimalSI), DecimalSI),
            ("9", scaled(9, 0, DecimalSI), DecimalSI),
            ("50k", scaled(5, 4, DecimalSI), DecimalSI),
            ("1E", scaled(1, 18, DecimalSI), DecimalSI),
            ("12E", scaled(12, 18, DecimalSI), DecimalSI),
            ("1e-3", scaled(1, -3, DecimalSI), DecimalExponent),
            ("1E3", scaled(1, 3, DecimalSI), DecimalExponent),
            ("1e99", scaled(1, 99, DecimalSI), DecimalExponent),
            ("0.001", scaled(1, -3, DecimalSI), DecimalSI),
            ("0.0005k", scaled(5, -1, DecimalSI), DecimalSI),
            ("0.00050k", scaled(5, -1, DecimalSI), DecimalSI),
            ("0.5e-1", scaled(5, -2, DecimalSI), DecimalExponent),
            ("10.035M", scaled(10035, 3, DecimalSI), DecimalSI),
            ("1.2e3", scaled(12, 2, DecimalSI), DecimalExponent),
            ("1.3E+6", scaled(13, 5, DecimalSI), DecimalExponent),
            ("1.53e12", scaled(153, 10, DecimalSI), DecimalExponent),
            ("6.987654321G", scaled(6987654321, 0, DecimalSI), DecimalSI),
            ("2.1E", scaled(21, 17, DecimalSI), DecimalSI),
            ("-1.5", scaled(-15, -1, DecimalSI), DecimalSI),
            ("+1.5", scaled(15, -1, DecimalSI), DecimalSI),
            // Rounded up to whole nanounits.
            ("3.001n", scaled(4, -9, DecimalSI), DecimalSI),
            ("1.1E-9", scaled(2, -9, DecimalSI), DecimalExponent),
            ("0.0000000001", scaled(1, -9, DecimalSI), DecimalSI),
            ("0.5e-9", scaled(1, -9, DecimalSI), DecimalExponent),
            ("0.9n", scaled(1, -9, DecimalSI), DecimalSI),
            ("0.00000012345", scaled(124, -9, DecimalSI), DecimalSI),
            ("-0.00000012345", scaled(-124, -9, DecimalSI), DecimalSI),
            ("1e-2147483648", scaled(1, -9, DecimalSI), DecimalExponent),
            // Binary values are capped at the largest int64.
            ("9Ei", scaled(i64::MAX, 0, BinarySI), BinarySI),
            (
                "9223372036854775807Ki",
                scaled(i64::MAX, 0, BinarySI),
                BinarySI,
            ),
            ("100.035Ki", scaled(10243584, -2, BinarySI), BinarySI),
            ("0.5Mi", scaled(512 * 1024, 0, BinarySI), BinarySI),
            ("0.05Gi", scaled(536870912, -1, BinarySI), BinarySI),
            ("0.000000000001Ki", scaled(2, -9, DecimalSI), DecimalSI),
            (".001", scaled(1, -3, DecimalSI), DecimalSI),
            (".0001k", scaled(100, -3, DecimalSI), DecimalSI),
            ("1.", scaled(1, 0, DecimalSI), DecimalSI),
            ("1.G", scaled(1, 9, DecimalSI), DecimalSI),
            // Upstream's scanner reads a lone sign, point or suffix as zero.
            ("-", scaled(0, 0, DecimalSI), DecimalSI),
            (".", scaled(0, 0, DecimalSI), DecimalSI),
            ("m", scaled(0, 0, DecimalSI), DecimalSI),
            ("Ki", scaled(0, 0, DecimalSI), BinarySI),
        ];
        for (input, value, format) in cases {
            let got = q(input);
            assert_eq!(&got, value, "value of {input}: {got:?}");
            assert_eq!(got.format(), *format, "format of {input}");
        }
        // Beyond int64 precision values stay exact.
        let big = q("123456789012345678901234567891");
        assert_eq!(big.to_string(), "123456789012345678901234567891");
        assert!(big > q("123456789012345678901234567890"));
        assert_eq!(
            q("123456789012345678901234567890000").to_string(),
            "123456789012345678901234567890k"
        );
    }

    #[test]
    fn bad_inputs_fail_with_upstream_errors() {
        use QuantityError::*;
        let cases: &[(&str, QuantityError)] = &[
            ("", FormatWrong),
            (" 1", FormatWrong),
            ("1 ", FormatWrong),
            ("1.5x", FormatWrong),
            ("abc", FormatWrong),
            ("1..2", FormatWrong),
            ("1e", Suffix),
            ("1e+", Suffix),
            ("1k3", Suffix),
            ("1Ki5", Suffix),
            ("1EE", Suffix),
            ("1KiB", FormatWrong),
            ("1K", Suffix),
            ("1i", Suffix),
            ("1e99999999999999999999", Suffix),
            // The second sign starts the suffix.
            ("--1", Suffix),
            ("1-", Suffix),
            ("1-x", FormatWrong),
            ("Ei", Numeric),
            (".Ei", Numeric),
            ("ü", FormatWrong),
        ];
        for (input, want) in cases {
            assert_eq!(Quantity::parse(input).err(), Some(*want), "input {input:?}");
        }
        assert_eq!(
            FormatWrong.to_string(),
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
        assert_eq!(
            Numeric.to_string(),
            "unable to parse numeric part of quantity"
        );
        assert_eq!(Suffix.to_string(), "unable to parse quantity's suffix");
    }

    #[test]
    fn canonical_forms_match_upstream() {
        use Format::*;
        let cases: &[(Quantity, &str)] = &[
            (scaled(1 << 30, 0, BinarySI), "1Gi"),
            (scaled(300 << 20, 0, BinarySI), "300Mi"),
            (scaled(6 * 1024, 0, BinarySI), "6Ki"),
            (scaled(1001 << 30, 0, BinarySI), "1001Gi"),
            (scaled(1 << 40, 0, BinarySI), "1Ti"),
            (scaled(5, 0, BinarySI), "5"),
            (scaled(500, -3, BinarySI), "500m"),
            (scaled(1, 9, DecimalSI), "1G"),
            (scaled(1000, 6, DecimalSI), "1G"),
            (scaled(1000000000, 0, DecimalSI), "1G"),
            (scaled(1, -3, DecimalSI), "1m"),
            (scaled(1080, -3, DecimalSI), "1080m"),
            (scaled(108, -2, DecimalSI), "1080m"),
            (scaled(10800, -4, DecimalSI), "1080m"),
            (scaled(1234567, 6, DecimalSI), "1234567M"),
            (scaled(1234567, -3, BinarySI), "1234567m"),
            (scaled(1025, 0, BinarySI), "1025"),
            (scaled(1536, 0, BinarySI), "1536"),
            (scaled(108, -8, DecimalSI), "1080n"),
            (scaled(10800, -7, DecimalSI), "1080u"),
            (scaled(1, -3, DecimalExponent), "1e-3"),
            (scaled(108, -2, DecimalExponent), "1080e-3"),
            (scaled(1, 0, DecimalExponent), "1"),
            (scaled(10, 0, DecimalExponent), "10"),
            (scaled(1, 3, DecimalExponent), "1e3"),
            (scaled(-1080, -3, DecimalSI), "-1080m"),
            (scaled(-1 << 30, 0, BinarySI), "-1Gi"),
            (scaled(-1024, 0, BinarySI), "-1Ki"),
            (scaled(-1023, 0, BinarySI), "-1023"),
            (scaled(0, 0, BinarySI), "0"),
            (scaled(1000, 18, DecimalSI), "1e21"),
            (scaled(1, -12, DecimalSI), "1e-12"),
        ];
        for (value, want) in cases {
            assert_eq!(value.to_string(), *want, "{value:?}");
        }
    }

    #[test]
    fn parse_then_print_matches_upstream() {
        let cases: &[(&str, &str)] = &[
            ("1Ki", "1Ki"),
            ("1024Mi", "1Gi"),
            ("1536Ki", "1536Ki"),
            ("1.5Gi", "1536Mi"),
            ("1000M", "1G"),
            ("1000m", "1"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("100m", "100m"),
            ("0.1", "100m"),
            (".001Ki", "1024m"),
            (".000001Ki", "1024u"),
            (".000000001Ki", "1024n"),
            (".000000000001Ki", "2n"),
            ("1e3", "1e3"),
            ("1E3", "1E3"),
            ("1e2", "100"),
            ("12e-1", "1200e-3"),
            ("8Ki", "8Ki"),
            ("1000E", "1e21"),
            ("9Ei", "9223372036854775807"),
            ("0.0", "0"),
            ("-0", "0"),
            ("00", "0"),
            ("-", "0"),
            // The input is kept when upstream deems it canonical, sign and zeros included.
            ("+1", "+1"),
            ("05", "05"),
            ("1.234k", "1.234k"),
            ("-1Ki", "-1Ki"),
            ("1000", "1k"),
            ("1001", "1001"),
            ("2000Mi", "2000Mi"),
        ];
        for (input, want) in cases {
            assert_eq!(q(input).to_string(), *want, "input {input}");
        }
        assert_eq!(q("+1").canonical(), "1");
        assert_eq!(q("1Ki").canonical(), "1Ki");
    }

    #[test]
    fn values_round_up_away_from_zero() {
        let cases: &[(&str, i64, i64)] = &[
            ("1", 1, 1000),
            ("1.5", 2, 1500),
            ("100m", 1, 100),
            ("0.1m", 1, 1),
            ("1n", 1, 1),
            ("-1.5", -2, -1500),
            ("-1n", -1, -1),
            ("1Gi", 1 << 30, 1000 << 30),
            ("0", 0, 0),
            ("9Ei", i64::MAX, i64::MAX),
            ("1e30", i64::MAX, i64::MAX),
            ("-1e30", i64::MIN, i64::MIN),
            ("9223372036854775807", i64::MAX, i64::MAX),
        ];
        for (input, value, milli) in cases {
            let v = q(input);
            assert_eq!(v.value(), *value, "value of {input}");
            assert_eq!(v.milli_value(), *milli, "milli value of {input}");
        }
        assert_eq!(q("1.5k").scaled_value(-3), 2);
        assert_eq!(q("2Ki").as_i64(), Some(2048));
        assert_eq!(q("1.5").as_i64(), None);
        assert_eq!(q("-3").as_i64(), Some(-3));
        assert!((q("1.5Ki").to_f64() - 1536.0).abs() < 1e-9);
        assert!((q("-250m").to_f64() + 0.25).abs() < 1e-12);
    }

    #[test]
    fn comparison_is_by_value() {
        let ordered = [
            "-1Ki", "-1", "-1m", "0", "1n", "1m", "999m", "1", "1000m", "1.5", "1Ki", "1e21",
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                let (a_q, b_q) = (q(a), q(b));
                let want = if matches!((*a, *b), ("1", "1000m") | ("1000m", "1")) {
                    Ordering::Equal
                } else {
                    i.cmp(&j)
                };
                assert_eq!(a_q.cmp(&b_q), want, "{a} vs {b}");
            }
        }
        assert_eq!(q("1Ki"), q("1024"));
        assert_eq!(q("1Ki").sign(), 1);
        assert_eq!(q("-1").sign(), -1);
        assert_eq!(q("0m").sign(), 0);
    }

    #[test]
    fn serde_uses_the_string_form() {
        let v: Quantity = serde_json::from_value(serde_json::json!(" 1.5Gi ")).unwrap_or_default();
        assert_eq!(v.to_string(), "1536Mi");
        let n: Quantity = serde_json::from_value(serde_json::json!(2)).unwrap_or_default();
        assert_eq!(n.to_string(), "2");
        assert_eq!(
            serde_json::to_value(q("1000m")).ok(),
            Some(serde_json::json!("1"))
        );
        assert!(serde_json::from_value::<Quantity>(serde_json::json!("x")).is_err());
        assert!(serde_json::from_value::<Quantity>(serde_json::json!(true)).is_err());
        let k = k8s_openapi::apimachinery::pkg::api::resource::Quantity("500m".into());
        assert_eq!(Quantity::try_from(&k).map(|v| v.milli_value()), Ok(500));
        let back = k8s_openapi::apimachinery::pkg::api::resource::Quantity::from(&q("0.5"));
        assert_eq!(back.0, "500m");
    }

    #[test]
    fn arithmetic_is_exact_and_keeps_the_first_format() {
        let cases: &[(&str, &str, &str, &str)] = &[
            ("1", "500m", "1500m", "500m"),
            ("1Gi", "512Mi", "1536Mi", "512Mi"),
            ("100m", "1", "1100m", "-900m"),
            ("0", "1Ki", "1Ki", "-1Ki"),
            ("1Ki", "1Ki", "2Ki", "0"),
            ("-1", "-2", "-3", "1"),
            ("1e3", "1", "1001", "999"),
            (
                "1n",
                "1E",
                "1000000000000000000000000001n",
                "-999999999999999999999999999n",
            ),
        ];
        for (a, b, sum, diff) in cases {
            let got_sum = q(a).checked_add(&q(b)).map(|v| v.to_string());
            let got_diff = q(a).checked_sub(&q(b)).map(|v| v.to_string());
            assert_eq!(got_sum.as_deref(), Some(*sum), "{a} + {b}");
            assert_eq!(got_diff.as_deref(), Some(*diff), "{a} - {b}");
        }
        assert_eq!(q("1e999999").checked_add(&q("1")), None);
        assert_eq!(q("2").negated().to_string(), "-2");
        assert_eq!(q("0").negated().sign(), 0);
    }

    #[test]
    fn constructors_match_upstream() {
        assert_eq!(Quantity::from_i64(5, Format::BinarySI).to_string(), "5");
        assert_eq!(
            Quantity::from_i64(2048, Format::BinarySI).to_string(),
            "2Ki"
        );
        assert_eq!(
            Quantity::from_milli(1500, Format::DecimalSI).to_string(),
            "1500m"
        );
        assert_eq!(
            Quantity::from_milli(-2000, Format::DecimalSI).to_string(),
            "-2"
        );
        assert_eq!(
            Quantity::from_i64(i64::MIN, Format::DecimalSI).value(),
            i64::MIN
        );
    }
}
