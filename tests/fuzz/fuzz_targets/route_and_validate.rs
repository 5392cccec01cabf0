//! Routing and validation: the first byte picks the method, the rest up to
//! the first newline is the target, the remainder the body. Nothing may
//! panic, and whatever becomes a database command obeys the spec's rules.
#![no_main]
use flashsale::api::routes::{route, Command, Query};
use flashsale::api::validate::ProductRef;
use flashsale::config::{
    CUSTOMER_ID_CHARS_MAX, EMAIL_CHARS_MAX, PASSWORD_CHARS_MAX, PASSWORD_CHARS_MIN, QUANTITY_MAX,
    QUANTITY_MIN,
};
use flashsale::http::request::Method;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&method, rest)) = data.split_first() else {
        return;
    };
    let method = match method % 6 {
        0 => Method::Get,
        1 => Method::Post,
        2 => Method::Head,
        3 => Method::Patch,
        4 => Method::Delete,
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
        Command::Query(Query::CancelOrder { product_id, .. }, _) => {
            assert_eq!(method, Method::Post);
            assert!(product_id.is_none_or(|id| id > 0));
        }
        Command::Query(Query::GetProduct(id) | Query::ListOrders(id), _) => {
            assert!(reads);
            assert!(id > 0);
        }
        Command::Query(Query::ListCustomerOrders { product_id }, customer_id) => {
            assert!(reads);
            assert!(product_id.is_none_or(|id| id >= 0));
            let chars = customer_id.chars().count();
            assert!((1..=CUSTOMER_ID_CHARS_MAX).contains(&chars));
            assert!(!customer_id.contains('\0'));
        }
        Command::Query(Query::AdminCreate(product), name) => {
            assert_eq!(method, Method::Post);
            assert!(product.id.is_none_or(|id| id > 0));
            assert!(product.price >= 0 && product.stock >= 0);
            assert!(product.per_customer_limit.is_none_or(|n| n > 0));
            if let (Some(starts), Some(ends)) = (product.starts_at, product.ends_at) {
                assert!(ends > starts);
            }
            assert!(!name.is_empty() && !name.chars().any(char::is_control));
        }
        Command::Query(Query::AdminUpdate(change), name) => {
            assert_eq!(method, Method::Patch);
            assert!(change.id > 0 && change.fields != 0 && change.price >= 0);
            assert!(change.per_customer_limit.is_none_or(|n| n > 0));
            assert!(!name.chars().any(char::is_control));
        }
        Command::Query(Query::AdminRestock { id, quantity }, _) => {
            assert_eq!(method, Method::Post);
            assert!(id > 0 && quantity > 0);
        }
        Command::Query(Query::PlaceHold(hold), customer_id) => {
            assert_eq!(method, Method::Post);
            assert!(hold.product_id > 0);
            let quantity = i64::from(hold.quantity);
            assert!((QUANTITY_MIN..=QUANTITY_MAX).contains(&quantity));
            let chars = customer_id.chars().count();
            assert!((1..=CUSTOMER_ID_CHARS_MAX).contains(&chars));
            assert!(!customer_id.contains('\0'));
        }
        Command::Query(Query::ConsumeHold { key, .. }, customer_id) => {
            assert_eq!(method, Method::Post);
            let chars = customer_id.chars().count();
            assert!((1..=CUSTOMER_ID_CHARS_MAX).contains(&chars));
            assert!(!customer_id.contains('\0'));
            assert!(key[6] >> 4 == 4 && key[8] >> 6 == 0b10, "not a v4 RFC 4122 key");
        }
        Command::Query(Query::ReleaseHold(_), _) => assert_eq!(method, Method::Post),
        // `route` passes no X-Signature: every webhook is refused (401).
        Command::Query(Query::PaymentWebhook(_), _) => panic!("a webhook without a signature"),
        Command::Query(
            Query::CreateAccount { email_len } | Query::OpenSession { email_len },
            text,
        ) => {
            assert_eq!(method, Method::Post);
            let (email, password) = text.split_at(usize::from(email_len));
            let (local, domain) = email.split_once('@').expect("an email has an @");
            assert!(!local.is_empty() && !domain.is_empty() && !domain.contains('@'));
            assert!((3..=EMAIL_CHARS_MAX).contains(&email.chars().count()));
            let chars = password.chars().count();
            assert!((PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&chars));
            assert!(!password.contains('\0') && !email.chars().any(char::is_control));
        }
        Command::Query(Query::ListCustomerHolds, customer_id) => {
            assert!(reads);
            let chars = customer_id.chars().count();
            assert!((1..=CUSTOMER_ID_CHARS_MAX).contains(&chars));
            assert!(!customer_id.contains('\0'));
        }
        // `route` passes no session: these need one.
        Command::Query(Query::SessionOrder(_) | Query::GetSession | Query::EndSession, _) => {
            panic!("a session's query without a session")
        }
        Command::Query(Query::GetOrder(_) | Query::GetHold(_) | Query::ListSales { .. }, _)
        | Command::Health
        | Command::Metrics => assert!(reads),
    }
});
