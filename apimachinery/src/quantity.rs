//! Resource quantities (`100m`, `1.5Gi`, `2e3`) as k8s.io/apimachinery's `resource.Quantity`:
//! exact decimal values (a mantissa and a power of ten, nano precision), compared and added
//! exactly, printed in Go's canonical form (`Quantity.String()`: "1536Mi" for "1.5Gi", "500m"
//! for "0.5").

use std::cmp::Ordering;
use std::fmt;

/// A quantity: `mantissa × 10^exp10`, printed in `format`.
#[derive(Clone, Copy, Debug)]
pub struct Quantity {
    mantissa: i128,
    exp10: i32,
    format: Format,
}

impl Quantity {
    /// Parse kube's quantity syntax (rounded up to nano precision, as `ParseQuantity`); None
    /// when it does not parse or does not fit.
    pub fn parse(text: &str) -> Option<Quantity> {
        let (mantissa, exp10, format) = parse_quantity(text.trim())?;
        Some(Quantity {
            mantissa,
            exp10,
            format,
        })
    }

    /// An integer count (DecimalSI).
    pub fn from_int(n: i64) -> Quantity {
        Quantity {
            mantissa: i128::from(n),
            exp10: 0,
            format: Format::DecimalSI,
        }
    }

    /// Zero (DecimalSI; a sum starting from it takes the first addend's format).
    pub fn zero() -> Quantity {
        Quantity::from_int(0)
    }

    /// Is it zero?
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// The format it prints in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Both mantissas at the smaller exponent (None when that does not fit).
    fn aligned(&self, other: &Quantity) -> Option<(i128, i128, i32)> {
        let e = self.exp10.min(other.exp10);
        let scale = |q: &Quantity| -> Option<i128> {
            let d = u32::try_from(q.exp10 - e).ok()?;
            q.mantissa.checked_mul(pow10(d)?)
        };
        Some((scale(self)?, scale(other)?, e))
    }

    /// `self + other` (kube's `Add`: a zero takes the other's format); None on overflow.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let (a, b, e) = self.aligned(other)?;
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        Some(Quantity {
            mantissa: a.checked_add(b)?,
            exp10: e,
            format,
        })
    }

    /// `self - other`; None on overflow.
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        let neg = Quantity {
            mantissa: other.mantissa.checked_neg()?,
            ..*other
        };
        let mut q = self.checked_add(&neg)?;
        if self.is_zero() {
            q.format = other.format;
        }
        Some(q)
    }

    /// The value as an int64, when it is a whole number that fits.
    pub fn as_i64(&self) -> Option<i64> {
        let v = if self.exp10 >= 0 {
            self.mantissa
                .checked_mul(pow10(u32::try_from(self.exp10).ok()?)?)?
        } else {
            let d = pow10(u32::try_from(-self.exp10).ok()?)?;
            if self.mantissa % d != 0 {
                return None;
            }
            self.mantissa / d
        };
        i64::try_from(v).ok()
    }

    /// kube's `ScaledValue(scale)`: the value in units of 10^`scale`, a fraction rounded away
    /// from zero (as kube's int64 arithmetic rounds it), saturating at the int64 bounds. `Value()` is scale 0,
    /// `MilliValue()` scale -3.
    pub fn scaled_value(&self, scale: i32) -> i64 {
        let d = i64::from(self.exp10) - i64::from(scale);
        let v = if d >= 0 {
            u32::try_from(d)
                .ok()
                .and_then(pow10)
                .and_then(|p| self.mantissa.checked_mul(p))
                .unwrap_or(if self.mantissa < 0 {
                    i128::MIN
                } else {
                    i128::MAX
                })
        } else {
            match u32::try_from(-d).ok().and_then(pow10) {
                Some(div) => {
                    let q = self.mantissa / div;
                    match self.mantissa % div {
                        0 => q,
                        _ if self.mantissa > 0 => q + 1,
                        _ => q - 1,
                    }
                }
                // Smaller than any unit of this scale.
                None => self.mantissa.signum(),
            }
        };
        i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
    }

    /// Is it below zero?
    pub fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    /// The value as a float (approximate; for display and ratios only).
    pub fn as_f64(&self) -> f64 {
        self.mantissa as f64 * 10f64.powi(self.exp10)
    }
}

impl Default for Quantity {
    fn default() -> Self {
        Quantity::zero()
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        match self.aligned(other) {
            Some((a, b, _)) => a.cmp(&b),
            // Too far apart to align exactly: the signs and magnitudes decide.
            None => self.as_f64().total_cmp(&other.as_f64()),
        }
    }
}

impl fmt::Display for Quantity {
    /// Go's canonical form (`Quantity.String()`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match canonical(self) {
            Some(s) => f.write_str(&s),
            None => write!(f, "{}e{}", self.mantissa, self.exp10),
        }
    }
}

