-- flashsale schema, seed data, the functions the API calls, and who may do
-- what.
--
-- Every API operation is ONE statement calling one function below, run in its
-- own implicit transaction: the stock check-and-decrement, the order insert
-- and the idempotency check commit together or not at all. The API keeps no
-- authoritative state. Idempotent: safe to apply to an existing database.
-- Applied by a superuser (the image's POSTGRES_USER, perf/stack's pg_user,
-- the tests' postgres), in the database the API uses.
--
-- Roles (README, "Database roles"):
--   flashsale_owner  NOLOGIN; owns the tables, their sequence and the
--                    functions. Nobody logs in as it.
--   flashsale_api    LOGIN, the user of the API's DATABASE_URL. May connect,
--                    SELECT products and orders (the API's plain reads) and
--                    EXECUTE the order functions, which run as their owner
--                    (SECURITY DEFINER) and are the only way to write. It
--                    cannot write a table, create anything (not even a
--                    temporary table), or run superuser-only commands.
-- Its password is stored as the SCRAM verifier of the password in the
-- DATABASE_URL of docker-compose.yml (a verifier is not a password: it
-- cannot log in); tests/deploy_checks.rs checks that the two agree. The role
-- is created once: a password rotated since (README) survives re-applying
-- this file.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'flashsale_owner') THEN
        CREATE ROLE flashsale_owner NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'flashsale_api') THEN
        CREATE ROLE flashsale_api LOGIN PASSWORD
            'SCRAM-SHA-256$4096:erQAPck8Mxb4iN8TAGrdHw==$nLPt91nPAX0E3yHPVkf8QQu82oXnrDpFj3oezOpc8cA=:7dxBaw/zmJf5aRKjS8c93fT5QEkFQpNovTUozMJ9fHE=';
    END IF;
END
$$;
-- Whatever the roles were made into since, they are these again.
ALTER ROLE flashsale_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE flashsale_api LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

-- Only the API role (and superusers) may connect, and nobody but superusers
-- creates temporary objects: PUBLIC's default CONNECT and TEMPORARY go. A
-- role without TEMPORARY has no pg_temp schema, so it cannot plant a table
-- that a function's unqualified name would find before ours.
DO $$
BEGIN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO flashsale_api', current_database());
END
$$;
-- PostgreSQL 15 already creates schema public without CREATE for PUBLIC;
-- older databases (and restored dumps) may still have it.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO flashsale_owner, flashsale_api;

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
    -- share one timestamp and ties must not be broken by chance. Unique by
    -- construction (an identity column nothing overrides), so no unique
    -- index: orders_product_recent is the index that reads it.
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
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
-- Databases created before the default changed, and before seq lost its
-- unique index (one index less to write per order).
ALTER TABLE orders ALTER COLUMN created_at SET DEFAULT clock_timestamp();
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_seq_key;

CREATE INDEX IF NOT EXISTS orders_product_recent ON orders (product_id, seq DESC);

INSERT INTO products (id, name, price, initial_stock, current_stock) VALUES
    (1, 'Mechanical Keyboard Ultra', 4999, 100, 100),
    (2, 'Wireless Mouse Pro',        2999,  50,  50),
    (3, 'USB-C Hub 7-in-1',          1999, 200, 200),
    (4, '4K Webcam Stream',          8999,  10,  10),
    (5, 'Noise-Cancel Headphones',  14999,  30,  30)
ON CONFLICT (id) DO NOTHING;

