//! `Stripe-Signature` is whatever a caller of the public webhook URL sends: any header is refused
//! or accepted, never a panic, and only a signature made with the secret passes.
use proptest::prelude::*;

use super::*;

fn sign(t: i64, body: &[u8], secret: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Header parts: well-formed ones with any values, and any text.
fn part() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|t| format!("t={t}")),
        "[0-9a-fA-F]{0,70}".prop_map(|v| format!("v1={v}")),
        ".{0,20}".prop_map(|v| format!("t={v}")),
        ".{0,20}".prop_map(|v| format!("v1={v}")),
        ".{0,20}",
    ]
}

const NOW: i64 = 1_700_000_000;

proptest! {
    #[test]
    fn any_header_without_the_secret_signature_is_refused(
        parts in proptest::collection::vec(part(), 0..6),
        body in proptest::collection::vec(any::<u8>(), 0..100),
        // Timestamps near now, so the signature check itself is reached.
        offset in -400i64..400,
    ) {
        let mut header = parts.join(",");
        header.push_str(&format!(",t={}", NOW + offset));
        prop_assert!(verify(&header, &body, b"whsec_test", NOW).is_err());
    }

    #[test]
    fn a_signature_made_with_the_secret_within_the_tolerance_passes(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        secret in proptest::collection::vec(any::<u8>(), 1..64),
        offset in -TOLERANCE_SECONDS..=TOLERANCE_SECONDS,
        decoys in proptest::collection::vec("[0-9a-f]{64}", 0..3),
    ) {
        let t = NOW + offset;
        let mut header = format!("t={t}");
        for decoy in &decoys {
            header.push_str(&format!(",v1={decoy}"));
        }
        header.push_str(&format!(", v1={}", sign(t, &body, &secret)));
        prop_assert_eq!(verify(&header, &body, &secret, NOW), Ok(()));
        let mut tampered = body.clone();
        tampered.push(0);
        prop_assert!(verify(&header, &tampered, &secret, NOW).is_err());
    }

    #[test]
    fn a_signature_outside_the_tolerance_is_refused(
        body in proptest::collection::vec(any::<u8>(), 0..50),
        offset in (TOLERANCE_SECONDS + 1)..100_000,
        past in any::<bool>(),
    ) {
        let t = if past { NOW - offset } else { NOW + offset };
        let header = format!("t={t},v1={}", sign(t, &body, b"whsec"));
        prop_assert!(verify(&header, &body, b"whsec", NOW).is_err());
    }
}

proptest! {
    // Any timestamp at all, the far past included: `now - t` must not overflow.
    #[test]
    fn any_timestamp_is_refused_or_checked_without_overflow(
        t in any::<i64>(),
        now in any::<i64>(),
    ) {
        let header = format!("t={t},v1=00");
        let body: &[u8] = b"{}";
        prop_assert!(verify(&header, body, b"whsec", now).is_err());
    }
}
