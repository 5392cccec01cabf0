//! What the API's database role may do, on a throw-away cluster with
//! `sql/init.sql` applied: connect, read products and orders, call the
//! order functions (which write as their owner); and what it may not: write
//! a table, create anything, run superuser-only commands, read the password
//! table, become the owner. That every statement the API prepares works as
//! this role is shown by every API test (their servers connect as it).

mod support;

use support::cluster::{Auth, PgCluster};
use support::server::{apply_schema, new_uuid_v4, API_PASSWORD, API_USER};

fn cluster() -> PgCluster {
    let cluster = PgCluster::start(Auth::Scram);
    apply_schema(&cluster);
    cluster
}

fn as_api(cluster: &PgCluster, sql: &str) -> Result<String, String> {
    cluster.try_psql_as(API_USER, API_PASSWORD, sql)
}

#[test]
fn the_api_role_reads_and_writes_only_through_the_functions() {
    let cluster = cluster();
    assert_eq!(
        as_api(&cluster, "SELECT current_user").as_deref(),
        Ok(API_USER)
    );
    let key = new_uuid_v4();
    let placed = as_api(
        &cluster,
        &format!("SELECT outcome, status FROM place_order(1, '{key}', 'c', 2)"),
    );
    assert_eq!(placed.as_deref(), Ok("0|CONFIRMED"));
    let id = as_api(
        &cluster,
        &format!("SELECT id FROM orders WHERE idempotency_key = '{key}'"),
    )
    .expect("the API reads orders");
    let cancelled = as_api(
        &cluster,
        &format!("SELECT outcome, restored_quantity FROM cancel_order('{id}', 1)"),
    );
    assert_eq!(cancelled.as_deref(), Ok("0|2"));
    let batch = as_api(
        &cluster,
        &format!(
            "SELECT string_agg(outcome::text, ',' ORDER BY idx) FROM place_orders(\
             ARRAY[1, 2], ARRAY['{}', '{}']::uuid[], ARRAY['a', 'b'], ARRAY[1, 1])",
            new_uuid_v4(),
            new_uuid_v4()
        ),
    );
    assert_eq!(batch.as_deref(), Ok("0,0"));
    assert_eq!(
        as_api(&cluster, "SELECT current_stock FROM products WHERE id = 4").as_deref(),
        Ok("10")
    );
    // The functions wrote as their owner, and the orders are there.
    assert_eq!(
        cluster.psql("SELECT count(*) FROM orders WHERE customer_id IN ('a', 'b', 'c')"),
        "3"
    );
}

#[test]
fn the_api_role_is_refused_everything_else() {
    let cluster = cluster();
    let order = "INSERT INTO orders (idempotency_key, product_id, customer_id, quantity, \
                 unit_price, total_price, status) \
                 VALUES (gen_random_uuid(), 1, 'x', 1, 0, 0, 'CONFIRMED')";
    for sql in [
        "INSERT INTO products VALUES (900, 'free', 0, 1, 1)",
        "UPDATE products SET current_stock = 1000000",
        "DELETE FROM products",
        order,
        "UPDATE orders SET status = 'CANCELLED'",
        "DELETE FROM orders",
        "TRUNCATE orders",
        "CREATE TABLE planted (i int)",
        "CREATE FUNCTION public.planted() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE TEMP TABLE orders (i int)",
        "CREATE SCHEMA planted",
        "COPY (SELECT 1) TO PROGRAM 'true'",
        "SELECT rolpassword FROM pg_authid",
        "SET ROLE flashsale_owner",
        "ALTER ROLE flashsale_api SUPERUSER",
        "CREATE ROLE planted LOGIN",
    ] {
        let error = as_api(&cluster, sql).expect_err(sql);
        assert!(
            error.contains("permission denied") || error.contains("must be superuser"),
            "{sql}: {error}"
        );
    }
    assert_eq!(
        cluster.psql("SELECT sum(current_stock) FROM products"),
        "390"
    );
}