-- The functions run as their owner (SECURITY DEFINER): they are the only way
-- the API role writes. Their search_path is pinned, with pg_temp last, so
-- that no caller's search_path or temporary object decides what a name in
-- their bodies means (PostgreSQL's "Writing SECURITY DEFINER Functions
-- Safely").
--
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
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
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
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
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

-- Many orders in one call and one transaction (the orders an API instance
-- gathered while its previous batches were at the database): one commit,
-- one WAL flush, one round trip for all of them, and a few statements for
-- the whole batch instead of a function call per order. Each order gets
-- exactly the answer place_order would give it called order by order in
-- ascending product id (ties by position), with its own outcome row tagged
-- with its 1-based position in the arrays: replays return the original
-- order, each order is judged against the stock the orders before it left
-- (one that does not fit does not stop a later, smaller one), and product
-- rows are locked in ascending id, one global order, so batches never
-- deadlock on products. tests/order_batches.rs holds it against the
-- one-by-one reference.
CREATE OR REPLACE FUNCTION place_orders(
    p_product_ids integer[], p_keys uuid[], p_customer_ids text[], p_quantities integer[])
RETURNS TABLE (
    idx integer, outcome integer, id uuid, idempotency_key uuid, product_id integer,
    customer_id text, quantity integer, unit_price integer, total_price integer,
    status text, created_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    n integer := cardinality(p_keys);
    -- Per position: NULL undecided, else the outcome code of place_order.
    v_outcome integer[];
    v_set_based boolean;
    -- Orders with an outcome so far.
    v_decided integer;
    v_refused boolean := false;
    v_product integer;
    v_left integer;
    r record;
    i integer;
BEGIN
    IF n <> cardinality(p_product_ids) OR n <> cardinality(p_customer_ids)
       OR n <> cardinality(p_quantities) THEN
        RAISE EXCEPTION 'place_orders: arrays of different lengths';
    END IF;
    -- Replays answer with their original order, whatever this body says,
    -- without taking a lock. One key twice in a batch: each must see what
    -- the other did, so these rare batches (and a batch of one) go order by
    -- order.
    SELECT array_agg(CASE WHEN o.id IS NOT NULL THEN 1 END ORDER BY k.i),
           count(DISTINCT k.key) = n AND n > 1, count(o.id)
        INTO v_outcome, v_set_based, v_decided
        FROM unnest(p_keys) WITH ORDINALITY AS k(key, i)
        LEFT JOIN orders o ON o.idempotency_key = k.key;
    IF NOT v_set_based THEN
        -- Every product first, in ascending id, as below: no other batch
        -- can hold a key this one needs while waiting for its products.
        PERFORM FROM products p WHERE p.id = ANY(p_product_ids) ORDER BY p.id FOR UPDATE;
        FOR i IN SELECT s FROM generate_subscripts(p_keys, 1) s ORDER BY p_product_ids[s], s LOOP
            RETURN QUERY SELECT i, o.* FROM place_order(
                p_product_ids[i], p_keys[i], p_customer_ids[i], p_quantities[i]) o;
        END LOOP;
        RETURN;
    END IF;

    -- The other orders, product by product in ascending id (one global lock
    -- order, so batches never deadlock on products), each judged against
    -- the stock the orders before it left: greedy, as one by one would be.
    -- A product without stock is not locked (nor is an unknown one): a
    -- batch of sold-out orders writes nothing, so its commit waits for no
    -- WAL flush.
    FOR r IN
        SELECT k.i, k.product_id, k.quantity, p.current_stock
            FROM unnest(p_product_ids, p_quantities, v_outcome) WITH ORDINALITY
                AS k(product_id, quantity, outcome, i)
            JOIN products p ON p.id = k.product_id AND p.current_stock > 0
            WHERE k.outcome IS NULL
            ORDER BY k.product_id, k.i
            FOR UPDATE OF p
    LOOP
        IF r.product_id IS DISTINCT FROM v_product THEN
            v_product := r.product_id;
            v_left := r.current_stock;
        END IF;
        IF r.quantity <= v_left THEN
            v_outcome[r.i] := 0;
            v_left := v_left - r.quantity;
        ELSE
            v_outcome[r.i] := 3;
            v_refused := true;
        END IF;
        v_decided := v_decided + 1;
    END LOOP;

    -- The orders refused above, and those of products without stock or
    -- unknown (not decided above): while we waited for the locks a request
    -- with the same key may have committed, and then this is its replay.
    IF v_refused OR v_decided < n THEN
        FOR r IN
            SELECT k.i, CASE
                    WHEN o.id IS NOT NULL THEN 1
                    WHEN k.outcome = 3 OR EXISTS (SELECT FROM products p WHERE p.id = k.product_id)
                        THEN 3
                    ELSE 2
                END AS outcome
                FROM unnest(p_keys, p_product_ids, v_outcome) WITH ORDINALITY
                    AS k(key, product_id, outcome, i)
                LEFT JOIN orders o ON o.idempotency_key = k.key
                WHERE k.outcome IS NULL OR k.outcome = 3
        LOOP
            v_outcome[r.i] := r.outcome;
        END LOOP;
    END IF;

    -- Stock leaves and orders are written in one statement. Keys are
    -- inserted in ascending order, so two batches waiting on each other's
    -- keys wait in one order. A key a concurrent request committed
    -- meanwhile fails the insert (unique violation): the whole batch rolls
    -- back and the API sends its orders again one by one.
    RETURN QUERY
    WITH batch AS (
        SELECT k.i::integer AS i, k.product_id, k.key, k.customer_id, k.quantity, k.outcome
            FROM unnest(p_product_ids, p_keys, p_customer_ids, p_quantities, v_outcome)
                WITH ORDINALITY AS k(product_id, key, customer_id, quantity, outcome, i)
    ),
    taken AS (
        UPDATE products p SET current_stock = p.current_stock - t.units
            FROM (SELECT b.product_id, sum(b.quantity) AS units FROM batch b
                  WHERE b.outcome = 0 GROUP BY b.product_id) t
            WHERE p.id = t.product_id
            RETURNING p.id, p.price
    ),
    created AS (
        INSERT INTO orders AS o
            (idempotency_key, product_id, customer_id, quantity, unit_price, total_price, status)
        SELECT b.key, b.product_id, b.customer_id, b.quantity, t.price, t.price * b.quantity,
               'CONFIRMED'
            FROM batch b JOIN taken t ON t.id = b.product_id
            WHERE b.outcome = 0
            ORDER BY b.key
        RETURNING o.id, o.idempotency_key, o.product_id, o.customer_id, o.quantity,
            o.unit_price, o.total_price, o.status, o.created_at
    )
    SELECT b.i, b.outcome, c.id, c.idempotency_key, c.product_id, c.customer_id, c.quantity,
           c.unit_price, c.total_price, c.status, c.created_at
        FROM batch b JOIN created c ON c.idempotency_key = b.key
    UNION ALL
    SELECT b.i, b.outcome, o.id, o.idempotency_key, o.product_id, o.customer_id, o.quantity,
           o.unit_price, o.total_price, o.status, o.created_at
        FROM batch b JOIN orders o ON o.idempotency_key = b.key
        WHERE b.outcome = 1
    UNION ALL
    SELECT b.i, b.outcome, NULL::uuid, NULL::uuid, NULL::integer, NULL::text, NULL::integer,
           NULL::integer, NULL::integer, NULL::text, NULL::timestamptz
        FROM batch b
        WHERE b.outcome IN (2, 3);
END
$$;

-- Ownership and privileges, for objects created above or by earlier
-- versions of this file (CREATE OR REPLACE keeps a function's owner and
-- grants; ALTER ... OWNER is a no-op when it already is).
ALTER TABLE products OWNER TO flashsale_owner;
-- Also its identity sequence and its indexes.
ALTER TABLE orders OWNER TO flashsale_owner;
ALTER FUNCTION place_order(integer, uuid, text, integer) OWNER TO flashsale_owner;
ALTER FUNCTION cancel_order(uuid, integer) OWNER TO flashsale_owner;
ALTER FUNCTION place_orders(integer[], uuid[], text[], integer[]) OWNER TO flashsale_owner;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
-- Functions created later (by whoever applies this file, or as the owner)
-- are not executable by everyone either.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE flashsale_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- The API's plain SELECTs: get_product, get_order, list_orders.
GRANT SELECT ON products, orders TO flashsale_api;
-- Its writes: place_order, place_orders, cancel_order.
GRANT EXECUTE ON FUNCTION
    place_order(integer, uuid, text, integer),
    cancel_order(uuid, integer),
    place_orders(integer[], uuid[], text[], integer[])
    TO flashsale_api;
