//! TICK amounts: the token's decimals, and parsing and formatting of
//! amounts as people write them (`1.5TICK`, `0.001 TICK`) or as planck
//! integers.

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

fn parse(s: &str) -> Result<Balance, String> {
    let s = s.trim();
    let Some(tick) = s
        .strip_suffix("TICK")
        .or_else(|| s.strip_suffix("tick"))
        .map(str::trim)
    else {
        return s
            .parse::<Balance>()
            .map_err(|e| format!("{s:?}: not an amount (e.g. 1.5TICK or 1500000000000): {e}"));
    };
    let (whole, frac) = tick.split_once('.').unwrap_or((tick, ""));
    if frac.len() > DECIMALS as usize {
        return Err(format!("{s:?}: at most {DECIMALS} decimals"));
    }
    let digits = |t: &str| t.is_empty() || t.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) {
        return Err(format!("{s:?}: not an amount (e.g. 1.5TICK)"));
    }
    let unit = 10u128.pow(DECIMALS);
    let whole: Balance = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|e| format!("{s:?}: {e}"))?
    };
    let frac: Balance = if frac.is_empty() {
        0
    } else {
        frac.parse::<Balance>().map_err(|e| format!("{s:?}: {e}"))?
            * 10u128.pow(DECIMALS - frac.len() as u32)
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

#[cfg(test)]
mod tests {
    use super::*;

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
