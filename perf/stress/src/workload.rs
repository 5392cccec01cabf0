//! What the virtual users send, and the JSON they read back.

use serde_json::Value;

/// The seed products of challenge.md.
pub const PRODUCT_IDS: [i64; 5] = [1, 2, 3, 4, 5];
/// Weights of the published test, toward the scarce products 4 (10 units)
/// and 5 (30 units).
pub const PRODUCT_WEIGHTS: [u32; 5] = [10, 10, 10, 35, 35];
pub const QUANTITY_MAX: i64 = 5;
/// A product id no seed has (and no test creates).
pub const UNKNOWN_PRODUCT_ID: i64 = 999_999;
pub const UNKNOWN_ORDER_ID: &str = "00000000-0000-4000-8000-000000000000";

/// A random version 4 UUID, lowercase and hyphenated, from `rng`'s bits:
/// the same seed gives the same keys.
pub fn uuid_v4(rng: &mut fastrand::Rng) -> String {
    let bytes = rng.u128(..).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// A product id drawn with [`PRODUCT_WEIGHTS`].
pub fn weighted_product(rng: &mut fastrand::Rng) -> i64 {
    let total: u32 = PRODUCT_WEIGHTS.iter().sum();
    let mut pick = rng.u32(0..total);
    for (id, w) in PRODUCT_IDS.iter().zip(PRODUCT_WEIGHTS) {
        if pick < w {
            return *id;
        }
        pick -= w;
    }
    PRODUCT_IDS[PRODUCT_IDS.len() - 1]
}

/// One POST /orders as sent; kept so that a replay sends the same body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaceRequest {
    pub key: String,
    pub product_id: i64,
    pub customer_id: String,
    pub quantity: i64,
}

impl PlaceRequest {
    pub fn random(rng: &mut fastrand::Rng, vu: &str, quantity_max: i64) -> PlaceRequest {
        PlaceRequest {
            key: uuid_v4(rng),
            product_id: weighted_product(rng),
            customer_id: format!("customer_{vu}"),
            quantity: rng.i64(1..=quantity_max.clamp(1, QUANTITY_MAX)),
        }
    }

    pub fn body(&self) -> Vec<u8> {
        format!(
            "{{\"product_id\":{},\"idempotency_key\":\"{}\",\"customer_id\":\"{}\",\"quantity\":{}}}",
            self.product_id, self.key, self.customer_id, self.quantity
        )
        .into_bytes()
    }
}

/// Bodies challenge.md's validation table refuses with 422, each with the
/// rule it breaks.
pub fn invalid_order_bodies(rng: &mut fastrand::Rng) -> Vec<(&'static str, String)> {
    let key = uuid_v4(rng);
    vec![
        ("not JSON", "{\"product_id\":1,".to_owned()),
        (
            "quantity 0",
            order_json("1", &format!("\"{key}\""), "\"c\"", "0"),
        ),
        (
            "quantity 6",
            order_json("1", &format!("\"{key}\""), "\"c\"", "6"),
        ),
        (
            "quantity not an integer",
            order_json("1", &format!("\"{key}\""), "\"c\"", "\"2\""),
        ),
        (
            "key not a UUID",
            order_json("1", "\"not-a-uuid\"", "\"c\"", "1"),
        ),
        (
            "empty customer_id",
            order_json("1", &format!("\"{key}\""), "\"\"", "1"),
        ),
        (
            "customer_id of 51 chars",
            order_json(
                "1",
                &format!("\"{key}\""),
                &format!("\"{}\"", "x".repeat(51)),
                "1",
            ),
        ),
        (
            "product_id a string",
            order_json("\"1\"", &format!("\"{key}\""), "\"c\"", "1"),
        ),
        (
            "quantity missing",
            format!("{{\"product_id\":1,\"idempotency_key\":\"{key}\",\"customer_id\":\"c\"}}"),
        ),
    ]
}

fn order_json(product: &str, key: &str, customer: &str, quantity: &str) -> String {
    format!("{{\"product_id\":{product},\"idempotency_key\":{key},\"customer_id\":{customer},\"quantity\":{quantity}}}")
}

/// An order object as the API renders it (POST /orders, GET /orders/{id}).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderView {
    pub order_id: String,
    pub idempotency_key: Option<String>,
    pub product_id: Option<i64>,
    pub customer_id: String,
    pub quantity: i64,
    pub unit_price: Option<i64>,
    pub total_price: i64,
    pub status: String,
    pub created_at: String,
}

