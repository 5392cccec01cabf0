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

-- pgcrypto (PostgreSQL's contrib) computes the payment webhooks'
-- HMAC-SHA256 (README, "Payments"), in a schema of its own that only the
-- owner may use: the API role reaches it only through the functions below.
CREATE SCHEMA IF NOT EXISTS crypto;
CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA crypto;
REVOKE ALL ON SCHEMA crypto FROM PUBLIC;
GRANT USAGE ON SCHEMA crypto TO flashsale_owner;

CREATE TABLE IF NOT EXISTS products (
    id            integer PRIMARY KEY,
    name          text    NOT NULL,
    price         integer NOT NULL CHECK (price >= 0),          -- cents
    initial_stock integer NOT NULL CHECK (initial_stock >= 0),
    -- The CHECK is the last line of defence against overselling: even a
    -- buggy statement cannot commit negative stock.
    current_stock integer NOT NULL CHECK (current_stock >= 0)
);
-- The sale (platform.md §1), added to databases of every age. NULL is no
-- bound: the seeded products have no window and no limit. starts_at is
-- inclusive, ends_at exclusive. held_stock: units in live holds (none yet).
ALTER TABLE products
    ADD COLUMN IF NOT EXISTS starts_at          timestamptz,
    ADD COLUMN IF NOT EXISTS ends_at            timestamptz,
    ADD COLUMN IF NOT EXISTS per_customer_limit integer CHECK (per_customer_limit > 0),
    ADD COLUMN IF NOT EXISTS held_stock         integer NOT NULL DEFAULT 0 CHECK (held_stock >= 0);
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'products_window_order') THEN
        ALTER TABLE products ADD CONSTRAINT products_window_order CHECK (ends_at > starts_at);
    END IF;
END
$$;

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
-- A customer's orders, most recent first (GET /orders?customer_id=), and
-- the units a customer holds of a product with a per-customer limit.
CREATE INDEX IF NOT EXISTS orders_customer_recent ON orders (customer_id, seq DESC);

-- Payments (platform.md §3): PENDING until the provider's first applied
-- event makes it PAID or FAILED, both final. payment_updated_at is that
-- event's occurred_at. hold_id: the hold the order bought (§2), if any.
ALTER TABLE orders
    ADD COLUMN IF NOT EXISTS payment_status     text NOT NULL DEFAULT 'PENDING'
        CHECK (payment_status IN ('PENDING', 'PAID', 'FAILED')),
    ADD COLUMN IF NOT EXISTS payment_updated_at timestamptz,
    ADD COLUMN IF NOT EXISTS hold_id            uuid;
-- One order per hold, whatever a function does: the last line of defence
-- against buying a hold twice. Only orders of holds have an entry.
CREATE UNIQUE INDEX IF NOT EXISTS orders_hold ON orders (hold_id) WHERE hold_id IS NOT NULL;

-- Holds (platform.md §2): units reserved for a customer until expires_at.
-- While HELD their units are in products.held_stock, not current_stock;
-- CONSUMED moves them to the order, RELEASED and EXPIRED back to
-- current_stock. A HELD hold past expires_at is expired already for every
-- judgement (it counts for no limit and cannot be bought or released);
-- its units return when a sweep or a request meets it, exactly once.
-- unit_price: the product's price when the hold was made (a hold locks it).
CREATE TABLE IF NOT EXISTS holds (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key uuid        NOT NULL UNIQUE,
    product_id      integer     NOT NULL REFERENCES products (id),
    customer_id     text        NOT NULL CHECK (char_length(customer_id) BETWEEN 1 AND 50),
    quantity        integer     NOT NULL CHECK (quantity BETWEEN 1 AND 5),
    unit_price      integer     NOT NULL,
    status          text        NOT NULL
        CHECK (status IN ('HELD', 'CONSUMED', 'RELEASED', 'EXPIRED')),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL CHECK (expires_at > created_at),
    -- When it stopped being HELD, and the order that bought it.
    ended_at        timestamptz,
    order_id        uuid
);
-- The sweep's work list, and a customer's live holds of a limited product:
-- both hold only HELD holds, so they stay as small as the holds in play.
CREATE INDEX IF NOT EXISTS holds_due ON holds (expires_at) WHERE status = 'HELD';
CREATE INDEX IF NOT EXISTS holds_customer_live ON holds (customer_id, product_id)
    WHERE status = 'HELD';
-- A customer's holds, most recent first (GET /holds?customer_id=).
CREATE INDEX IF NOT EXISTS holds_customer ON holds (customer_id, created_at DESC);

-- Every webhook a payment provider sent with a valid signature, for audit:
-- the raw body, what it did, when it came. An event_id is accepted once
-- (applied or not applied); later deliveries of it are stored as
-- duplicates, and an event of an unknown order does not count as seen (its
-- retry is judged again).
CREATE TABLE IF NOT EXISTS payment_events (
    seq             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        text        NOT NULL CHECK (char_length(event_id) BETWEEN 1 AND 100),
    order_id        uuid        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('succeeded', 'failed')),
    occurred_at     timestamptz NOT NULL,
    payload         text        NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    outcome         text        NOT NULL
        CHECK (outcome IN ('applied', 'not_applied', 'duplicate', 'unknown_order')),
    refund_required boolean     NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX IF NOT EXISTS payment_events_accepted ON payment_events (event_id)
    WHERE outcome IN ('applied', 'not_applied');
CREATE INDEX IF NOT EXISTS payment_events_order ON payment_events (order_id, seq);

