//! A paid stream's terms between the API's text form ([`OfferInfo`]:
//! planck as a decimal string, SS58 payee, hex genesis) and the signed
//! wire form ([`Offer`]). The payments service (vouchers, keys) will read
//! the same [`Offer`] from the catalog.

use vilokanam_api::OfferInfo;
use vilokanam_chain::account::parse_address;
use vilokanam_chain::AccountId;
use vilokanam_swarm::Offer;

use super::error::NodeError;

/// Reads an offer from the API, checking every field.
pub fn from_api(info: &OfferInfo) -> Result<Offer, NodeError> {
    let bad = |why: String| NodeError::InvalidOffer(why);
    let price_per_sec = info
        .price_per_sec
        .trim()
        .parse::<u128>()
        .map_err(|e| bad(format!("price_per_sec {:?}: {e}", info.price_per_sec)))?;
    let payee = parse_address(&info.payee)
        .map_err(|e| bad(format!("payee: not an SS58 address: {e}")))?
        .0;
    let genesis = parse_genesis(&info.genesis).map_err(bad)?;
    let offer = Offer {
        price_per_sec,
        payee,
        genesis,
    };
    offer.validate().map_err(|e| bad(e.to_string()))?;
    Ok(offer)
}

/// Reads a genesis hash: 64 hex digits, with or without `0x`.
pub fn parse_genesis(text: &str) -> Result<[u8; 32], String> {
    let hex = text.trim();
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    hex::decode(hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("genesis {text:?}: not 32 bytes of hex"))
}

/// The API's form of a signed offer.
pub fn to_api(offer: &Offer) -> OfferInfo {
    OfferInfo {
        price_per_sec: offer.price_per_sec.to_string(),
        payee: AccountId::from(offer.payee).to_string(),
        genesis: format!("0x{}", hex::encode(offer.genesis)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

    fn info(price: &str, payee: &str, genesis: &str) -> OfferInfo {
        OfferInfo {
            price_per_sec: price.into(),
            payee: payee.into(),
            genesis: genesis.into(),
        }
    }

    #[test]
    fn offers_round_trip_between_text_and_wire() {
        let g = format!("0x{}", "ab".repeat(32));
        let offer = from_api(&info("2000000", ALICE, &g)).unwrap();
        assert_eq!(offer.price_per_sec, 2_000_000);
        assert_eq!(offer.genesis, [0xab; 32]);
        assert_eq!(to_api(&offer), info("2000000", ALICE, &g));
        // Without the 0x, too.
        assert_eq!(
            from_api(&info("2000000", ALICE, &"ab".repeat(32))).unwrap(),
            offer
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let g = "ab".repeat(32);
        for (i, why) in [
            (info("2µTICK", ALICE, &g), "price_per_sec"),
            (info("-1", ALICE, &g), "price_per_sec"),
            (info("0", ALICE, &g), "zero"),
            (info(&u128::MAX.to_string(), ALICE, &g), "limit"),
            (info("1", "5Grwva", &g), "payee"),
            (info("1", ALICE, "0x1234"), "genesis"),
            (info("1", ALICE, &"zz".repeat(32)), "genesis"),
        ] {
            let err = from_api(&i).unwrap_err();
            assert!(matches!(err, NodeError::InvalidOffer(_)), "{err:?}");
            assert!(err.to_string().contains(why), "{i:?}: {err}");
        }
    }
}
