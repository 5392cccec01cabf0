-- flashsale schema, seed data and the functions the API calls.
--
-- Every API operation is ONE statement calling one function below, run in its
-- own implicit transaction: the stock check-and-decrement, the order insert
-- and the idempotency check commit together or not at all. The API keeps no
-- authoritative state. Idempotent: safe to apply to an existing database.

CREATE TABLE IF NOT EXISTS products (
    id            integer PRIMARY KEY,
    name          text    NOT NULL,
    price         integer NOT NULL CHECK (price >= 0),          -- cents
    initial_stock integer NOT NULL CHECK (initial_stock >= 0),
    -- The CHECK is the last line of defence against overselling: even a
    -- buggy statement cannot commit negative stock.
    current_stock integer NOT NULL CHECK (current_stock >= 0)
);

CREATE TABLE IF NOT EXISTS orders (
    -- Unguessable (cancel has no other authentication): gen_random_uuid()
    -- draws from the server's cryptographic random source.
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- "Most recent first" orders by this, never by created_at: many orders
    -- share one timestamp and ties must not be broken by chance.
    seq             bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    idempotency_key uuid        NOT NULL UNIQUE,
    product_id      integer     NOT NULL REFERENCES products (id),
    customer_id     text        NOT NULL CHECK (char_length(customer_id) BETWEEN 1 AND 50),
    quantity        integer     NOT NULL CHECK (quantity BETWEEN 1 AND 5),
    unit_price      integer     NOT NULL,
    total_price     integer     NOT NULL,
    status          text        NOT NULL CHECK (status IN ('CONFIRMED', 'CANCELLED')),
    -- The moment of the insert, not of the transaction's start (now()): a
    -- transaction that waited for a product's row lock must not stamp its
    -- order earlier than the order that held the lock. Orders of one product
    -- are inserted under that lock, so per product created_at rises with seq
    -- and "most recent first" means the same by either column.
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- Databases created before the default changed.
ALTER TABLE orders ALTER COLUMN created_at SET DEFAULT clock_timestamp();

CREATE INDEX IF NOT EXISTS orders_product_recent ON orders (product_id, seq DESC);

INSERT INTO products (id, name, price, initial_stock, current_stock) VALUES
    (1, 'Mechanical Keyboard Ultra', 4999, 100, 100),
    (2, 'Wireless Mouse Pro',        2999,  50,  50),
    (3, 'USB-C Hub 7-in-1',          1999, 200, 200),
    (4, '4K Webcam Stream',          8999,  10,  10),
    (5, 'Noise-Cancel Headphones',  14999,  30,  30)
ON CONFLICT (id) DO NOTHING;

-- Outcome codes shared with src/api/statements.rs.
--   place_order:  0 created (201), 1 replayed (200), 2 no such product (404),
--                 3 insufficient stock (409)
--   cancel_order: 0 cancelled (200), 1 already cancelled (409),
--                 2 no such order, or not this product's (404)

CREATE OR REPLACE FUNCTION place_order(
    p_product_id integer, p_key uuid, p_customer_id text, p_quantity integer)
RETURNS TABLE (
    outcome integer, id uuid, idempotency_key uuid, product_id integer,
    customer_id text, quantity integer, unit_price integer, total_price integer,
    status text, created_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_price integer;
BEGIN
    -- A replayed key returns the original order, whatever this body says.
    RETURN QUERY SELECT 1, o.id, o.idempotency_key, o.product_id, o.customer_id,
        o.quantity, o.unit_price, o.total_price, o.status, o.created_at
        FROM orders o WHERE o.idempotency_key = p_key;
    IF FOUND THEN RETURN; END IF;

    -- The row lock serialises buyers of one product; the predicate is
    -- re-checked after the lock is granted, so stock never goes negative.
    UPDATE products p SET current_stock = p.current_stock - p_quantity
        WHERE p.id = p_product_id AND p.current_stock >= p_quantity
        RETURNING p.price INTO v_price;
    IF NOT FOUND THEN
        -- While we waited for the row lock, a request with the same key may
        -- have committed (this statement sees it: READ COMMITTED).
        RETURN QUERY SELECT 1, o.id, o.idempotency_key, o.product_id, o.customer_id,
            o.quantity, o.unit_price, o.total_price, o.status, o.created_at
            FROM orders o WHERE o.idempotency_key = p_key;
        IF FOUND THEN RETURN; END IF;
        RETURN QUERY SELECT CASE WHEN EXISTS (SELECT 1 FROM products p WHERE p.id = p_product_id)
            THEN 3 ELSE 2 END, NULL::uuid, NULL::uuid, NULL::integer, NULL::text,
            NULL::integer, NULL::integer, NULL::integer, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;

    RETURN QUERY INSERT INTO orders AS o
        (idempotency_key, product_id, customer_id, quantity, unit_price, total_price, status)
        VALUES (p_key, p_product_id, p_customer_id, p_quantity, v_price, v_price * p_quantity, 'CONFIRMED')
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING 0, o.id, o.idempotency_key, o.product_id, o.customer_id,
            o.quantity, o.unit_price, o.total_price, o.status, o.created_at;
    IF FOUND THEN RETURN; END IF;

    -- A concurrent request with the same key committed first (the insert
    -- waited for it): give the units back and answer with its order.
    UPDATE products p SET current_stock = p.current_stock + p_quantity WHERE p.id = p_product_id;
    RETURN QUERY SELECT 1, o.id, o.idempotency_key, o.product_id, o.customer_id,
        o.quantity, o.unit_price, o.total_price, o.status, o.created_at
        FROM orders o WHERE o.idempotency_key = p_key;
END
$$;

-- p_product_id NULL: the request had no body (compat.md), any product.
CREATE OR REPLACE FUNCTION cancel_order(p_order_id uuid, p_product_id integer)
RETURNS TABLE (outcome integer, restored_quantity integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_product_id integer;
    v_quantity integer;
    v_status text;
BEGIN
    -- Concurrent cancels queue on the order's row lock; the losers re-check
    -- status = 'CONFIRMED', match nothing, and fall through to 409.
    UPDATE orders o SET status = 'CANCELLED'
        WHERE o.id = p_order_id AND o.status = 'CONFIRMED'
          AND (p_product_id IS NULL OR o.product_id = p_product_id)
        RETURNING o.product_id, o.quantity INTO v_product_id, v_quantity;
    IF FOUND THEN
        UPDATE products p SET current_stock = p.current_stock + v_quantity WHERE p.id = v_product_id;
        RETURN QUERY SELECT 0, v_quantity;
        RETURN;
    END IF;
    SELECT o.status, o.product_id INTO v_status, v_product_id FROM orders o WHERE o.id = p_order_id;
    IF NOT FOUND OR (p_product_id IS NOT NULL AND v_product_id <> p_product_id) THEN
        RETURN QUERY SELECT 2, NULL::integer;
    ELSE
        RETURN QUERY SELECT 1, NULL::integer;
    END IF;
END
$$;

-- Many orders in one call and one transaction (all orders one event-loop
-- turn received): one commit, one WAL flush, one round trip for all of
-- them. Each order gets exactly the single-order semantics above, and its
-- own outcome row, tagged with its 1-based position in the arrays. Orders
-- are taken in ascending product id so concurrent batches lock product rows
-- in one global order. (Two batches holding the same key for different
-- products can still deadlock; Postgres aborts one, and the API then
-- retries its orders one by one.)
CREATE OR REPLACE FUNCTION place_orders(
    p_product_ids integer[], p_keys uuid[], p_customer_ids text[], p_quantities integer[])
RETURNS TABLE (
    idx integer, outcome integer, id uuid, idempotency_key uuid, product_id integer,
    customer_id text, quantity integer, unit_price integer, total_price integer,
    status text, created_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    i integer;
BEGIN
    IF cardinality(p_keys) <> cardinality(p_product_ids)
       OR cardinality(p_keys) <> cardinality(p_customer_ids)
       OR cardinality(p_keys) <> cardinality(p_quantities) THEN
        RAISE EXCEPTION 'place_orders: arrays of different lengths';
    END IF;
    FOR i IN SELECT s FROM generate_subscripts(p_keys, 1) s ORDER BY p_product_ids[s], s LOOP
        RETURN QUERY SELECT i, o.* FROM place_order(
            p_product_ids[i], p_keys[i], p_customer_ids[i], p_quantities[i]) o;
    END LOOP;
END
$$;
