//! Routing and validation: the first byte picks the method, the rest up to
//! the first newline is the target, the remainder the body. Nothing may
//! panic, and whatever becomes a database command obeys the spec's rules.
#![no_main]
use flashsale::api::routes::{route, Command, Query};
use flashsale::api::validate::ProductRef;
use flashsale::config::{CUSTOMER_ID_CHARS_MAX, QUANTITY_MAX, QUANTITY_MIN};
use flashsale::http::request::Method;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&method, rest)) = data.split_first() else {
        return;
    };
    let method = match method % 4 {
        0 => Method::Get,
        1 => Method::Post,
        2 => Method::Head,
        _ => Method::Other,
    };
    let reads = matches!(method, Method::Get | Method::Head);
    let (target, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(newline) => (&rest[..newline], &rest[newline + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    let mut scratch = String::new();
    let Ok(command) = route(method, target, body, &mut scratch) else {
        return;
    };
    match command {
        Command::PlaceOrder(order) => {
            assert_eq!(method, Method::Post);
            assert!(matches!(order.product_id, ProductRef::Id(id) if id > 0));
            let quantity = i64::from(order.quantity);
            assert!((QUANTITY_MIN..=QUANTITY_MAX).contains(&quantity));
            let chars = order.customer_id.chars().count();
            assert!((1..=CUSTOMER_ID_CHARS_MAX).contains(&chars));
            assert!(!order.customer_id.contains('\0'));
            let key = order.idempotency_key;
            assert!(
                key[6] >> 4 == 4 && key[8] >> 6 == 0b10,
                "not a v4 RFC 4122 key"
            );
        }
        Command::Query(Query::CancelOrder { product_id, .. }) => {
            assert_eq!(method, Method::Post);
            assert!(product_id.is_none_or(|id| id > 0));
        }
        Command::Query(Query::GetProduct(id) | Query::ListOrders(id)) => {
            assert!(reads);
            assert!(id > 0);
        }
        Command::Query(Query::GetOrder(_)) | Command::Health | Command::Metrics => assert!(reads),
    }
});
