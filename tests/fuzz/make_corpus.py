#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into corpus/<target>/: a
handful of valid inputs (requests from the spec, order bodies, backend
messages) for the fuzzer to mutate. Deterministic; re-run it after changing
a seed, and commit what it writes. Python's standard library only."""

import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"

KEY = "550e8400-e29b-41d4-a716-446655440000"
ORDER_ID = "54b40303-b83a-4c37-86ed-716e630e4337"

ORDER = (
    '{\n  "product_id": 1,\n  "idempotency_key": "%s",\n'
    '  "customer_id": "customer_42",\n  "quantity": 2\n}' % KEY
).encode()
# Escapes everywhere the reader allows them, extra members of every kind.
ORDER_ESCAPED = (
    '{"quantity":5,"customer_id":"\\u00e9\\ud83d\\ude00 \\"q\\" \\\\ \\/ \\b\\f\\n\\r\\t \u4e2d",'
    '"extra":[1,-0,2.5e-3,true,false,null,{"a":[]}],'
    '"idempotency_key":"\\u0035%s","product_id":2}' % KEY.upper()[1:]
).encode()
CANCEL = b'{"product_id": 1}'


def request(head: str, body: bytes = b"") -> bytes:
    return head.replace("\n", "\r\n").encode() + body


def post(target: str, body: bytes, extra: str = "") -> bytes:
    head = "POST %s HTTP/1.1\nHost: localhost\nContent-Type: application/json\n%sContent-Length: %d\n\n"
    return request(head % (target, extra, len(body)), body)


def chunked(body: bytes) -> bytes:
    half = len(body) // 2
    parts = [body[:half], body[half:]]
    out = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
    return out + b"0\r\nX-Trailer: t\r\n\r\n"


def http_request():
    yield "get_product", request("GET /products/1 HTTP/1.1\nHost: localhost\n\n")
    yield "post_order", post("/orders", ORDER)
    yield "post_order_chunked", request(
        "POST /orders HTTP/1.1\nHost: localhost\nTransfer-Encoding: chunked\n\n", chunked(ORDER)
    )
    yield "cancel_expect_continue", post(
        "/orders/%s/cancel" % ORDER_ID, CANCEL, "Expect: 100-continue\n"
    )
    yield "list_orders_http10", request(
        "GET /orders?product_id=1 HTTP/1.0\nConnection: keep-alive\n\n"
    )
    yield "pipelined", (
        request("GET /health HTTP/1.1\nHost: a\n\n")
        + request("GET /orders/%s HTTP/1.1\nHost: a\n\n" % ORDER_ID)
        + post("/orders", ORDER_ESCAPED, "Connection: close\n")
    )


def json_object():
    yield "order", ORDER
    yield "order_escaped", ORDER_ESCAPED
    yield "cancel", CANCEL
    yield "numbers", b'{"a":-9223372036854775808,"b":9223372036854775808,"c":1E+2,"d":0}'
    yield "nested", b' {"a":[[{"b":[{}]}],"x"],"":""} '


def route_and_validate():
    # First byte: method (0 GET, 1 POST, 2 HEAD, 3 PATCH, 4 DELETE, 5 other);
    # then target, newline, body.
    def routed(method: int, target: str, body: bytes = b"") -> bytes:
        return bytes([method]) + target.encode() + b"\n" + body

    yield "place_order", routed(1, "/orders", ORDER)
    yield "place_order_escaped", routed(1, "/orders?x=1", ORDER_ESCAPED)
    yield "cancel", routed(1, "/orders/%s/cancel" % ORDER_ID, CANCEL)
    yield "cancel_bodyless", routed(1, "/orders/%s/cancel" % ORDER_ID.upper())
    yield "get_product", routed(0, "/products/1")
    yield "list_orders", routed(0, "/orders?product_id=2&verbose=1")
    yield "get_order", routed(0, "/orders/%s" % ORDER_ID)
    yield "health", routed(0, "/health")
    yield "customer_orders", routed(0, "/orders?customer_id=ana%20b&product_id=3")
    yield "sales", routed(0, "/sales?after=5")
    yield "admin_create", routed(1, "/admin/products", b'{"name":"Drop","price":100,"stock":5,'
                                  b'"starts_at":"2026-12-01T10:00:00Z","ends_at":"2026-12-01T11:00:00.5+01:00",'
                                  b'"per_customer_limit":1}')
    yield "admin_change", routed(3, "/admin/products/6", b'{"ends_at":null,"per_customer_limit":2}')
    yield "admin_restock", routed(1, "/admin/products/6/restock", b'{"quantity":10}')
    yield "hold", routed(1, "/holds", b'{"product_id":3,"idempotency_key":"550e8400-e29b-41d4-a716-446655440000",'
                         b'"customer_id":"c","quantity":2}')
    yield "hold_purchase", routed(1, "/orders", b'{"hold_id":"54b40303-b83a-4c37-86ed-716e630e4337",'
                                  b'"idempotency_key":"550e8400-e29b-41d4-a716-446655440000","customer_id":"c"}')
    yield "hold_get", routed(0, "/holds/54b40303-b83a-4c37-86ed-716e630e4337", b"")
    yield "hold_release", routed(1, "/holds/54b40303-b83a-4c37-86ed-716e630e4337/release", b"{}")
    yield "sign_up", routed(1, "/customers", b'{"email":"ana@example.com","password":"correct horse"}')
    yield "log_in", routed(1, "/sessions", b'{"email":"Ana@Example.com","password":"p\\u00e4ssw\\u00f6rd!"}')
    yield "session_current", routed(4, "/sessions/current", b"")
    yield "customer_holds", routed(0, "/holds?customer_id=ana%20b")