-- Accounts (platform.md §4): a customer who signs up gets a customer_id of
-- the system's making ("acct_" and 32 hex digits), usable everywhere a
-- customer_id is. The email is unique case-insensitively; the password is
-- kept only as a bcrypt hash (pgcrypto's crypt, cost 10) of its SHA-256:
-- bcrypt reads 72 bytes at most, and a password may have 128 characters.
CREATE TABLE IF NOT EXISTS accounts (
    customer_id     text        PRIMARY KEY CHECK (char_length(customer_id) BETWEEN 1 AND 50),
    email           text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    password_hash   text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX IF NOT EXISTS accounts_email ON accounts (lower(email));

-- Sessions: a token is 256 random bits from pgcrypto (the operating
-- system's cryptographic source), given to the client once and kept here
-- only as its SHA-256. A session is live until expires_at; logging out ends
-- it at once (expires_at becomes the moment of logout). Dead sessions are
-- deleted a few at a time by every log-in (open_session), so the table
-- stays as large as the sessions in use.
CREATE TABLE IF NOT EXISTS sessions (
    token_hash      bytea       PRIMARY KEY,
    customer_id     text        NOT NULL REFERENCES accounts (customer_id),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    ended_at        timestamptz
);
CREATE INDEX IF NOT EXISTS sessions_expires ON sessions (expires_at);

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
-- Outcome codes shared with src/api/orders/place.rs and src/api/admin.rs.
--   place_order:  0 created (201), 1 replayed (200), 2 no such product (404),
--                 3 insufficient stock (409), 4 sale not started (409),
--                 5 sale ended (409), 6 customer limit reached (409)
--   cancel_order: 0 cancelled (200), 1 already cancelled (409),
--                 2 no such order, or not this product's (404)

-- The helpers below run only inside the SECURITY DEFINER functions (nobody
-- else may execute them), with those functions' pinned search_path. They
-- have no SET clause of their own so that PostgreSQL can inline them into
-- their callers' statements: a function with a SET clause is never
-- inlined, and pays a settings change on every call, on every order of
-- the sold-out path. Their bodies name tables with their schema.

-- A sale's status at the database's clock: starts_at inclusive, ends_at
-- exclusive, NULL no bound. The API's reads write the same CASE out
-- (src/api/products.rs, PRODUCT_COLUMNS): change both together.
CREATE OR REPLACE FUNCTION sale_status(p_starts_at timestamptz, p_ends_at timestamptz)
RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_starts_at > statement_timestamp() THEN 'upcoming'
        WHEN p_ends_at <= statement_timestamp() THEN 'ended'
        ELSE 'active'
    END
$$;

-- The units of a product a customer has at p_now: its CONFIRMED orders
-- (cancelled ones free the limit again) and its live holds (released,
-- consumed and past-due ones do not count; a consumed hold's units count
-- as its order). Read under the product's row lock before an order or a
-- hold of a limited product is written, so no two can both fit.
DROP FUNCTION IF EXISTS customer_units(integer, text);
CREATE OR REPLACE FUNCTION customer_units(
    p_product_id integer, p_customer_id text, p_now timestamptz)
RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT ((SELECT coalesce(sum(o.quantity), 0) FROM public.orders o
                WHERE o.customer_id = p_customer_id AND o.product_id = p_product_id
                  AND o.status = 'CONFIRMED')
          + (SELECT coalesce(sum(h.quantity), 0) FROM public.holds h
                WHERE h.customer_id = p_customer_id AND h.product_id = p_product_id
                  AND h.status = 'HELD' AND h.expires_at > p_now))::integer
$$;

-- Why an order of a product without the stock, or with a window or a
-- limit, cannot be placed at p_now, or 0 if it can, in platform.md's order:
-- no product, the window, the customer's limit, the stock.
CREATE OR REPLACE FUNCTION order_refusal(
    p_product public.products, p_customer_id text, p_quantity integer, p_now timestamptz)
RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN p_product.id IS NULL THEN 2
        WHEN p_product.starts_at > p_now THEN 4
        WHEN p_product.ends_at <= p_now THEN 5
        WHEN p_product.per_customer_limit IS NOT NULL
             AND public.customer_units(p_product.id, p_customer_id, p_now) + p_quantity
                 > p_product.per_customer_limit THEN 6
        WHEN p_product.current_stock < p_quantity THEN 3
        ELSE 0
    END
$$;

-- The order functions' rows gained payment_status: CREATE OR REPLACE
-- cannot change a function's result type, so an older version goes first
-- (its grants and owner are given again at the end of this file).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_proc
               WHERE proname IN ('place_order', 'place_orders')
                 AND pronamespace = 'public'::regnamespace
                 AND NOT 'payment_status' = ANY (proargnames)) THEN
        DROP FUNCTION IF EXISTS place_orders(integer[], uuid[], text[], integer[]);
        DROP FUNCTION IF EXISTS place_order(integer, uuid, text, integer);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION place_order(
    p_product_id integer, p_key uuid, p_customer_id text, p_quantity integer)
RETURNS TABLE (
    outcome integer, id uuid, idempotency_key uuid, product_id integer,
    customer_id text, quantity integer, unit_price integer, total_price integer,
    status text, created_at timestamptz, payment_status text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_price integer;
    v_product products;
    v_now timestamptz;
    v_refusal integer;
BEGIN
    -- A replayed key returns the original order, whatever this body says
    -- and whenever it comes (after the sale's end too).
    RETURN QUERY SELECT 1, o.id, o.idempotency_key, o.product_id, o.customer_id,
        o.quantity, o.unit_price, o.total_price, o.status, o.created_at, o.payment_status
        FROM orders o WHERE o.idempotency_key = p_key;
    IF FOUND THEN RETURN; END IF;

    -- A product without a window or a limit (every product of the
    -- challenge) with the stock: the row lock serialises buyers; the
    -- predicate is re-checked after the lock is granted, so stock never
    -- goes negative.
    UPDATE products p SET current_stock = p.current_stock - p_quantity
        WHERE p.id = p_product_id AND p.current_stock >= p_quantity
          AND p.starts_at IS NULL AND p.ends_at IS NULL AND p.per_customer_limit IS NULL
        RETURNING p.price INTO v_price;
    IF NOT FOUND THEN
        -- Anything else is judged in full, first without a lock: a refusal
        -- locks and writes nothing (sold out, a sale not open, a customer at
        -- the limit), so its commit waits for no WAL flush. The window is
        -- judged at this moment of the database's clock.
        v_now := clock_timestamp();
        SELECT * INTO v_product FROM products p WHERE p.id = p_product_id;
        v_refusal := order_refusal(v_product, p_customer_id, p_quantity, v_now);
        IF v_refusal = 0 THEN
            -- It may be placed: the row lock, then the limit and the stock
            -- again, as they are now that no other order of it can commit.
            SELECT * INTO v_product FROM products p WHERE p.id = p_product_id FOR UPDATE;
            v_refusal := order_refusal(v_product, p_customer_id, p_quantity, v_now);
        END IF;
        IF v_refusal <> 0 THEN
            -- While we waited for the row lock, a request with the same key
            -- may have committed (this statement sees it: READ COMMITTED).
            RETURN QUERY SELECT 1, o.id, o.idempotency_key, o.product_id, o.customer_id,
                o.quantity, o.unit_price, o.total_price, o.status, o.created_at, o.payment_status
                FROM orders o WHERE o.idempotency_key = p_key;
            IF FOUND THEN RETURN; END IF;
            RETURN QUERY SELECT v_refusal, NULL::uuid, NULL::uuid, NULL::integer, NULL::text,
                NULL::integer, NULL::integer, NULL::integer, NULL::text, NULL::timestamptz, NULL::text;
            RETURN;
        END IF;
        UPDATE products p SET current_stock = p.current_stock - p_quantity
            WHERE p.id = p_product_id
            RETURNING p.price INTO v_price;
    END IF;

    RETURN QUERY INSERT INTO orders AS o
        (idempotency_key, product_id, customer_id, quantity, unit_price, total_price, status)
        VALUES (p_key, p_product_id, p_customer_id, p_quantity, v_price, v_price * p_quantity, 'CONFIRMED')
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING 0, o.id, o.idempotency_key, o.product_id, o.customer_id,
            o.quantity, o.unit_price, o.total_price, o.status, o.created_at, o.payment_status;
    IF FOUND THEN RETURN; END IF;

    -- A concurrent request with the same key committed first (the insert
    -- waited for it): give the units back and answer with its order.
    UPDATE products p SET current_stock = p.current_stock + p_quantity WHERE p.id = p_product_id;
    RETURN QUERY SELECT 1, o.id, o.idempotency_key, o.product_id, o.customer_id,
        o.quantity, o.unit_price, o.total_price, o.status, o.created_at, o.payment_status
        FROM orders o WHERE o.idempotency_key = p_key;
END
$$;

-- Cancels a CONFIRMED order (of p_product_id, unless NULL) and puts its
-- units back: the one way an order is cancelled, by its buyer or by a
-- failed payment. Concurrent cancels queue on the order's row lock; the
-- losers re-check status = 'CONFIRMED' and match nothing. The units it
-- restored, or NULL when it cancelled nothing.
CREATE OR REPLACE FUNCTION cancel_confirmed_order(p_order_id uuid, p_product_id integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_product_id integer;
    v_quantity integer;
BEGIN
    UPDATE public.orders o SET status = 'CANCELLED'
        WHERE o.id = p_order_id AND o.status = 'CONFIRMED'
          AND (p_product_id IS NULL OR o.product_id = p_product_id)
        RETURNING o.product_id, o.quantity INTO v_product_id, v_quantity;
    IF FOUND THEN
        UPDATE public.products p SET current_stock = p.current_stock + v_quantity
            WHERE p.id = v_product_id;
    END IF;
    RETURN v_quantity;
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
    v_quantity := cancel_confirmed_order(p_order_id, p_product_id);
    IF v_quantity IS NOT NULL THEN
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
    status text, created_at timestamptz, payment_status text)
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
    -- The batch's moment on the database's clock: every window is judged
    -- at it, so an order is judged alike in both passes below.
    v_now timestamptz;
    -- Per-customer units of the limited product at hand: the customers met
    -- so far in this batch, and the units each has (committed + this batch).
    v_customers text[];
    v_units integer[];
    j integer;
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
    -- the stock the orders before it left: greedy, as one by one would be;
    -- for a product with a per-customer limit, also against the units its
    -- customer has, committed and in this batch. Only products an order may
    -- be placed for are locked: one without stock, an unknown one, or one
    -- whose sale is not open is not, so a batch of such refusals writes
    -- nothing and its commit waits for no WAL flush.
    v_now := clock_timestamp();
    FOR r IN
        SELECT k.i, k.product_id, k.customer_id, k.quantity, p.current_stock,
               p.per_customer_limit
            FROM unnest(p_product_ids, p_customer_ids, p_quantities, v_outcome) WITH ORDINALITY
                AS k(product_id, customer_id, quantity, outcome, i)
            JOIN products p ON p.id = k.product_id AND p.current_stock > 0
                AND (p.starts_at IS NULL OR p.starts_at <= v_now)
                AND (p.ends_at IS NULL OR p.ends_at > v_now)
            WHERE k.outcome IS NULL
            ORDER BY k.product_id, k.i
            FOR UPDATE OF p
    LOOP
        IF r.product_id IS DISTINCT FROM v_product THEN
            v_product := r.product_id;
            v_left := r.current_stock;
            v_customers := '{}';
            v_units := '{}';
        END IF;
        j := NULL;
        IF r.per_customer_limit IS NOT NULL THEN
            -- Read under the lock this loop holds: orders committed before
            -- it was granted count.
            j := array_position(v_customers, r.customer_id);
            IF j IS NULL THEN
                v_customers := v_customers || r.customer_id;
                v_units := v_units || customer_units(r.product_id, r.customer_id, v_now);
                j := cardinality(v_customers);
            END IF;
        END IF;
        IF j IS NOT NULL AND v_units[j] + r.quantity > r.per_customer_limit THEN
            v_outcome[r.i] := 6;
            v_refused := true;
        ELSIF r.quantity <= v_left THEN
            v_outcome[r.i] := 0;
            v_left := v_left - r.quantity;
            IF j IS NOT NULL THEN
                v_units[j] := v_units[j] + r.quantity;
            END IF;
        ELSE
            v_outcome[r.i] := 3;
            v_refused := true;
        END IF;
        v_decided := v_decided + 1;
    END LOOP;

    -- The orders refused above, and those not decided above (a product
    -- without stock, unknown, or whose sale is not open): while we waited
    -- for the locks a request with the same key may have committed, and
    -- then this is its replay. The others are judged as place_order
    -- judges them, without a lock.
    IF v_refused OR v_decided < n THEN
        FOR r IN
            SELECT k.i, CASE
                    WHEN o.id IS NOT NULL THEN 1
                    WHEN k.outcome IS NOT NULL THEN k.outcome
                    ELSE order_refusal(p, k.customer_id, k.quantity, v_now)
                END AS outcome
                FROM unnest(p_keys, p_product_ids, p_customer_ids, p_quantities, v_outcome)
                    WITH ORDINALITY AS k(key, product_id, customer_id, quantity, outcome, i)
                LEFT JOIN orders o ON o.idempotency_key = k.key
                LEFT JOIN products p ON p.id = k.product_id AND k.outcome IS NULL
                WHERE k.outcome IS NULL OR k.outcome <> 0
        LOOP
            -- A product with stock and an open sale is always decided
            -- above; should it have been restocked since, this order is
            -- still judged against the stock it was measured by.
            v_outcome[r.i] := CASE WHEN r.outcome = 0 THEN 3 ELSE r.outcome END;
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
            o.unit_price, o.total_price, o.status, o.created_at, o.payment_status
    )
    SELECT b.i, b.outcome, c.id, c.idempotency_key, c.product_id, c.customer_id, c.quantity,
           c.unit_price, c.total_price, c.status, c.created_at, c.payment_status
        FROM batch b JOIN created c ON c.idempotency_key = b.key
    UNION ALL
    SELECT b.i, b.outcome, o.id, o.idempotency_key, o.product_id, o.customer_id, o.quantity,
           o.unit_price, o.total_price, o.status, o.created_at, o.payment_status
        FROM batch b JOIN orders o ON o.idempotency_key = b.key
        WHERE b.outcome = 1
    UNION ALL
    SELECT b.i, b.outcome, NULL::uuid, NULL::uuid, NULL::integer, NULL::text, NULL::integer,
           NULL::integer, NULL::integer, NULL::text, NULL::timestamptz, NULL::text
        FROM batch b
        WHERE b.outcome >= 2;
END
$$;

-- Holds (platform.md §2). Outcome codes shared with src/api/holds/:
--   0 done (201 for a new hold or order, else 200), 1 replayed (200),
--   2..6 as place_order, 10 the hold is not HELD any more (consumed or
--   released: 409 hold_not_active), 11 the hold is past due (409
--   hold_expired), 12 no such hold (404), 13 another customer's hold (409
--   hold_not_yours).
-- Every function that meets a HELD hold past its expires_at expires it
-- (its units back to current_stock) under the hold's row lock, as the
-- sweep does: whoever locks it first does it, once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_type WHERE typname = 'hold_answer') THEN
        CREATE TYPE hold_answer AS (
            outcome integer, id uuid, product_id integer, customer_id text, quantity integer,
            unit_price integer, status text, expires_at timestamptz, created_at timestamptz,
            order_id uuid);
    END IF;
END
$$;

-- A hold as the API shows it: a HELD hold past due is EXPIRED, whether or
-- not its units are back yet.
CREATE OR REPLACE FUNCTION hold_row(p_outcome integer, h public.holds)
RETURNS public.hold_answer
LANGUAGE sql VOLATILE AS $$
    SELECT p_outcome, h.id, h.product_id, h.customer_id, h.quantity, h.unit_price,
        CASE WHEN h.status = 'HELD' AND h.expires_at <= clock_timestamp() THEN 'EXPIRED'
             ELSE h.status END,
        h.expires_at, h.created_at, h.order_id
$$;

-- Ends a HELD hold the caller has locked (RELEASED or EXPIRED): its units
-- go back from held_stock to current_stock.
CREATE OR REPLACE FUNCTION end_locked_hold(h public.holds, p_status text)
RETURNS public.holds
LANGUAGE plpgsql AS $$
DECLARE
    v_hold public.holds;
BEGIN
    UPDATE public.holds x SET status = p_status, ended_at = clock_timestamp()
        WHERE x.id = h.id AND x.status = 'HELD'
        RETURNING * INTO v_hold;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'end_locked_hold: hold % is not HELD', h.id;
    END IF;
    UPDATE public.products p SET current_stock = p.current_stock + h.quantity,
            held_stock = p.held_stock - h.quantity
        WHERE p.id = h.product_id;
    RETURN v_hold;
END
$$;

-- POST /holds: judged as place_order judges an order (the window, the
-- customer's limit counting live holds, the stock), at the same moment of
-- the database's clock; the units leave current_stock for held_stock.
CREATE OR REPLACE FUNCTION place_hold(
    p_product_id integer, p_key uuid, p_customer_id text, p_quantity integer,
    p_ttl_secs integer)
RETURNS SETOF hold_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_hold holds;
    v_product products;
    v_now timestamptz;
    v_refusal integer;
BEGIN
    SELECT * INTO v_hold FROM holds h WHERE h.idempotency_key = p_key;
    IF FOUND THEN
        RETURN QUERY SELECT * FROM hold_row(1, v_hold);
        RETURN;
    END IF;
    -- First without a lock: a refusal locks and writes nothing.
    v_now := clock_timestamp();
    SELECT * INTO v_product FROM products p WHERE p.id = p_product_id;
    v_refusal := order_refusal(v_product, p_customer_id, p_quantity, v_now);
    IF v_refusal = 0 THEN
        SELECT * INTO v_product FROM products p WHERE p.id = p_product_id FOR UPDATE;
        v_refusal := order_refusal(v_product, p_customer_id, p_quantity, v_now);
    END IF;
    IF v_refusal <> 0 THEN
        -- A request with the same key may have committed meanwhile.
        SELECT * INTO v_hold FROM holds h WHERE h.idempotency_key = p_key;
        IF FOUND THEN
            RETURN QUERY SELECT * FROM hold_row(1, v_hold);
        ELSE
            RETURN QUERY SELECT * FROM hold_row(v_refusal, NULL::holds);
        END IF;
        RETURN;
    END IF;
    v_now := clock_timestamp();
    INSERT INTO holds AS h (idempotency_key, product_id, customer_id, quantity, unit_price,
            status, created_at, expires_at)
        VALUES (p_key, p_product_id, p_customer_id, p_quantity, v_product.price, 'HELD',
            v_now, v_now + make_interval(secs => p_ttl_secs))
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING * INTO v_hold;
    IF NOT FOUND THEN
        -- A concurrent request with the same key committed first.
        SELECT * INTO v_hold FROM holds h WHERE h.idempotency_key = p_key;
        RETURN QUERY SELECT * FROM hold_row(1, v_hold);
        RETURN;
    END IF;
    UPDATE products p SET current_stock = p.current_stock - p_quantity,
            held_stock = p.held_stock + p_quantity
        WHERE p.id = p_product_id;
    RETURN QUERY SELECT * FROM hold_row(0, v_hold);
END
$$;

-- GET /holds/{id}: 0 and the hold, or 12. A read that meets a past-due
-- hold expires it.
CREATE OR REPLACE FUNCTION get_hold(p_hold_id uuid)
RETURNS SETOF hold_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_hold holds;
BEGIN
    SELECT * INTO v_hold FROM holds h WHERE h.id = p_hold_id;
    IF NOT FOUND THEN
        RETURN QUERY SELECT * FROM hold_row(12, NULL::holds);
        RETURN;
    END IF;
    IF v_hold.status = 'HELD' AND v_hold.expires_at <= clock_timestamp() THEN
        SELECT * INTO v_hold FROM holds h WHERE h.id = p_hold_id FOR UPDATE;
        IF v_hold.status = 'HELD' THEN
            v_hold := end_locked_hold(v_hold, 'EXPIRED');
        END IF;
    END IF;
    RETURN QUERY SELECT * FROM hold_row(0, v_hold);
END
$$;

-- POST /holds/{id}/release: 0 (the units are back), 10, 11 or 12.
CREATE OR REPLACE FUNCTION release_hold(p_hold_id uuid)
RETURNS SETOF hold_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_hold holds;
BEGIN
    SELECT * INTO v_hold FROM holds h WHERE h.id = p_hold_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT * FROM hold_row(12, NULL::holds);
    ELSIF v_hold.status = 'HELD' AND v_hold.expires_at <= clock_timestamp() THEN
        v_hold := end_locked_hold(v_hold, 'EXPIRED');
        RETURN QUERY SELECT * FROM hold_row(11, v_hold);
    ELSIF v_hold.status = 'HELD' THEN
        v_hold := end_locked_hold(v_hold, 'RELEASED');
        RETURN QUERY SELECT * FROM hold_row(0, v_hold);
    ELSIF v_hold.status = 'EXPIRED' THEN
        RETURN QUERY SELECT * FROM hold_row(11, v_hold);
    ELSE
        RETURN QUERY SELECT * FROM hold_row(10, v_hold);
    END IF;
END
$$;

-- POST /orders with hold_id: buys a live hold of p_customer_id. The order
-- takes the hold's product, quantity and price; its units move from
-- held_stock to the order (current_stock does not change). A replayed key
-- returns its original order, as place_order does. Rows as place_order's.
CREATE OR REPLACE FUNCTION consume_hold(p_hold_id uuid, p_key uuid, p_customer_id text)
RETURNS TABLE (
    outcome integer, id uuid, idempotency_key uuid, product_id integer,
    customer_id text, quantity integer, unit_price integer, total_price integer,
    status text, created_at timestamptz, payment_status text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_hold holds;
    v_order orders;
    v_refusal integer;
BEGIN
    SELECT * INTO v_order FROM orders o WHERE o.idempotency_key = p_key;
    IF NOT FOUND THEN
        -- Buyers of one hold queue here; the sweep skips a hold locked by
        -- a buyer, and a buyer waits for a sweep that locked it first.
        SELECT * INTO v_hold FROM holds h WHERE h.id = p_hold_id FOR UPDATE;
        IF NOT FOUND THEN
            v_refusal := 12;
        ELSIF v_hold.customer_id <> p_customer_id THEN
            v_refusal := 13;
        ELSIF v_hold.status = 'HELD' AND v_hold.expires_at <= clock_timestamp() THEN
            v_hold := end_locked_hold(v_hold, 'EXPIRED');
            v_refusal := 11;
        ELSIF v_hold.status = 'EXPIRED' THEN
            v_refusal := 11;
        ELSIF v_hold.status <> 'HELD' THEN
            v_refusal := 10;
        ELSE
            v_refusal := 0;
        END IF;
        IF v_refusal = 0 THEN
            -- Stock first, then the order (place_order's lock order).
            UPDATE products p SET held_stock = p.held_stock - v_hold.quantity
                WHERE p.id = v_hold.product_id;
            INSERT INTO orders AS o (idempotency_key, product_id, customer_id, quantity,
                    unit_price, total_price, status, hold_id)
                VALUES (p_key, v_hold.product_id, p_customer_id, v_hold.quantity,
                    v_hold.unit_price, v_hold.unit_price * v_hold.quantity, 'CONFIRMED',
                    v_hold.id)
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING * INTO v_order;
            IF FOUND THEN
                UPDATE holds h SET status = 'CONSUMED', ended_at = v_order.created_at,
                        order_id = v_order.id
                    WHERE h.id = v_hold.id;
                RETURN QUERY SELECT 0, v_order.id, v_order.idempotency_key,
                    v_order.product_id, v_order.customer_id, v_order.quantity,
                    v_order.unit_price, v_order.total_price, v_order.status,
                    v_order.created_at, v_order.payment_status;
                RETURN;
            END IF;
            -- A concurrent request with the same key committed an order
            -- first: the hold stays as it was, the answer is that order.
            UPDATE products p SET held_stock = p.held_stock + v_hold.quantity
                WHERE p.id = v_hold.product_id;
        END IF;
        -- While we waited for the hold's lock, a request with the same key
        -- may have committed (this statement sees it: READ COMMITTED).
        SELECT * INTO v_order FROM orders o WHERE o.idempotency_key = p_key;
        IF NOT FOUND THEN
            RETURN QUERY SELECT v_refusal, NULL::uuid, NULL::uuid, NULL::integer, NULL::text,
                NULL::integer, NULL::integer, NULL::integer, NULL::text, NULL::timestamptz,
                NULL::text;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT 1, v_order.id, v_order.idempotency_key, v_order.product_id,
        v_order.customer_id, v_order.quantity, v_order.unit_price, v_order.total_price,
        v_order.status, v_order.created_at, v_order.payment_status;
END
$$;

-- The background sweep: expires up to p_limit past-due holds, oldest due
-- first, skipping holds another transaction has locked (a buyer, a
-- release, the other instance's sweep), so two sweeps never take the same
-- hold and never wait for each other on holds. Products are locked in
-- ascending id, the order every multi-product transaction keeps. Returns
-- the holds expired and their units.
--
-- Its plans must not depend on the statistics (a burst of holds falls due
-- before autovacuum analyzes the table): the due holds are read from
-- holds_due with the moment as a value, an index condition, so the scan
-- stops at the first hold not due; the holds it took are updated by id
-- alone (the primary key; they are locked, so still HELD). Joined with the
-- statement that locked them, or filtered by status, the planner chose to
-- walk every HELD hold for each sweep, and a backlog of 20,000 took the
-- database's CPU for seconds (perf/RESULTS.md, "Hold sweeps under load").
CREATE OR REPLACE FUNCTION expire_holds(p_limit integer)
RETURNS TABLE (holds integer, units integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := clock_timestamp();
    v_due uuid[];
    v_products integer[];
    v_quantities integer[];
BEGIN
    SELECT array_agg(d.id) INTO v_due
        FROM (SELECT h.id FROM holds h
                WHERE h.status = 'HELD' AND h.expires_at <= v_now
                ORDER BY h.expires_at
                LIMIT p_limit
                FOR UPDATE SKIP LOCKED) d;
    IF v_due IS NULL THEN
        RETURN QUERY SELECT 0, 0;
        RETURN;
    END IF;
    WITH expired AS (
        UPDATE holds h SET status = 'EXPIRED', ended_at = clock_timestamp()
            WHERE h.id = ANY (v_due)
            RETURNING h.product_id, h.quantity
    )
    SELECT array_agg(e.product_id), array_agg(e.quantity)
        INTO v_products, v_quantities
        FROM expired e;
    PERFORM FROM products p WHERE p.id = ANY (v_products) ORDER BY p.id FOR UPDATE;
    UPDATE products p SET current_stock = p.current_stock + t.units,
            held_stock = p.held_stock - t.units
        FROM (SELECT k.product_id, sum(k.quantity)::integer AS units
                FROM unnest(v_products, v_quantities) AS k(product_id, quantity)
                GROUP BY k.product_id) t
        WHERE p.id = t.product_id;
    RETURN QUERY SELECT coalesce(cardinality(v_products), 0),
        coalesce((SELECT sum(q)::integer FROM unnest(v_quantities) AS q), 0);
END
$$;

-- Payments (platform.md §3). POST /payments/webhook in one call: the
-- signature, then the event. Outcome codes shared with
-- src/api/payments.rs:
--   20 the signature is wrong (401), 21 the signature is right and the
--   body was malformed (the API sent no fields; 422), 22 applied,
--   23 not applied (the order's payment is final already), 24 a
--   duplicate event_id, 25 no such order (404).
--
-- The HMAC-SHA256 of the raw body under the secret is computed here, by
-- pgcrypto, and compared as HMACs of both values under a key drawn for
-- this call: the comparison's time depends only on values an attacker
-- cannot predict, so it reveals nothing of the expected signature.
CREATE OR REPLACE FUNCTION payment_webhook(
    p_secret bytea, p_signature bytea, p_payload bytea,
    p_event_id text, p_order_id uuid, p_status text, p_occurred_at timestamptz)
RETURNS TABLE (
    outcome integer, event_id text, order_id uuid, payment_status text,
    refund_required boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_key bytea := crypto.gen_random_bytes(32);
    v_order orders;
    v_prior payment_events;
    v_outcome text;
    v_refund boolean := false;
    v_seq bigint;
BEGIN
    IF crypto.hmac(crypto.hmac(p_payload, p_secret, 'sha256'), v_key, 'sha256')
       IS DISTINCT FROM crypto.hmac(p_signature, v_key, 'sha256') THEN
        RETURN QUERY SELECT 20, p_event_id, NULL::uuid, NULL::text, NULL::boolean;
        RETURN;
    END IF;
    IF p_event_id IS NULL THEN
        RETURN QUERY SELECT 21, p_event_id, NULL::uuid, NULL::text, NULL::boolean;
        RETURN;
    END IF;
    -- Events of one order are serialised by its row lock (and so with a
    -- buyer's cancel, which takes it too).
    SELECT * INTO v_order FROM orders o WHERE o.id = p_order_id FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO payment_events (event_id, order_id, status, occurred_at, payload, outcome)
            VALUES (p_event_id, p_order_id, p_status, p_occurred_at,
                convert_from(p_payload, 'UTF8'), 'unknown_order');
        RETURN QUERY SELECT 25, p_event_id, p_order_id, NULL::text, false;
        RETURN;
    END IF;
    -- Applied only on a PENDING payment: PAID and FAILED are final, so an
    -- event older than the one applied, or contradicting it, changes
    -- nothing.
    v_outcome := CASE WHEN v_order.payment_status = 'PENDING' THEN 'applied'
                      ELSE 'not_applied' END;
    -- The event_id is accepted once: a concurrent delivery of it waits
    -- here for the first to commit, then conflicts.
    INSERT INTO payment_events AS e (event_id, order_id, status, occurred_at, payload, outcome)
        VALUES (p_event_id, p_order_id, p_status, p_occurred_at,
            convert_from(p_payload, 'UTF8'), v_outcome)
        ON CONFLICT (event_id) WHERE outcome IN ('applied', 'not_applied') DO NOTHING
        RETURNING e.seq INTO v_seq;
    IF NOT FOUND THEN
        SELECT * INTO v_prior FROM payment_events e
            WHERE e.event_id = p_event_id AND e.outcome IN ('applied', 'not_applied');
        INSERT INTO payment_events (event_id, order_id, status, occurred_at, payload, outcome)
            VALUES (p_event_id, p_order_id, p_status, p_occurred_at,
                convert_from(p_payload, 'UTF8'), 'duplicate');
        RETURN QUERY SELECT 24, p_event_id, o.id, o.payment_status, false
            FROM orders o WHERE o.id = v_prior.order_id;
        RETURN;
    END IF;
    IF v_outcome = 'not_applied' THEN
        RETURN QUERY SELECT 23, p_event_id, v_order.id, v_order.payment_status, false;
        RETURN;
    END IF;
    IF p_status = 'succeeded' THEN
        -- Paid for an order its buyer cancelled: the money must go back.
        v_refund := v_order.status = 'CANCELLED';
        UPDATE orders o SET payment_status = 'PAID', payment_updated_at = p_occurred_at
            WHERE o.id = p_order_id;
        IF v_refund THEN
            UPDATE payment_events e SET refund_required = true WHERE e.seq = v_seq;
        END IF;
    ELSE
        UPDATE orders o SET payment_status = 'FAILED', payment_updated_at = p_occurred_at
            WHERE o.id = p_order_id;
        -- The buyer's cancel path: units back once, whoever comes first.
        PERFORM cancel_confirmed_order(p_order_id, NULL);
    END IF;
    RETURN QUERY SELECT 22, p_event_id, o.id, o.payment_status, v_refund FROM orders o WHERE o.id = p_order_id;
END
$$;

-- Administration (/admin/..., platform.md §1). Each returns an outcome code
-- and the product as GET /products/{id} shows it:
--   0 done (201 for a new product, else 200), 1 the id exists (409),
--   2 no such product (404), 7 ends_at is not after starts_at (422),
--   8 the stock would pass the largest integer (422), 9 no id left (409).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_type WHERE typname = 'admin_product_answer') THEN
        CREATE TYPE admin_product_answer AS (
            outcome integer, id integer, name text, price integer, initial_stock integer,
            current_stock integer, held_stock integer, sale_status text,
            starts_at timestamptz, ends_at timestamptz, per_customer_limit integer);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION admin_product_row(p_outcome integer, p public.products)
RETURNS public.admin_product_answer
LANGUAGE sql STABLE AS $$
    SELECT p_outcome, p.id, p.name, p.price, p.initial_stock, p.current_stock, p.held_stock,
        CASE WHEN p.id IS NOT NULL THEN public.sale_status(p.starts_at, p.ends_at) END,
        p.starts_at, p.ends_at, p.per_customer_limit
$$;

-- p_id NULL: the next id after the largest. Every creation takes one lock
-- first, so two at once never pick the same id, and one without an id
-- never collides with one naming the id it would have taken.
CREATE OR REPLACE FUNCTION admin_create_product(
    p_id integer, p_name text, p_price integer, p_stock integer,
    p_starts_at timestamptz, p_ends_at timestamptz, p_per_customer_limit integer)
RETURNS SETOF admin_product_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_id bigint := p_id;
    v_product products;
BEGIN
    IF p_ends_at <= p_starts_at THEN
        RETURN QUERY SELECT * FROM admin_product_row(7, NULL::products);
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('flashsale admin_create_product'));
    IF v_id IS NULL THEN
        SELECT coalesce(max(p.id), 0)::bigint + 1 INTO v_id FROM products p;
        IF v_id > 2147483647 THEN
            RETURN QUERY SELECT * FROM admin_product_row(9, NULL::products);
            RETURN;
        END IF;
    END IF;
    INSERT INTO products AS p
        (id, name, price, initial_stock, current_stock, starts_at, ends_at, per_customer_limit)
        VALUES (v_id, p_name, p_price, p_stock, p_stock, p_starts_at, p_ends_at, p_per_customer_limit)
        ON CONFLICT (id) DO NOTHING
        RETURNING * INTO v_product;
    IF NOT FOUND THEN
        RETURN QUERY SELECT * FROM admin_product_row(1, NULL::products);
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM admin_product_row(0, v_product);
END
$$;

-- p_fields says which fields the request named (a named field may be NULL:
-- that clears a bound): 1 name, 2 price, 4 starts_at, 8 ends_at,
-- 16 per_customer_limit. The window is judged whole, against the stored
-- bound the request did not name, under the row lock.
CREATE OR REPLACE FUNCTION admin_update_product(
    p_id integer, p_fields integer, p_name text, p_price integer,
    p_starts_at timestamptz, p_ends_at timestamptz, p_per_customer_limit integer)
RETURNS SETOF admin_product_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_product products;
BEGIN
    SELECT * INTO v_product FROM products p WHERE p.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT * FROM admin_product_row(2, NULL::products);
        RETURN;
    END IF;
    IF p_fields & 1 <> 0 THEN v_product.name := p_name; END IF;
    IF p_fields & 2 <> 0 THEN v_product.price := p_price; END IF;
    IF p_fields & 4 <> 0 THEN v_product.starts_at := p_starts_at; END IF;
    IF p_fields & 8 <> 0 THEN v_product.ends_at := p_ends_at; END IF;
    IF p_fields & 16 <> 0 THEN v_product.per_customer_limit := p_per_customer_limit; END IF;
    IF v_product.ends_at <= v_product.starts_at THEN
        RETURN QUERY SELECT * FROM admin_product_row(7, NULL::products);
        RETURN;
    END IF;
    -- Orders keep the unit and total price they were placed at.
    UPDATE products p SET name = v_product.name, price = v_product.price,
            starts_at = v_product.starts_at, ends_at = v_product.ends_at,
            per_customer_limit = v_product.per_customer_limit
        WHERE p.id = p_id
        RETURNING * INTO v_product;
    RETURN QUERY SELECT * FROM admin_product_row(0, v_product);
END
$$;

-- Adds to initial_stock and current_stock together, so that
-- initial_stock = current_stock + held_stock + units of CONFIRMED orders
-- keeps holding.
CREATE OR REPLACE FUNCTION admin_restock(p_id integer, p_quantity integer)
RETURNS SETOF admin_product_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_product products;
BEGIN
    UPDATE products p SET initial_stock = p.initial_stock + p_quantity,
            current_stock = p.current_stock + p_quantity
        WHERE p.id = p_id AND p.initial_stock::bigint + p_quantity <= 2147483647
        RETURNING * INTO v_product;
    IF FOUND THEN
        RETURN QUERY SELECT * FROM admin_product_row(0, v_product);
    ELSIF EXISTS (SELECT FROM products p WHERE p.id = p_id) THEN
        RETURN QUERY SELECT * FROM admin_product_row(8, NULL::products);
    ELSE
        RETURN QUERY SELECT * FROM admin_product_row(2, NULL::products);
    END IF;
END
$$;

-- Accounts and sessions (platform.md §4; README, "Accounts and sessions").
-- A session's failures are errors with SQLSTATEs of our own, so that any
-- statement can act as a session's customer in one round trip
-- (`place_order(act_as($1, $2), ...)`) and fail as a whole when it may not:
--   FS401 the token is not a live session (401 invalid_session)
--   FS403 the session's customer is not the one the request names, or does
--         not own the order or hold it acts on (403 forbidden)
-- Outcome codes: create_account 0 created (201), 40 email taken (409);
-- open_session 0 opened (201), 41 wrong email or password (401).

-- The password as bcrypt sees it: its SHA-256 in hex (64 bytes, under
-- bcrypt's 72), so every character of a long password counts.
CREATE OR REPLACE FUNCTION password_input(p_password text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(crypto.digest(convert_to(p_password, 'UTF8'), 'sha256'), 'hex')
$$;

-- POST /customers. The hash is computed before the email is looked at, so
-- a taken email costs (and takes) as long as a new one.
CREATE OR REPLACE FUNCTION create_account(p_email text, p_password text)
RETURNS TABLE (outcome integer, customer_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_hash text := crypto.crypt(password_input(p_password), crypto.gen_salt('bf', 10));
    v_id text := 'acct_' || replace(gen_random_uuid()::text, '-', '');
BEGIN
    INSERT INTO accounts (customer_id, email, password_hash)
        VALUES (v_id, p_email, v_hash)
        ON CONFLICT ((lower(email))) DO NOTHING;
    IF FOUND THEN
        RETURN QUERY SELECT 0, v_id;
    ELSE
        RETURN QUERY SELECT 40, NULL::text;
    END IF;
END
$$;

-- POST /sessions. An unknown email is checked against a fixed hash of the
-- same cost, so it takes as long as a wrong password and gets the same
-- answer. Every log-in also deletes up to 10 sessions dead for an hour.
CREATE OR REPLACE FUNCTION open_session(p_email text, p_password text, p_ttl_secs integer)
RETURNS TABLE (outcome integer, customer_id text, token text, expires_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_account accounts;
    v_hash text;
    v_token text;
    v_now timestamptz := clock_timestamp();
    v_expires timestamptz := v_now + make_interval(secs => p_ttl_secs);
BEGIN
    DELETE FROM sessions s WHERE s.token_hash IN (
        SELECT d.token_hash FROM sessions d
        WHERE d.expires_at < v_now - interval '1 hour' LIMIT 10);
    SELECT * INTO v_account FROM accounts a WHERE lower(a.email) = lower(p_email);
    v_hash := coalesce(v_account.password_hash,
        '$2a$10$Xl0yhvzLIaJCDdKBS0Lld.ksK7c2Zytg/ZKFdtIYYQUxvUCqmZ4Ba');
    IF crypto.crypt(password_input(p_password), v_hash) IS DISTINCT FROM v_hash
            OR v_account.customer_id IS NULL THEN
        RETURN QUERY SELECT 41, NULL::text, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    v_token := encode(crypto.gen_random_bytes(32), 'hex');
    INSERT INTO sessions (token_hash, customer_id, created_at, expires_at)
        VALUES (crypto.digest(v_token, 'sha256'), v_account.customer_id, v_now, v_expires);
    RETURN QUERY SELECT 0, v_account.customer_id, v_token, v_expires;
END
$$;

-- The customer of a live session, or FS401.
CREATE OR REPLACE FUNCTION session_customer(p_token text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_customer text;
BEGIN
    SELECT s.customer_id INTO v_customer FROM sessions s
        WHERE s.token_hash = crypto.digest(p_token, 'sha256')
          AND s.expires_at > clock_timestamp();
    IF v_customer IS NULL THEN
        RAISE EXCEPTION 'not a live session' USING ERRCODE = 'FS401';
    END IF;
    RETURN v_customer;
END
$$;

-- The customer a request with a session acts as: the session's, when the
-- request names none or names the same; FS403 when it names another.
CREATE OR REPLACE FUNCTION act_as(p_token text, p_customer_id text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_customer text := session_customer(p_token);
BEGIN
    IF p_customer_id IS NOT NULL AND p_customer_id <> v_customer THEN
        RAISE EXCEPTION 'another customer''s request' USING ERRCODE = 'FS403';
    END IF;
    RETURN v_customer;
END
$$;

-- GET /sessions/current: who the session is.
CREATE OR REPLACE FUNCTION get_session(p_token text)
RETURNS TABLE (customer_id text, email text, expires_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT a.customer_id, a.email, s.expires_at
        FROM sessions s JOIN accounts a ON a.customer_id = s.customer_id
        WHERE s.token_hash = crypto.digest(p_token, 'sha256')
          AND s.expires_at > clock_timestamp();
    IF NOT FOUND THEN
        RAISE EXCEPTION 'not a live session' USING ERRCODE = 'FS401';
    END IF;
END
$$;

-- DELETE /sessions/current: the session ends now.
CREATE OR REPLACE FUNCTION end_session(p_token text)
RETURNS TABLE (customer_id text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_now timestamptz := clock_timestamp();
BEGIN
    RETURN QUERY UPDATE sessions s SET expires_at = v_now, ended_at = v_now
        WHERE s.token_hash = crypto.digest(p_token, 'sha256') AND s.expires_at > v_now
        RETURNING s.customer_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'not a live session' USING ERRCODE = 'FS401';
    END IF;
END
$$;

-- GET /holds?customer_id=: a customer's last 50 holds, most recent first,
-- a past-due HELD one shown EXPIRED (it is, for every judgement; its units
-- return when a sweep or a request meets it). A read: nothing changes.
CREATE OR REPLACE FUNCTION customer_holds(p_customer_id text)
RETURNS TABLE (
    id uuid, product_id integer, customer_id text, quantity integer, unit_price integer,
    status text, expires_at timestamptz, created_at timestamptz, order_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT h.id, h.product_id, h.customer_id, h.quantity, h.unit_price,
           CASE WHEN h.status = 'HELD' AND h.expires_at <= clock_timestamp()
                THEN 'EXPIRED' ELSE h.status END,
           h.expires_at, h.created_at, h.order_id
    FROM holds h WHERE h.customer_id = p_customer_id
    ORDER BY h.created_at DESC LIMIT 50
$$;

-- POST /orders/{id}/cancel with a session: only the order's own customer
-- (act_as of its owner: FS403 for another's; an unknown order has none and
-- is cancel_order's 404).
CREATE OR REPLACE FUNCTION cancel_order_as(p_token text, p_order_id uuid, p_product_id integer)
RETURNS TABLE (outcome integer, restored_quantity integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM act_as(p_token, (SELECT o.customer_id FROM orders o WHERE o.id = p_order_id));
    RETURN QUERY SELECT * FROM cancel_order(p_order_id, p_product_id);
END
$$;

-- POST /holds/{id}/release with a session: only the hold's own customer.
CREATE OR REPLACE FUNCTION release_hold_as(p_token text, p_hold_id uuid)
RETURNS SETOF hold_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    PERFORM act_as(p_token, (SELECT h.customer_id FROM holds h WHERE h.id = p_hold_id));
    RETURN QUERY SELECT * FROM release_hold(p_hold_id);
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
ALTER FUNCTION sale_status(timestamptz, timestamptz) OWNER TO flashsale_owner;
ALTER FUNCTION customer_units(integer, text, timestamptz) OWNER TO flashsale_owner;
ALTER FUNCTION order_refusal(products, text, integer, timestamptz) OWNER TO flashsale_owner;
ALTER TYPE admin_product_answer OWNER TO flashsale_owner;
ALTER FUNCTION admin_product_row(integer, products) OWNER TO flashsale_owner;
ALTER FUNCTION admin_create_product(integer, text, integer, integer, timestamptz, timestamptz, integer)
    OWNER TO flashsale_owner;
ALTER FUNCTION admin_update_product(integer, integer, text, integer, timestamptz, timestamptz, integer)
    OWNER TO flashsale_owner;
ALTER FUNCTION admin_restock(integer, integer) OWNER TO flashsale_owner;
ALTER TABLE holds OWNER TO flashsale_owner;
ALTER TABLE payment_events OWNER TO flashsale_owner;
ALTER FUNCTION cancel_confirmed_order(uuid, integer) OWNER TO flashsale_owner;
ALTER TYPE hold_answer OWNER TO flashsale_owner;
ALTER FUNCTION hold_row(integer, holds) OWNER TO flashsale_owner;
ALTER FUNCTION end_locked_hold(holds, text) OWNER TO flashsale_owner;
ALTER FUNCTION place_hold(integer, uuid, text, integer, integer) OWNER TO flashsale_owner;
ALTER FUNCTION get_hold(uuid) OWNER TO flashsale_owner;
ALTER FUNCTION release_hold(uuid) OWNER TO flashsale_owner;
ALTER FUNCTION consume_hold(uuid, uuid, text) OWNER TO flashsale_owner;
ALTER FUNCTION expire_holds(integer) OWNER TO flashsale_owner;
ALTER FUNCTION payment_webhook(bytea, bytea, bytea, text, uuid, text, timestamptz)
    OWNER TO flashsale_owner;
ALTER TABLE accounts OWNER TO flashsale_owner;
ALTER TABLE sessions OWNER TO flashsale_owner;
ALTER FUNCTION password_input(text) OWNER TO flashsale_owner;
ALTER FUNCTION create_account(text, text) OWNER TO flashsale_owner;
ALTER FUNCTION open_session(text, text, integer) OWNER TO flashsale_owner;
ALTER FUNCTION session_customer(text) OWNER TO flashsale_owner;
ALTER FUNCTION act_as(text, text) OWNER TO flashsale_owner;
ALTER FUNCTION get_session(text) OWNER TO flashsale_owner;
ALTER FUNCTION end_session(text) OWNER TO flashsale_owner;
ALTER FUNCTION cancel_order_as(text, uuid, integer) OWNER TO flashsale_owner;
ALTER FUNCTION release_hold_as(text, uuid) OWNER TO flashsale_owner;
ALTER FUNCTION customer_holds(text) OWNER TO flashsale_owner;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
-- Functions created later (by whoever applies this file, or as the owner)
-- are not executable by everyone either.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE flashsale_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- The API's plain SELECTs: get_product, list_sales, get_order, list_orders,
-- list_customer_orders.
GRANT SELECT ON products, orders TO flashsale_api;
-- Its writes: place_order, place_orders, cancel_order, the administration
-- (the API checks ADMIN_TOKEN before it calls them), the holds and their
-- sweep, the payment webhook (which checks the signature itself), and the
-- accounts and sessions (act_as, called inside the statements that act as
-- a session's customer, is the only way a token becomes a customer). The
-- holds and payment events have no plain read: a read of a hold may expire
-- it, and the events are the operator's.
GRANT EXECUTE ON FUNCTION
    place_order(integer, uuid, text, integer),
    cancel_order(uuid, integer),
    place_orders(integer[], uuid[], text[], integer[]),
    admin_create_product(integer, text, integer, integer, timestamptz, timestamptz, integer),
    admin_update_product(integer, integer, text, integer, timestamptz, timestamptz, integer),
    admin_restock(integer, integer),
    place_hold(integer, uuid, text, integer, integer),
    get_hold(uuid),
    release_hold(uuid),
    consume_hold(uuid, uuid, text),
    expire_holds(integer),
    payment_webhook(bytea, bytea, bytea, text, uuid, text, timestamptz),
    create_account(text, text),
    open_session(text, text, integer),
    act_as(text, text),
    get_session(text),
    end_session(text),
    cancel_order_as(text, uuid, integer),
    release_hold_as(text, uuid),
    customer_holds(text)
    TO flashsale_api;
