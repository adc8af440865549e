//! TICK amounts: the token's decimals, and parsing and formatting of
//! amounts as people write them (`1.5TICK`, `0.001 TICK`, `500mTICK`,
//! `2µTICK`) or as planck integers, and of prices per second of playback
//! (`2µTICK/s`).

use crate::client::Balance;

/// Decimals of the chain's token (TICK): `1 TICK = 10^12` planck.
pub const DECIMALS: u32 = 12;

/// Why an amount was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AmountError(String);

/// Parses `1.5TICK` / `0.001 TICK` or an integer amount in planck.
pub fn parse_amount(s: &str) -> Result<Balance, AmountError> {
    parse(s).map_err(AmountError)
}

/// SI prefixes a unit may carry, with their power of ten below TICK.
const PREFIXES: [(&str, u32); 6] = [("m", 3), ("µ", 6), ("μ", 6), ("u", 6), ("n", 9), ("p", 12)];

fn parse(s: &str) -> Result<Balance, String> {
    let s = s.trim();
    let Some(tick) = s.strip_suffix("TICK").or_else(|| s.strip_suffix("tick")) else {
        return s
            .parse::<Balance>()
            .map_err(|e| format!("{s:?}: not an amount (e.g. 1.5TICK or 1500000000000): {e}"));
    };
    // `2µTICK`: the prefix sits right before the unit, and leaves fewer
    // decimals to write.
    let (tick, below) = PREFIXES
        .iter()
        .find_map(|(p, e)| tick.strip_suffix(p).map(|t| (t, *e)))
        .unwrap_or((tick, 0));
    let tick = tick.trim();
    let decimals = DECIMALS - below;
    let (whole, frac) = tick.split_once('.').unwrap_or((tick, ""));
    if frac.len() > decimals as usize {
        return Err(format!("{s:?}: at most {decimals} decimals"));
    }
    let digits = |t: &str| t.is_empty() || t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) {
        return Err(format!("{s:?}: not an amount (e.g. 1.5TICK)"));
    }
    let unit = 10u128.pow(decimals);
    let whole: Balance = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|e| format!("{s:?}: {e}"))?
    };
    let frac: Balance = if frac.is_empty() {
        0
    } else {
        frac.parse::<Balance>().map_err(|e| format!("{s:?}: {e}"))?
            * 10u128.pow(decimals - frac.len() as u32)
    };
    whole
        .checked_mul(unit)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(|| format!("{s:?}: too large"))
}

/// Formats planck as TICK with the decimals that matter.
pub fn format_amount(v: Balance) -> String {
    let unit = 10u128.pow(DECIMALS);
    let frac = v % unit;
    if frac == 0 {
        return format!("{} TICK", v / unit);
    }
    let frac = format!("{frac:012}");
    format!("{}.{} TICK", v / unit, frac.trim_end_matches('0'))
}

/// Parses a price per second of playback in planck: `2µTICK/s`,
/// `0.000002TICK/s`, `2000000/s` or `2000000` (planck per second). The
/// `/s` may be left out; no other time unit is accepted, so a price can
/// never be misread as per minute or per hour.
pub fn parse_rate(s: &str) -> Result<Balance, AmountError> {
    let t = s.trim();
    let amount = match t.split_once('/').map(|(a, u)| (a, u.trim())) {
        None => t,
        Some((a, "s")) => a,
        Some((_, unit)) => {
            return Err(AmountError(format!(
                "{s:?}: a price is per second (e.g. 2µTICK/s), not per {unit:?}"
            )))
        }
    };
    parse_amount(amount)
}

/// Formats a price per second with the largest prefix that keeps it at
/// least 1 (`2 µTICK/s`, `1.5 TICK/s`); [`parse_rate`] reads it back.
pub fn format_rate(v: Balance) -> String {
    let (prefix, below) = [("", 0u32), ("m", 3), ("µ", 6), ("n", 9)]
        .into_iter()
        .find(|(_, e)| v >= 10u128.pow(DECIMALS - e))
        .unwrap_or(("p", 12));
    let unit = 10u128.pow(DECIMALS - below);
    let (whole, frac) = (v / unit, v % unit);
    if frac == 0 {
        return format!("{whole} {prefix}TICK/s");
    }
    let width = (DECIMALS - below) as usize;
    let frac = format!("{frac:0width$}");
    format!("{whole}.{} {prefix}TICK/s", frac.trim_end_matches('0'))
}

/// Parses a bandwidth fee in planck per MiB: `0.05mTICK/MiB`,
/// `50000000/MiB` or `50000000`. Only `/MiB` is accepted as a unit, so a
/// fee can never be misread as per GiB or per second.
pub fn parse_fee(s: &str) -> Result<u64, AmountError> {
    let t = s.trim();
    let amount = match t.split_once('/').map(|(a, u)| (a, u.trim())) {
        None => t,
        Some((a, "MiB")) => a,
        Some((_, unit)) => {
            return Err(AmountError(format!(
                "{s:?}: a bandwidth fee is per MiB (e.g. 0.05mTICK/MiB), not per {unit:?}"
            )))
        }
    };
    let v = parse_amount(amount)?;
    u64::try_from(v).map_err(|_| AmountError(format!("{s:?}: too large a fee")))
}

