//! A paid stream's terms between the API's text form ([`OfferInfo`]:
//! planck as a decimal string, SS58 payee, hex genesis) and the signed
//! wire form ([`Offer`]). The payments service (vouchers, keys) will read
//! the same [`Offer`] from the catalog.

use vilokanam_api::OfferInfo;
use vilokanam_chain::account::parse_address;
use vilokanam_chain::AccountId;
use vilokanam_swarm::wire::KeyServerAddr;
use vilokanam_swarm::Offer;

use super::error::NodeError;

/// Reads an offer from the API, checking every field; `key_server` is the
/// node that will sell the epoch keys (the publishing node itself).
pub fn from_api(info: &OfferInfo, key_server: KeyServerAddr) -> Result<Offer, NodeError> {
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
        epoch_secs: info.epoch_secs,
        key_servers: vec![key_server],
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
        epoch_secs: offer.epoch_secs,
        key_servers: offer
            .key_servers
            .iter()
            .map(|k| {
                libp2p_peer_id(&k.peer_id)
                    .unwrap_or_else(|| format!("0x{}", hex::encode(&k.peer_id)))
            })
            .collect(),
    }
}

fn libp2p_peer_id(bytes: &[u8]) -> Option<String> {
    vilokanam_swarm::libp2p::PeerId::from_bytes(bytes)
        .ok()
        .map(|p| p.to_string())
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
            epoch_secs: 6,
            key_servers: vec![],
        }
    }

    fn server() -> KeyServerAddr {
        KeyServerAddr {
            peer_id: vilokanam_swarm::libp2p::PeerId::random().to_bytes(),
            addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
        }
    }

    #[test]
    fn offers_round_trip_between_text_and_wire() {
        let g = format!("0x{}", "ab".repeat(32));
        let offer = from_api(&info("2000000", ALICE, &g), server()).unwrap();
        assert_eq!(offer.price_per_sec, 2_000_000);
        assert_eq!(offer.genesis, [0xab; 32]);
        let mut expected = info("2000000", ALICE, &g);
        expected.key_servers =
            vec![
                vilokanam_swarm::libp2p::PeerId::from_bytes(&offer.key_servers[0].peer_id)
                    .unwrap()
                    .to_string(),
            ];
        assert_eq!(to_api(&offer), expected);
        // Without the 0x, too.
        assert_eq!(
            from_api(
                &info("2000000", ALICE, &"ab".repeat(32)),
                offer.key_servers[0].clone()
            )
            .unwrap(),
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
            let err = from_api(&i, server()).unwrap_err();
            assert!(matches!(err, NodeError::InvalidOffer(_)), "{err:?}");
            assert!(err.to_string().contains(why), "{i:?}: {err}");
        }
    }
}
