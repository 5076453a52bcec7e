use http::{HeaderMap, HeaderValue};

use super::*;

fn with(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(*name, HeaderValue::from_str(value).expect("value"));
    }
    headers
}

fn github() -> Verification {
    Verification::HmacSha256 {
        header: "x-hub-signature-256".into(),
        secret: "It's a Secret to Everybody".into(),
        encoding: Encoding::Hex,
        prefix: Some("sha256=".into()),
    }
}

/// GitHub's published test values ("Validating webhook deliveries").
#[test]
fn githubs_published_vector_verifies_and_any_change_does_not() {
    let signed = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let ok = with(&[("x-hub-signature-256", signed)]);
    assert!(body(&github(), &ok, b"Hello, World!").is_ok());
    // Upper-case hex is the same signature.
    let upper = with(&[(
        "x-hub-signature-256",
        &signed.to_uppercase().replace("SHA256=", "sha256="),
    )]);
    assert!(body(&github(), &upper, b"Hello, World!").is_ok());
    for (headers, raw) in [
        (ok.clone(), &b"Hello, World?"[..]), // one byte changed
        (with(&[]), &b"Hello, World!"[..]),  // missing
        (
            with(&[("x-hub-signature-256", &signed[7..])]),
            &b"Hello, World!"[..],
        ), // no prefix
        (
            with(&[("x-hub-signature-256", &signed[..signed.len() - 2])]),
            &b"Hello, World!"[..],
        ), // truncated
        (
            with(&[("x-hub-signature-256", "sha256=zz")]),
            &b"Hello, World!"[..],
        ), // not hex
        (
            with(&[
                ("x-hub-signature-256", signed),
                ("x-hub-signature-256", signed),
            ]),
            &b"Hello, World!"[..],
        ), // twice
    ] {
        assert!(body(&github(), &headers, raw).is_err(), "{headers:?}");
    }
    let wrong_key = Verification::HmacSha256 {
        header: "x-hub-signature-256".into(),
        secret: "It's a Secret to Everybody!".into(),
        encoding: Encoding::Hex,
        prefix: Some("sha256=".into()),
    };
    assert!(body(&wrong_key, &ok, b"Hello, World!").is_err());
}

/// Shopify's format: the base64 HMAC of the raw body in `X-Shopify-Hmac-Sha256`, no prefix.
/// The expected value was computed independently, with Python's `hmac` module.
#[test]
fn shopifys_format_verifies_in_base64() {
    let shopify = Verification::HmacSha256 {
        header: "x-shopify-hmac-sha256".into(),
        secret: "shpss_0123456789abcdef0123456789".into(),
        encoding: Encoding::Base64,
        prefix: None,
    };
    let raw = br#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    let ok = with(&[(
        "x-shopify-hmac-sha256",
        "wK7b2LLk7SIgrmAv81NBK80Le+a+TZp/geTDH6gSVj0=",
    )]);
    assert!(body(&shopify, &ok, raw).is_ok());
    let mut changed = raw.to_vec();
    changed[10] ^= 1;
    assert!(body(&shopify, &ok, &changed).is_err());
    let hex_sent = with(&[(
        "x-shopify-hmac-sha256",
        "c0aedbd8b2e4ed2220ae602ff353412bcd0b7be6be4d9a7f81e4c31fa812563d",
    )]);
    assert!(
        body(&shopify, &hex_sent, raw).is_err(),
        "hex where base64 is expected"
    );
}