def message(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack(">i", len(body) + 4) + body


def auth(code: int, data: bytes = b"") -> bytes:
    return message(b"R", struct.pack(">i", code) + data)


def row_description(columns) -> bytes:
    body = struct.pack(">h", len(columns))
    for name, type_oid, size in columns:
        body += name + b"\0" + struct.pack(">ihihih", 16384, 1, type_oid, size, -1, 1)
    return message(b"T", body)


def data_row(values) -> bytes:
    body = struct.pack(">h", len(values))
    for value in values:
        body += struct.pack(">i", -1) if value is None else struct.pack(">i", len(value)) + value
    return message(b"D", body)


def error(fields) -> bytes:
    return message(b"E", b"".join(k + v + b"\0" for k, v in fields) + b"\0")


INT4, TEXT, UUID, TIMESTAMPTZ = 23, 25, 2950, 1184
READY = message(b"Z", b"I")


def pg_backend():
    i4 = lambda n: struct.pack(">i", n)
    uuid = bytes.fromhex(KEY.replace("-", ""))
    yield "startup_scram", (
        auth(10, b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")
        + auth(11, b"r=abcdefgh12345678,s=c2FsdA==,i=4096")
        + auth(12, b"v=dmVyaWZpZXI=")
        + auth(0)
        + message(b"S", b"server_version\x0015.18\0")
        + message(b"K", i4(4242) + i4(123456789))
        + READY
    )
    yield "startup_md5_notice", (
        auth(5, b"salt")
        + auth(0)
        + message(b"N", b"SNOTICE\0VNOTICE\0C00000\0Mhello\0\0")
        + READY
    )
    yield "prepare_place_order", (
        message(b"1", b"")
        + message(b"t", struct.pack(">h", 4) + i4(INT4) + i4(UUID) + i4(TEXT) + i4(INT4))
        + row_description(
            [(b"outcome", INT4, 4), (b"id", UUID, 16), (b"idempotency_key", UUID, 16),
             (b"product_id", INT4, 4), (b"customer_id", TEXT, -1), (b"quantity", INT4, 4),
             (b"unit_price", INT4, 4), (b"total_price", INT4, 4), (b"status", TEXT, -1),
             (b"created_at", TIMESTAMPTZ, 8)]
        )
        + READY
    )
    yield "place_order_row", (
        message(b"2", b"")
        + data_row([i4(0), uuid, uuid, i4(1), b"customer_42", i4(2), i4(4999), i4(9998),
                    b"CONFIRMED", struct.pack(">q", 790_000_000_000_000)])
        + message(b"C", b"SELECT 1\0")
        + READY
    )
    yield "get_product_null", (
        message(b"2", b"")
        + data_row([i4(1), b"Mechanical Keyboard Ultra", i4(4999), i4(100), None])
        + message(b"C", b"SELECT 1\0")
        + READY
    )
    yield "error_unique", (
        error([(b"S", b"ERROR"), (b"V", b"ERROR"), (b"C", b"23505"),
               (b"M", b"duplicate key value violates unique constraint"),
               (b"D", b"Key (idempotency_key) already exists."), (b"n", b"orders_key")])
        + READY
        + error([(b"S", b"FATAL"), (b"C", b"57P01"), (b"M", b"terminating connection")])
    )


def main():
    for target in (http_request, json_object, route_and_validate, pg_backend):
        directory = ROOT / target.__name__
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.iterdir():
            old.unlink()
        for name, data in target():
            (directory / name).write_bytes(data)


if __name__ == "__main__":
    main()
