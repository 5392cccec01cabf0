//! Property tests of the request path, without sockets: generated inputs,
//! fixed seeds (so a failure reproduces), many cases.
//!
//! 1. Every valid order body — any field order, whitespace, escapes, extra
//!    fields, key case — is accepted with exactly its values.
//! 2. Arbitrary bytes, and valid requests with random damage, never panic
//!    anywhere from framing to validation, and whatever is accepted obeys
//!    the spec's rules.

use flashsale::api::orders::place::order_request;
use flashsale::api::routes::{route, Command};
use flashsale::api::validate::ProductRef;
use flashsale::http::request::{parse_request, Body, Method, Parsed, Progress};

/// A value and the JSON text that denotes it, possibly escaped.
struct Generated {
    value: String,
    json: String,
}

fn whitespace(rng: &mut fastrand::Rng) -> &'static str {
    ["", "", " ", "\n", "\t", "  \r\n "][rng.usize(..6)]
}

/// One character of a customer id and a JSON spelling of it.
fn json_char(rng: &mut fastrand::Rng) -> (char, String) {
    let c = match rng.u8(..10) {
        0 => 'é',
        1 => '😀',
        2 => '"',
        3 => '\\',
        4 => '\n',
        5 => '中',
        _ => rng.alphanumeric(),
    };
    let plain = match c {
        '"' => "\\\"".to_string(),
        '\\' => "\\\\".to_string(),
        '\n' => "\\n".to_string(),
        c => c.to_string(),
    };
    let escaped = {
        let mut units = [0u16; 2];
        c.encode_utf16(&mut units)
            .iter()
            .map(|u| format!("\\u{u:04x}"))
            .collect::<String>()
    };
    (c, if rng.bool() { plain } else { escaped })
}

fn customer_id(rng: &mut fastrand::Rng) -> Generated {
    let mut value = String::new();
    let mut json = String::from("\"");
    for _ in 0..rng.usize(1..=50) {
        let (c, text) = json_char(rng);
        value.push(c);
        json.push_str(&text);
    }
    json.push('"');
    Generated { value, json }
}

/// A v4 key from the seeded `rng`, as bytes and as text in either case.
fn uuid_v4(rng: &mut fastrand::Rng) -> ([u8; 16], String) {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    let key = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let text = key.hyphenated().to_string();
    let text = if rng.bool() {
        text.to_uppercase()
    } else {
        text
    };
    (key.into_bytes(), text)
}

fn extra_value(rng: &mut fastrand::Rng) -> &'static str {
    [
        "null",
        "true",
        "-0.5e+3",
        "[1,{\"a\":[]},\"x\"]",
        "{\"nested\":{\"k\":\"\\u00e9\"}}",
        "\"\\ud83d\\ude00\"",
        "0",
    ][rng.usize(..7)]
}

#[test]
fn every_valid_order_body_is_accepted_with_its_exact_values() {
    let mut rng = fastrand::Rng::with_seed(0x5eed_0001);
    let mut scratch = String::new();
    for case in 0..20_000 {
        let product_id = rng.i32(1..=i32::MAX);
        let quantity = rng.i32(1..=5);
        let (key_bytes, key_text) = uuid_v4(&mut rng);
        let customer = customer_id(&mut rng);
        let mut members = vec![
            format!("\"product_id\":{product_id}"),
            format!("\"idempotency_key\":\"{key_text}\""),
            format!("\"customer_id\":{}", customer.json),
            format!("\"quantity\":{quantity}"),
        ];
        for i in 0..rng.usize(..3) {
            members.push(format!("\"extra_{i}\":{}", extra_value(&mut rng)));
        }
        rng.shuffle(&mut members);
        let mut body = String::from(whitespace(&mut rng));
        body.push('{');
        for (i, member) in members.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(whitespace(&mut rng));
            // Whitespace may also sit around the colon.
            body.push_str(&member.replacen(
                ':',
                &format!("{}:{}", whitespace(&mut rng), whitespace(&mut rng)),
                1,
            ));
            body.push_str(whitespace(&mut rng));
        }
        body.push('}');
        body.push_str(whitespace(&mut rng));

        let order = order_request(body.as_bytes(), &mut scratch)
            .unwrap_or_else(|e| panic!("case {case}: {body} refused: {}", e.0));
        assert_eq!(
            order.product_id,
            ProductRef::Id(product_id),
            "case {case}: {body}"
        );
        assert_eq!(order.idempotency_key, key_bytes, "case {case}: {body}");
        assert_eq!(order.customer_id, customer.value, "case {case}: {body}");
        assert_eq!(order.quantity, quantity, "case {case}: {body}");
    }
}