impl OrderView {
    /// Reads the fields challenge.md names; `product_id`, `unit_price` and
    /// `idempotency_key` are optional because list entries lack them.
    pub fn from_json(v: &Value) -> Option<OrderView> {
        Some(OrderView {
            order_id: v.get("order_id")?.as_str()?.to_owned(),
            idempotency_key: v
                .get("idempotency_key")
                .and_then(Value::as_str)
                .map(str::to_owned),
            product_id: v.get("product_id").and_then(Value::as_i64),
            customer_id: v.get("customer_id")?.as_str()?.to_owned(),
            quantity: v.get("quantity")?.as_i64()?,
            unit_price: v.get("unit_price").and_then(Value::as_i64),
            total_price: v.get("total_price")?.as_i64()?,
            status: v.get("status")?.as_str()?.to_owned(),
            created_at: v.get("created_at")?.as_str()?.to_owned(),
        })
    }

    pub fn parse(body: &[u8]) -> Option<OrderView> {
        OrderView::from_json(&serde_json::from_slice(body).ok()?)
    }
}

/// GET /products/{id}.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductView {
    pub id: i64,
    pub price: i64,
    pub initial_stock: i64,
    pub current_stock: i64,
    /// compat.md's alias of current_stock, when present.
    pub stock: Option<i64>,
}

impl ProductView {
    pub fn parse(body: &[u8]) -> Option<ProductView> {
        let v: Value = serde_json::from_slice(body).ok()?;
        Some(ProductView {
            id: v.get("id")?.as_i64()?,
            price: v.get("price")?.as_i64()?,
            initial_stock: v.get("initial_stock")?.as_i64()?,
            current_stock: v.get("current_stock")?.as_i64()?,
            stock: v.get("stock").and_then(Value::as_i64),
        })
    }
}

/// GET /orders?product_id=N.
pub fn parse_listing(body: &[u8]) -> Option<(i64, Vec<OrderView>)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let product_id = v.get("product_id")?.as_i64()?;
    let orders = v
        .get("orders")?
        .as_array()?
        .iter()
        .map(OrderView::from_json)
        .collect::<Option<Vec<_>>>()?;
    Some((product_id, orders))
}

/// POST /orders/{id}/cancel 200: restored_quantity.
pub fn parse_cancel(body: &[u8]) -> Option<(String, String, i64)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    Some((
        v.get("order_id")?.as_str()?.to_owned(),
        v.get("status")?.as_str()?.to_owned(),
        v.get("restored_quantity")?.as_i64()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..100 {
            let u = uuid_v4(&mut rng);
            assert_eq!(u.len(), 36);
            assert_eq!(&u[14..15], "4");
            assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"), "{u}");
            assert_eq!(u, u.to_lowercase());
        }
        let mut again = fastrand::Rng::with_seed(7);
        let mut other = fastrand::Rng::with_seed(7);
        assert_eq!(
            uuid_v4(&mut again),
            uuid_v4(&mut other),
            "same seed, same key"
        );
    }

    #[test]
    fn weights_favour_scarce_products() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut seen = [0u32; 5];
        for _ in 0..10_000 {
            seen[(weighted_product(&mut rng) - 1) as usize] += 1;
        }
        assert!(seen[3] > 3 * seen[0] && seen[4] > 3 * seen[2], "{seen:?}");
        assert!(seen.iter().all(|&n| n > 0));
    }

    #[test]
    fn bodies_are_json_or_deliberately_not() {
        let mut rng = fastrand::Rng::with_seed(3);
        let req = PlaceRequest::random(&mut rng, "1", 5);
        let v: Value = serde_json::from_slice(&req.body()).unwrap();
        assert_eq!(v["idempotency_key"], req.key.as_str());
        for (why, body) in invalid_order_bodies(&mut rng).into_iter().skip(1) {
            assert!(
                serde_json::from_str::<Value>(&body).is_ok(),
                "{why}: {body}"
            );
        }
    }

    #[test]
    fn reads_order_objects() {
        let body = br#"{"order_id":"a","id":"a","idempotency_key":"k","product_id":4,"customer_id":"c","quantity":2,"unit_price":5,"total_price":10,"status":"CONFIRMED","created_at":"t"}"#;
        let o = OrderView::parse(body).unwrap();
        assert_eq!(o.product_id, Some(4));
        assert_eq!(o.total_price, 10);
        assert!(OrderView::parse(b"{\"order_id\":1}").is_none());
        let (p, list) = parse_listing(br#"{"product_id":4,"orders":[]}"#).unwrap();
        assert_eq!((p, list.len()), (4, 0));
    }
}