/// Formats a fee per MiB like [`format_rate`] (`0.05 mTICK/MiB`);
/// [`parse_fee`] reads it back.
pub fn format_fee(v: u64) -> String {
    let r = format_rate(u128::from(v));
    format!("{}/MiB", r.trim_end_matches("/s"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_are_per_mib_only() {
        assert_eq!(parse_fee("0.05mTICK/MiB"), Ok(50_000_000));
        assert_eq!(parse_fee("50000000"), Ok(50_000_000));
        assert_eq!(parse_fee(" 1 µTICK / MiB "), Ok(1_000_000));
        assert!(parse_fee("1mTICK/GiB")
            .unwrap_err()
            .to_string()
            .contains("per MiB"));
        assert!(parse_fee("1mTICK/s").is_err());
        assert!(parse_fee("100000000TICK").is_err());
        for v in [0u64, 1, 50_000_000, 1_000_000_000_000, 123_456_789] {
            assert_eq!(parse_fee(&format_fee(v)), Ok(v), "{}", format_fee(v));
        }
        assert_eq!(format_fee(50_000_000), "50 µTICK/MiB");
    }

    #[test]
    fn amounts_parse_in_tick_or_planck() {
        assert_eq!(
            parse_amount("1TICK"),
            Ok::<Balance, AmountError>(1_000_000_000_000)
        );
        assert_eq!(
            parse_amount("1.5 TICK"),
            Ok::<Balance, AmountError>(1_500_000_000_000)
        );
        assert_eq!(
            parse_amount("0.000000000001TICK"),
            Ok::<Balance, AmountError>(1)
        );
        assert_eq!(
            parse_amount(".5TICK"),
            Ok::<Balance, AmountError>(500_000_000_000)
        );
        assert_eq!(parse_amount("42"), Ok::<Balance, AmountError>(42));
        for bad in [
            "",
            "TICK",
            "1.0000000000001TICK",
            "-1",
            "1,5TICK",
            "1e3",
            "x.5TICK",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_amount("340282366920938463463374607431768211455TICK").is_err());
    }

    proptest::proptest! {
        /// Any amount text gives a value or an error, never a panic; any
        /// value formats and parses back to itself.
        #[test]
        fn amounts_never_panic_and_round_trip(text in ".{0,48}", v in proptest::num::u128::ANY) {
            let _ = parse_amount(&text);
            proptest::prop_assert_eq!(parse_amount(&format_amount(v).replace(' ', "")), Ok::<Balance, AmountError>(v));
        }
    }

    #[test]
    fn prefixed_amounts_and_rates_parse() {
        let ok = |s: &str| parse_rate(s).unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(ok("2µTICK/s"), 2_000_000);
        assert_eq!(ok("2μTICK/s"), 2_000_000); // Greek mu, as some keyboards type it
        assert_eq!(ok("2uTICK/s"), 2_000_000);
        assert_eq!(ok("2 µTICK/s"), 2_000_000);
        assert_eq!(ok("2µTICK / s"), 2_000_000);
        assert_eq!(ok("0.000002TICK/s"), 2_000_000);
        assert_eq!(ok("1.5mTICK/s"), 1_500_000_000);
        assert_eq!(ok("3nTICK/s"), 3_000);
        assert_eq!(ok("7pTICK/s"), 7);
        assert_eq!(ok("2000000/s"), 2_000_000);
        assert_eq!(ok("2000000"), 2_000_000);
        assert_eq!(ok("0"), 0);
        assert_eq!(parse_amount("500mTICK"), Ok(500_000_000_000));
        for bad in [
            "2µTICK/min",
            "2µTICK/h",
            "2µTICK/",
            "1.5pTICK/s",
            "0.0000001µTICK/s",
            "2kTICK/s",
            "/s",
            "µTICK/s",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_rate("2µTICK/min")
            .unwrap_err()
            .to_string()
            .contains("per second"));
    }

    #[test]
    fn rates_format_with_the_largest_prefix() {
        assert_eq!(format_rate(2_000_000), "2 µTICK/s");
        assert_eq!(format_rate(1_500_000_000_000), "1.5 TICK/s");
        assert_eq!(format_rate(2_500_000), "2.5 µTICK/s");
        assert_eq!(format_rate(999), "999 pTICK/s");
        assert_eq!(format_rate(1_000), "1 nTICK/s");
        assert_eq!(format_rate(0), "0 pTICK/s");
    }

    proptest::proptest! {
        /// Any rate text gives a value or an error, never a panic; any
        /// value formats and parses back to itself.
        #[test]
        fn rates_never_panic_and_round_trip(text in ".{0,48}", v in proptest::num::u128::ANY) {
            let _ = parse_rate(&text);
            proptest::prop_assert_eq!(parse_rate(&format_rate(v)), Ok::<Balance, AmountError>(v));
        }
    }

    #[test]
    fn amounts_format_without_trailing_zeros() {
        assert_eq!(format_amount(1_500_000_000_000), "1.5 TICK");
        assert_eq!(format_amount(2_000_000_000_000), "2 TICK");
        assert_eq!(format_amount(1), "0.000000000001 TICK");
        for v in [0u128, 1, 999, 1_234_567_890_123, u64::MAX as u128] {
            let text = format_amount(v).replace(' ', "");
            assert_eq!(parse_amount(&text), Ok::<Balance, AmountError>(v));
        }
    }
}