/// What the spec allows through validation; anything routed must obey it.
fn assert_command_is_valid(command: &Command<'_>) {
    if let Command::PlaceOrder(order) = command {
        assert!(matches!(order.product_id, ProductRef::Id(id) if id > 0));
        assert!((1..=5).contains(&order.quantity));
        let chars = order.customer_id.chars().count();
        assert!((1..=50).contains(&chars) && !order.customer_id.contains('\0'));
        assert_eq!(order.idempotency_key[6] >> 4, 4, "version 4");
        assert_eq!(order.idempotency_key[8] >> 6, 0b10, "RFC 4122 variant");
    }
}

/// Frames `input` and routes whatever complete requests it holds.
fn serve_bytes(input: &[u8], progress: &mut Progress, scratch: &mut String) {
    let mut rest = input;
    for _ in 0..8 {
        progress.reset();
        let request = match parse_request(rest, progress) {
            Ok(Parsed::Complete(request)) => request,
            Ok(Parsed::Partial { .. }) | Err(_) => return,
        };
        assert!(request.consumed > 0 && request.consumed <= rest.len());
        let body: &[u8] = match &request.body {
            Body::None => &[],
            Body::InBuffer(range) => &rest[range.clone()],
            Body::Decoded => progress.decoded_body(),
        };
        let target = &rest[request.head.path.clone()];
        if let Ok(command) = route(request.head.method, target, body, scratch) {
            assert_command_is_valid(&command);
        }
        rest = &rest[request.consumed..];
    }
}

fn valid_request(rng: &mut fastrand::Rng) -> Vec<u8> {
    let (_, key) = uuid_v4(rng);
    let body = format!(
        r#"{{"product_id":{},"idempotency_key":"{key}","customer_id":{},"quantity":{}}}"#,
        rng.i32(1..=6),
        customer_id(rng).json,
        rng.i32(0..=6)
    );
    match rng.u8(..4) {
        0 => format!("POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes(),
        1 => format!(
            "POST /orders HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
        .into_bytes(),
        2 => b"GET /orders?product_id=3 HTTP/1.1\r\n\r\nGET /products/2 HTTP/1.0\r\n\r\n".to_vec(),
        _ => format!(
            "POST /orders/{key}/cancel HTTP/1.1\r\nContent-Length: 15\r\n\r\n{{\"product_id\":4}}"
        )
        .into_bytes(),
    }
}

#[test]
fn damaged_and_arbitrary_bytes_never_panic_and_nothing_invalid_gets_through() {
    let mut rng = fastrand::Rng::with_seed(0x5eed_0002);
    let mut chunked = Progress::default();
    let mut scratch = String::new();
    for _ in 0..60_000 {
        let mut input = valid_request(&mut rng);
        for _ in 0..rng.usize(..4) {
            if input.is_empty() {
                break;
            }
            let at = rng.usize(..input.len());
            match rng.u8(..4) {
                0 => input[at] = rng.u8(..),
                1 => input.insert(at, rng.u8(..)),
                2 => {
                    input.remove(at);
                }
                _ => input.truncate(at),
            }
        }
        serve_bytes(&input, &mut chunked, &mut scratch);
    }
    for _ in 0..60_000 {
        let mut input = vec![0u8; rng.usize(..200)];
        rng.fill(&mut input);
        serve_bytes(&input, &mut chunked, &mut scratch);
        // Random bytes after a valid request line exercise the header and
        // body paths too.
        let mut prefixed = b"POST /orders HTTP/1.1\r\n".to_vec();
        prefixed.extend_from_slice(&input);
        serve_bytes(&prefixed, &mut chunked, &mut scratch);
    }
}

#[test]
fn every_proper_prefix_of_a_valid_request_is_partial() {
    let mut rng = fastrand::Rng::with_seed(0x5eed_0003);
    for _ in 0..300 {
        let input = valid_request(&mut rng);
        let whole = match parse_request(&input, &mut Progress::default()) {
            Ok(Parsed::Complete(r)) => r,
            other => panic!("{other:?} for {}", String::from_utf8_lossy(&input)),
        };
        assert!(matches!(whole.head.method, Method::Get | Method::Post));
        // Each prefix alone, and all of them in turn to one resuming parse.
        let mut resuming = Progress::default();
        for cut in 0..whole.consumed {
            for progress in [&mut Progress::default(), &mut resuming] {
                match parse_request(&input[..cut], progress) {
                    Ok(Parsed::Partial { .. }) => {}
                    other => panic!("prefix of {cut} bytes: {other:?}"),
                }
            }
        }
        assert_eq!(
            parse_request(&input, &mut resuming),
            Ok(Parsed::Complete(whole))
        );
    }
}
