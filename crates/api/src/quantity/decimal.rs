//! An exact, non-negative decimal of any size: significant digits and a power of ten.
//!
//! Quantities need exactness (upstream uses `inf.Dec` beyond int64), but only a few
//! operations: scaling by powers of ten and two, rounding up, comparing, and printing.
//! Keeping the exponent apart from the digits means `1e999999999` costs one digit, not a
//! billion; nothing here ever expands an exponent into digits except bounded conversions.

use std::cmp::Ordering;

/// The most digits arithmetic will spell out to align two exponents.
const MAX_ALIGNED_DIGITS: usize = 4096;

/// `digits × 10^exp`, with no leading or trailing zero digits; zero has no digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct Decimal {
    /// Most significant first, each 0..=9.
    digits: Vec<u8>,
    exp: i64,
}

impl Decimal {
    /// The value of an unsigned integer.
    pub(crate) fn from_u128(mut v: u128) -> Self {
        let mut digits = Vec::new();
        while v > 0 {
            // The remainder is below 10, so the cast is exact.
            digits.push((v % 10) as u8);
            v /= 10;
        }
        digits.reverse();
        Self::normalized(digits, 0)
    }

    /// `int.frac` from ASCII digit strings (either may be empty).
    pub(crate) fn from_parts(int: &str, frac: &str) -> Self {
        let digits: Vec<u8> = int
            .bytes()
            .chain(frac.bytes())
            .map(|b| b.wrapping_sub(b'0'))
            .collect();
        let frac_len = i64::try_from(frac.len()).unwrap_or(i64::MAX);
        Self::normalized(digits, -frac_len)
    }