/// How a quantity prints (kube's `resource.Format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Decimal SI suffixes (`m`, `k`, `M`…).
    DecimalSI,
    /// Binary suffixes (`Ki`, `Mi`…).
    BinarySI,
    /// `e<n>` exponents.
    DecimalExponent,
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// Parses a quantity into (mantissa, base-10 exponent, format), rounded up to nano precision
/// as `resource.ParseQuantity` does.
fn parse_quantity(text: &str) -> Option<(i128, i32, Format)> {
    let b = text.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    match b.first() {
        Some(b'+') => pos += 1,
        Some(b'-') => {
            negative = true;
            pos += 1;
        }
        _ => {}
    }
    let mut mantissa: i128 = 0;
    let mut scale: i32 = 0;
    let mut seen_digit = false;
    let mut seen_dot = false;
    while pos < b.len() {
        match b[pos] {
            c @ b'0'..=b'9' => {
                seen_digit = true;
                if mantissa > i128::MAX / 100 {
                    return None;
                }
                mantissa = mantissa * 10 + i128::from(c - b'0');
                if seen_dot {
                    scale += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => break,
        }
        pos += 1;
    }
    if !seen_digit {
        return None;
    }
    let suffix = &text[pos..];
    let (mut exp10, format): (i32, Format) = match suffix {
        "" => (0, Format::DecimalSI),
        "n" => (-9, Format::DecimalSI),
        "u" => (-6, Format::DecimalSI),
        "m" => (-3, Format::DecimalSI),
        "k" => (3, Format::DecimalSI),
        "M" => (6, Format::DecimalSI),
        "G" => (9, Format::DecimalSI),
        "T" => (12, Format::DecimalSI),
        "P" => (15, Format::DecimalSI),
        "E" => (18, Format::DecimalSI),
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = match suffix {
                "Ki" => 1,
                "Mi" => 2,
                "Gi" => 3,
                "Ti" => 4,
                "Pi" => 5,
                _ => 6,
            };
            mantissa = mantissa.checked_mul(1i128 << (10 * power))?;
            (0, Format::BinarySI)
        }
        _ => {
            let rest = suffix.strip_prefix(['e', 'E'])?;
            let n: i32 = rest.parse().ok()?;
            (n, Format::DecimalExponent)
        }
    };
    exp10 -= scale;
    if exp10 < -9 {
        // Round up (away from zero) to nano precision.
        let div = pow10(u32::try_from(-9 - exp10).ok()?)?;
        let q = mantissa / div;
        mantissa = if mantissa % div != 0 { q + 1 } else { q };
        exp10 = -9;
    }
    if negative {
        mantissa = -mantissa;
    }
    Some((mantissa, exp10, format))
}

fn canonical(q: &Quantity) -> Option<String> {
    let (mut m, mut e, mut format) = (q.mantissa, q.exp10, q.format);
    if m == 0 {
        return Some("0".to_string());
    }
    if format == Format::BinarySI {
        // Integer value, if it is one.
        let integer = if e >= 0 {
            m.checked_mul(pow10(u32::try_from(e).ok()?)?)
        } else {
            let div = pow10(u32::try_from(-e).ok()?)?;
            if m % div == 0 {
                Some(m / div)
            } else {
                None
            }
        };
        match integer {
            Some(n) if n <= -1024 || n >= 1024 => {
                let mut n = n;
                let mut power = 0;
                while n % 1024 == 0 && power < 6 {
                    n /= 1024;
                    power += 1;
                }
                let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
                return Some(format!("{n}{suffix}"));
            }
            _ => format = Format::DecimalSI,
        }
    }
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    match e.rem_euclid(3) {
        1 => {
            m = m.checked_mul(10)?;
            e -= 1;
        }
        2 => {
            m = m.checked_mul(100)?;
            e -= 2;
        }
        _ => {}
    }
    let suffix = match (format, e) {
        (_, 0) => String::new(),
        (Format::DecimalSI, -9) => "n".to_string(),
        (Format::DecimalSI, -6) => "u".to_string(),
        (Format::DecimalSI, -3) => "m".to_string(),
        (Format::DecimalSI, 3) => "k".to_string(),
        (Format::DecimalSI, 6) => "M".to_string(),
        (Format::DecimalSI, 9) => "G".to_string(),
        (Format::DecimalSI, 12) => "T".to_string(),
        (Format::DecimalSI, 15) => "P".to_string(),
        (Format::DecimalSI, 18) => "E".to_string(),
        _ => format!("e{e}"),
    };
    Some(format!("{m}{suffix}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    #[test]
    fn quantities_compare_exactly_across_suffixes() {
        assert_eq!(q("100m"), q("0.1"));
        assert_eq!(q("1Gi"), q("1073741824"));
        assert_eq!(q("1G"), q("1e9"));
        assert!(q("1") > q("999m"));
        assert!(q("1Gi") > q("1G"));
        // 0.1 + 0.2 is exactly 0.3 (floats say otherwise).
        let sum = q("0.1").checked_add(&q("0.2")).unwrap();
        assert_eq!(sum, q("300m"));
        assert_eq!(sum.to_string(), "300m");
        assert!(Quantity::parse("abc").is_none());
        assert!(Quantity::parse("1Xi").is_none());
    }

    #[test]
    fn sums_print_as_kube_prints_them() {
        let add = |a: &str, b: &str| q(a).checked_add(&q(b)).unwrap().to_string();
        assert_eq!(add("512Mi", "1Gi"), "1536Mi");
        assert_eq!(add("500m", "100m"), "600m");
        assert_eq!(add("1", "500m"), "1500m");
        assert_eq!(add("2", "1"), "3");
        assert_eq!(
            Quantity::zero().checked_add(&q("1Gi")).unwrap().to_string(),
            "1Gi"
        );
        assert_eq!(
            q("1Gi").checked_sub(&q("512Mi")).unwrap().to_string(),
            "512Mi"
        );
        assert_eq!(q("1.5Gi").to_string(), "1536Mi");
        assert_eq!(q("0.5").to_string(), "500m");
    }

    #[test]
    fn scaled_values_round_up_as_kube_rounds_them() {
        assert_eq!(q("1500m").scaled_value(0), 2);
        assert_eq!(q("1500m").scaled_value(-3), 1500);
        assert_eq!(q("1n").scaled_value(-3), 1);
        assert_eq!(q("-1500m").scaled_value(0), -2);
        assert_eq!(q("-1n").scaled_value(-3), -1);
        assert_eq!(q("2Ki").scaled_value(0), 2048);
        assert_eq!(q("1E").scaled_value(-3), i64::MAX);
        assert!(q("-1").is_negative() && !q("0").is_negative());
    }
}