#[test]
fn the_order_functions_run_as_their_owner_with_a_pinned_search_path() {
    let cluster = cluster();
    let functions = cluster.psql(
        "SELECT string_agg(p.proname || ' ' || pg_get_userbyid(p.proowner) || ' ' || \
         p.prosecdef || ' ' || coalesce(array_to_string(p.proconfig, ';'), '-'), ',' \
         ORDER BY p.proname) \
         FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace",
    );
    // The API calls the definers. The helpers run only inside them, with
    // their pinned path (no SET of their own, so that they are inlined),
    // and nobody else may execute them (below).
    let definer = "flashsale_owner true search_path=pg_catalog, public, pg_temp";
    let helper = "flashsale_owner false -";
    assert_eq!(
        functions,
        format!(
            "act_as {definer},admin_create_product {definer},admin_product_row {helper},\
             admin_restock {definer},admin_update_product {definer},\
             cancel_confirmed_order {helper},cancel_order {definer},\
             cancel_order_as {definer},consume_hold {definer},create_account {definer},\
             customer_holds {definer},customer_units {helper},end_locked_hold {helper},end_session {definer},\
             expire_holds {definer},get_hold {definer},get_session {definer},\
             hold_row {helper},open_session {definer},order_refusal {helper},\
             password_input {helper},payment_webhook {definer},place_hold {definer},\
             place_order {definer},place_orders {definer},release_hold {definer},\
             release_hold_as {definer},sale_status {helper},session_customer {definer}"
        )
    );
    let executable_by_others = cluster.psql(
        "SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace \
           AND p.proname IN ('admin_product_row', 'cancel_confirmed_order', 'customer_units', \
             'end_locked_hold', 'hold_row', 'order_refusal', 'sale_status', \
             'password_input', 'session_customer') \
           AND (p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) a \
             WHERE a.grantee <> p.proowner AND a.privilege_type = 'EXECUTE'))",
    );
    assert_eq!(
        executable_by_others, "0",
        "only their owner runs the helpers"
    );
    let owners = cluster.psql(
        "SELECT string_agg(DISTINCT pg_get_userbyid(c.relowner), ',') FROM pg_class c \
         WHERE c.relnamespace = 'public'::regnamespace",
    );
    assert_eq!(owners, "flashsale_owner", "tables, sequence and indexes");
    // pgcrypto's functions (the webhook's HMAC) are out of the API role's
    // reach: only through payment_webhook.
    let crypto = as_api(&cluster, "SELECT crypto.gen_random_bytes(4)").expect_err("crypto");
    assert!(crypto.contains("permission denied"), "{crypto}");
}

#[test]
fn the_api_role_executes_only_the_functions_it_calls() {
    let cluster = cluster();
    let executable = cluster.psql(
        "SELECT string_agg(p.proname, ',' ORDER BY p.proname) FROM pg_proc p \
         WHERE p.pronamespace = 'public'::regnamespace \
           AND has_function_privilege('flashsale_api', p.oid, 'EXECUTE')",
    );
    assert_eq!(
        executable,
        "act_as,admin_create_product,admin_restock,admin_update_product,cancel_order,\
         cancel_order_as,consume_hold,create_account,customer_holds,end_session,expire_holds,get_hold,\
         get_session,open_session,payment_webhook,place_hold,place_order,place_orders,\
         release_hold,release_hold_as"
    );
}

#[test]
fn applying_init_sql_again_keeps_the_roles_and_a_rotated_password() {
    let cluster = cluster();
    cluster.set_password(API_USER, "rotated");
    cluster.apply_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql/init.sql"));
    assert_eq!(
        cluster
            .try_psql_as(API_USER, "rotated", "SELECT current_user")
            .as_deref(),
        Ok(API_USER)
    );
    assert!(as_api(&cluster, "SELECT 1").is_err(), "the old password");
}
