//! `platform::auth::JwtVerifier` against a real JWKS over HTTP: what passes and what must not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::auth::JwtVerifier;
use testkit::issuer::{AUDIENCE, ISSUER};
use testkit::TestIssuer;

fn verifier(issuer: &TestIssuer) -> JwtVerifier {
    JwtVerifier::remote(
        &format!("{}/.well-known/jwks.json", issuer.users_url),
        ISSUER,
        AUDIENCE,
    )
}

#[tokio::test]
async fn a_token_signed_by_the_issuer_verifies_with_its_claims() {
    let issuer = TestIssuer::start().await;
    let claims = issuer.claims("u-1", &["customer"], "");
    let verified = verifier(&issuer)
        .verify(&issuer.sign(&claims))
        .await
        .unwrap();
    assert_eq!(verified, claims);
    let service = verifier(&issuer)
        .verify(&issuer.service("orders", "inventory:reserve payments:write"))
        .await
        .unwrap();
    assert!(service.has_scope("payments:write"));
    assert!(service.user_id().is_none());
}

#[tokio::test]
async fn expired_foreign_and_misaddressed_tokens_are_refused() {
    let issuer = TestIssuer::start().await;
    let verifier = verifier(&issuer);
    let mut expired = issuer.claims("u-1", &["customer"], "");
    expired.exp = chrono::Utc::now().timestamp() - 120;
    assert!(verifier.verify(&issuer.sign(&expired)).await.is_err());

    let mut wrong_audience = issuer.claims("u-1", &["customer"], "");
    wrong_audience.aud = "someone-else".into();
    assert!(verifier
        .verify(&issuer.sign(&wrong_audience))
        .await
        .is_err());

    let mut wrong_issuer = issuer.claims("u-1", &["customer"], "");
    wrong_issuer.iss = "evil".into();
    assert!(verifier.verify(&issuer.sign(&wrong_issuer)).await.is_err());

    let mut not_yet = issuer.claims("u-1", &["customer"], "");
    not_yet.nbf = Some(chrono::Utc::now().timestamp() + 3600);
    assert!(verifier.verify(&issuer.sign(&not_yet)).await.is_err());

    // Signed by another issuer's key: its kid is unknown here.
    let other = TestIssuer::start().await;
    assert!(verifier.verify(&other.admin()).await.is_err());

    assert!(verifier.verify("not.a.token").await.is_err());
    assert!(verifier.verify("").await.is_err());
}

#[tokio::test]
async fn an_hmac_token_is_refused_whatever_its_secret() {
    let issuer = TestIssuer::start().await;
    let claims = issuer.claims("u-1", &["admin"], "");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("anything".into());
    let forged =
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"guess")).unwrap();
    assert!(verifier(&issuer).verify(&forged).await.is_err());
    // `alg: none` with no signature.
    let payload = serde_json::to_vec(&claims).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(payload)
    );
    assert!(verifier(&issuer).verify(&none).await.is_err());
}

#[tokio::test]
async fn a_token_verified_before_still_passes_only_while_valid_and_only_as_signed() {
    let issuer = TestIssuer::start().await;
    let verifier = verifier(&issuer);
    // Good for one more second: `exp` is 29 s past, and 30 s of leeway are allowed.
    let mut claims = issuer.claims("u-1", &["customer"], "");
    claims.exp = chrono::Utc::now().timestamp() - 29;
    let token = issuer.sign(&claims);
    assert_eq!(verifier.verify(&token).await.unwrap(), claims);
    assert_eq!(verifier.verify(&token).await.unwrap(), claims, "again");

    // The same signature over other claims: the remembered token must not vouch for it.
    let (_, signature) = token.rsplit_once('.').unwrap();
    let mut admin = claims.clone();
    admin.roles = vec!["admin".into()];
    let admin_token = issuer.sign(&admin);
    let (signed_part, _) = admin_token.rsplit_once('.').unwrap();
    let forged = format!("{signed_part}.{signature}");
    assert!(verifier.verify(&forged).await.is_err());

    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(
        verifier.verify(&token).await.is_err(),
        "a remembered token is refused once it expires"
    );
}