    fn normalized(mut digits: Vec<u8>, mut exp: i64) -> Self {
        let lead = digits.iter().take_while(|d| **d == 0).count();
        digits.drain(..lead);
        while digits.last() == Some(&0) {
            digits.pop();
            exp = exp.saturating_add(1);
        }
        if digits.is_empty() {
            exp = 0;
        }
        Decimal { digits, exp }
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Whether the value has no fractional part.
    pub(crate) fn is_integer(&self) -> bool {
        self.exp >= 0
    }

    /// The power of ten of the least significant digit.
    pub(crate) fn exponent(&self) -> i64 {
        self.exp
    }

    /// The significant digits as ASCII.
    pub(crate) fn digit_string(&self) -> String {
        self.digits.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// Multiplies by `10^k`.
    pub(crate) fn scale10(mut self, k: i64) -> Self {
        if !self.is_zero() {
            self.exp = self.exp.saturating_add(k);
        }
        self
    }

    /// Multiplies by a small factor (a power of two for binary suffixes).
    pub(crate) fn mul_small(self, factor: u64) -> Self {
        if self.is_zero() || factor == 0 {
            return Decimal::default();
        }
        let mut out = Vec::with_capacity(self.digits.len() + 20);
        let mut carry: u128 = 0;
        for d in self.digits.iter().rev() {
            let v = u128::from(*d) * u128::from(factor) + carry;
            out.push((v % 10) as u8);
            carry = v / 10;
        }
        while carry > 0 {
            out.push((carry % 10) as u8);
            carry /= 10;
        }
        out.reverse();
        Self::normalized(out, self.exp)
    }

    /// Rounds up (away from zero) to a multiple of `10^scale`; zero stays zero.
    pub(crate) fn round_up(self, scale: i64) -> Self {
        if self.is_zero() || self.exp >= scale {
            return self;
        }
        let drop = scale.saturating_sub(self.exp);
        let len = i64::try_from(self.digits.len()).unwrap_or(i64::MAX);
        let keep = usize::try_from(len.saturating_sub(drop)).unwrap_or(0);
        // Normalized digits end in a non-zero digit, so something non-zero is dropped.
        let mut digits = self.digits;
        digits.truncate(keep);
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
        Self::normalized(digits, scale)
    }

    /// Both values' digits aligned to the smaller exponent, least significant first, or
    /// `None` when aligning would need more than `MAX_ALIGNED_DIGITS` digits.
    fn aligned(&self, other: &Self) -> Option<(Vec<u8>, Vec<u8>, i64)> {
        let exp = self.exp.min(other.exp);
        let widen = |d: &Decimal| -> Option<Vec<u8>> {
            let pad = usize::try_from(d.exp.checked_sub(exp)?).ok()?;
            if pad.checked_add(d.digits.len())? > MAX_ALIGNED_DIGITS {
                return None;
            }
            let mut v = vec![0; pad];
            v.extend(d.digits.iter().rev());
            Some(v)
        };
        Some((widen(self)?, widen(other)?, exp))
    }

    /// `self + other`, or `None` when the exponents are too far apart to add exactly
    /// in bounded memory.
    pub(crate) fn checked_add(&self, other: &Self) -> Option<Self> {
        if self.is_zero() || other.is_zero() {
            return Some(if self.is_zero() {
                other.clone()
            } else {
                self.clone()
            });
        }
        let (a, b, exp) = self.aligned(other)?;
        let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
        let mut carry = 0;
        for i in 0..a.len().max(b.len()) {
            let v = a.get(i).copied().unwrap_or(0) + b.get(i).copied().unwrap_or(0) + carry;
            out.push(v % 10);
            carry = v / 10;
        }
        if carry > 0 {
            out.push(carry);
        }
        out.reverse();
        Some(Self::normalized(out, exp))
    }

    /// `self - other` for `self >= other`, or `None` as for [`checked_add`](Self::checked_add).
    pub(crate) fn checked_sub(&self, other: &Self) -> Option<Self> {
        if other.is_zero() {
            return Some(self.clone());
        }
        let (a, b, exp) = self.aligned(other)?;
        let mut out = Vec::with_capacity(a.len());
        let mut borrow = 0;
        for (i, d) in a.iter().enumerate() {
            let sub = b.get(i).copied().unwrap_or(0) + borrow;
            if *d >= sub {
                out.push(d - sub);
                borrow = 0;
            } else {
                out.push(d + 10 - sub);
                borrow = 1;
            }
        }
        out.reverse();
        Some(Self::normalized(out, exp))
    }

    /// The number of digits before the decimal point, i.e. the magnitude's order.
    fn order(&self) -> i64 {
        let len = i64::try_from(self.digits.len()).unwrap_or(i64::MAX);
        len.saturating_add(self.exp)
    }

    /// `ceil(self × 10^scale)`, or `None` when it exceeds `u128`.
    pub(crate) fn ceil_scaled(&self, scale: i64) -> Option<u128> {
        if self.is_zero() {
            return Some(0);
        }
        let shifted = self.clone().scale10(scale);
        if shifted.order() > 39 {
            return None;
        }
        let whole = shifted.clone().round_up(0);
        let mut v: u128 = 0;
        for d in &whole.digits {
            v = v.checked_mul(10)?.checked_add(u128::from(*d))?;
        }
        for _ in 0..whole.exp {
            v = v.checked_mul(10)?;
        }
        Some(v)
    }

    /// The value when it is an integer fitting `u128`.
    pub(crate) fn to_u128(&self) -> Option<u128> {
        if !self.is_integer() {
            return None;
        }
        self.ceil_scaled(0)
    }

    /// An approximation, for callers that want a float.
    pub(crate) fn to_f64(&self) -> f64 {
        if self.is_zero() {
            return 0.0;
        }
        format!("{}e{}", self.digit_string(), self.exp)
            .parse()
            .unwrap_or(f64::INFINITY)
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        // Same order: compare digit by digit, the shorter padded with zeros.
        self.order().cmp(&other.order()).then_with(|| {
            let n = self.digits.len().max(other.digits.len());
            let at = |d: &Decimal, i: usize| d.digits.get(i).copied().unwrap_or(0);
            (0..n)
                .map(|i| at(self, i).cmp(&at(other, i)))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(int: &str, frac: &str) -> Decimal {
        Decimal::from_parts(int, frac)
    }

    #[test]
    fn parts_normalize() {
        assert_eq!(d("00120", "500"), Decimal::from_u128(1205).scale10(-1));
        assert!(d("000", "000").is_zero());
        assert_eq!(d("", "5").digit_string(), "5");
        assert_eq!(d("", "5").exponent(), -1);
        assert_eq!(d("1000", "").exponent(), 3);
    }

    #[test]
    fn rounding_goes_up() {
        let cases: &[(Decimal, i64, Decimal)] = &[
            (d("1", "0001"), -3, d("1", "001")),
            (d("1", "999"), -2, d("2", "")),
            (d("", "0000000001"), -9, d("", "000000001")),
            (d("", "0000000000001"), -9, d("", "000000001")),
            (d("9", "99"), 0, d("10", "")),
            (d("5", ""), 0, d("5", "")),
            (d("", ""), -9, d("", "")),
        ];
        for (v, s, want) in cases {
            assert_eq!(v.clone().round_up(*s), *want, "{v:?} to {s}");
        }
    }

    #[test]
    fn ordering_is_by_value() {
        let ordered = [
            d("", ""),
            d("", "000000001"),
            d("", "5"),
            d("", "51"),
            d("1", ""),
            d("1", "5"),
            d("2", ""),
            d("10", ""),
            Decimal::from_u128(1).scale10(1000),
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(a.cmp(b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn sums_and_differences_are_exact() {
        let cases: &[(Decimal, Decimal, Decimal, Decimal)] = &[
            (d("1", "5"), d("", "25"), d("1", "75"), d("1", "25")),
            (d("999", ""), d("1", ""), d("1000", ""), d("998", "")),
            (d("1", ""), d("", ""), d("1", ""), d("1", "")),
            (d("1", ""), d("1", ""), d("2", ""), d("", "")),
            (
                d("1000", ""),
                d("", "001"),
                d("1000", "001"),
                d("999", "999"),
            ),
        ];
        for (a, b, sum, diff) in cases {
            assert_eq!(a.checked_add(b).as_ref(), Some(sum), "{a:?} + {b:?}");
            assert_eq!(b.checked_add(a).as_ref(), Some(sum), "{b:?} + {a:?}");
            assert_eq!(a.checked_sub(b).as_ref(), Some(diff), "{a:?} - {b:?}");
        }
        let huge = Decimal::from_u128(1).scale10(1_000_000);
        assert_eq!(huge.checked_add(&d("1", "")), None);
        assert_eq!(
            huge.checked_add(&huge),
            Some(Decimal::from_u128(2).scale10(1_000_000))
        );
    }

    #[test]
    fn scaled_ceilings_are_exact_or_absent() {
        assert_eq!(d("1", "5").ceil_scaled(0), Some(2));
        assert_eq!(d("1", "5").ceil_scaled(3), Some(1500));
        assert_eq!(d("", "0001").ceil_scaled(3), Some(1));
        assert_eq!(
            Decimal::from_u128(u128::MAX).ceil_scaled(0),
            Some(u128::MAX)
        );
        assert_eq!(Decimal::from_u128(u128::MAX).ceil_scaled(1), None);
        assert_eq!(Decimal::from_u128(1).scale10(i64::MAX).ceil_scaled(0), None);
        assert_eq!(d("7", "").mul_small(1 << 60).to_u128(), Some(7 << 60));
        assert_eq!(d("1", "5").to_u128(), None);
    }
}