/// The Standard Webhooks specification's example: it verifies by its signature, but its
/// timestamp is years old, so it is refused as a replay; signed now, it verifies, with any of
/// the listed secrets and among several signatures.
#[test]
fn standard_webhooks_checks_signature_timestamp_and_every_listed_secret() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let other = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let raw = br#"{"test": 2432232314}"#;
    let replayed = with(&[
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("webhook-timestamp", "1614265330"),
        (
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ]);
    let one = Verification::StandardWebhooks {
        secrets: vec![secret.into()],
    };
    assert!(
        body(&one, &replayed, raw).is_err(),
        "a timestamp more than 5 minutes old"
    );

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let signed = standardwebhooks::Webhook::new(secret)
        .expect("secret")
        .sign("msg_1", now, raw)
        .expect("sign");
    let other_signed = standardwebhooks::Webhook::new(other)
        .expect("secret")
        .sign("msg_1", now, raw)
        .expect("sign");
    let fresh = |signature: &str| {
        with(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &now.to_string()),
            ("webhook-signature", signature),
        ])
    };
    assert!(body(&one, &fresh(&signed), raw).is_ok());
    assert!(
        body(&one, &fresh(&format!("{other_signed} {signed}")), raw).is_ok(),
        "several signatures"
    );
    assert!(
        body(&one, &fresh(&other_signed), raw).is_err(),
        "the wrong key"
    );
    assert!(
        body(&one, &fresh(&signed[..signed.len() - 4]), raw).is_err(),
        "truncated"
    );
    assert!(
        body(&one, &fresh("v1,not-base64"), raw).is_err(),
        "malformed"
    );
    assert!(
        body(&one, &fresh(&signed), br#"{"test": 2432232315}"#).is_err(),
        "one byte changed"
    );
    let rotating = Verification::StandardWebhooks {
        secrets: vec![other.into(), secret.into()],
    };
    assert!(
        body(&rotating, &fresh(&signed), raw).is_ok(),
        "any listed secret"
    );
    let future = with(&[
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", &(now + 600).to_string()),
        (
            "webhook-signature",
            &standardwebhooks::Webhook::new(secret)
                .expect("s")
                .sign("msg_1", now + 600, raw)
                .expect("sign"),
        ),
    ]);
    assert!(body(&one, &future, raw).is_err(), "ten minutes ahead");
}

#[test]
fn basic_and_static_header_credentials_are_checked_before_the_body() {
    let basic = Verification::Basic {
        username: "collector".into(),
        password: "correct horse battery".into(),
    };
    let good = STANDARD.encode("collector:correct horse battery");
    assert!(headers(
        &basic,
        &with(&[("authorization", &format!("Basic {good}"))])
    )
    .is_ok());
    assert!(headers(
        &basic,
        &with(&[("authorization", &format!("basic {good}"))])
    )
    .is_ok());
    let wrong = STANDARD.encode("collector:correct horse battery!");
    for sent in [
        format!("Basic {wrong}"),
        "Basic !!!".into(),
        format!("Bearer {good}"),
        String::new(),
    ] {
        assert!(
            headers(&basic, &with(&[("authorization", &sent)])).is_err(),
            "{sent}"
        );
    }
    assert!(headers(&basic, &with(&[])).is_err());
    let header = Verification::Header {
        name: "x-collect-token".into(),
        value: "tok_0123456789abcdef".into(),
    };
    assert!(headers(
        &header,
        &with(&[("x-collect-token", "tok_0123456789abcdef")])
    )
    .is_ok());
    assert!(headers(
        &header,
        &with(&[("x-collect-token", "tok_0123456789abcdeF")])
    )
    .is_err());
    assert!(headers(
        &header,
        &with(&[("x-collect-token", "tok_0123456789abcde")])
    )
    .is_err());
    // Signatures are not the headers' business, and the reverse.
    assert!(headers(&github(), &with(&[])).is_ok());
    assert!(body(&header, &with(&[]), b"{}").is_ok());
}

#[test]
fn standard_secrets_must_decode_to_a_strong_key() {
    assert!(strong_standard_secret(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    ));
    assert!(
        !strong_standard_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "no prefix"
    );
    assert!(!strong_standard_secret("whsec_c2hvcnQ="), "5 bytes");
    assert!(!strong_standard_secret("whsec_not base64!"));
    assert!(!strong_standard_secret("whsec_"));
}
