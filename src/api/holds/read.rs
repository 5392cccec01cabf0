//! `GET /holds/{id}` and `POST /holds/{id}/release`. A read that meets a
//! past-due hold expires it (`get_hold`), as a release does: both answer
//! for the hold as it is now.

use crate::api::holds::{
    hold_refusal, outcome_and_hold, render_hold, DONE, HOLD_ANSWER_NAMES, HOLD_ANSWER_TYPES,
    HOLD_NOT_FOUND,
};
use crate::api::render::{self, Malformed};
use crate::api::routes::Query;
use crate::api::statements::id_of;
use crate::api::validate::{parse_uuid, Invalid};
use crate::api::{malformed, refuse, Db, Refusal};
use crate::json;
use crate::pg::{oid, Param, Refused, Rows, Statement, StatementId};

pub const GET_HOLD: Statement = Statement {
    name: "get_hold",
    sql: "SELECT * FROM get_hold($1)",
    param_types: &[oid::UUID],
    column_names: &HOLD_ANSWER_NAMES,
    column_types: &HOLD_ANSWER_TYPES,
    writes: true,
    slow: false,
};
const GET_HOLD_ID: StatementId = id_of(&GET_HOLD);

pub const RELEASE_HOLD: Statement = Statement {
    name: "release_hold",
    sql: "SELECT * FROM release_hold($1)",
    param_types: &[oid::UUID],
    column_names: &HOLD_ANSWER_NAMES,
    column_types: &HOLD_ANSWER_TYPES,
    writes: true,
    slow: false,
};
const RELEASE_HOLD_ID: StatementId = id_of(&RELEASE_HOLD);

/// As a session's customer: only the hold's own (`release_hold_as`: FS401, FS403).
pub const RELEASE_HOLD_AS: Statement = Statement {
    name: "release_hold_as",
    sql: "SELECT * FROM release_hold_as($2, $1)",
    param_types: &[oid::UUID, oid::TEXT],
    column_names: &HOLD_ANSWER_NAMES,
    column_types: &HOLD_ANSWER_TYPES,
    writes: true,
    slow: false,
};
const RELEASE_HOLD_AS_ID: StatementId = id_of(&RELEASE_HOLD_AS);

/// As `GET /orders/{id}`: a malformed id is a 422 here, a 404 on release.
const NOT_A_UUID: Refusal = refuse(422, "hold_id must be a UUID");

pub fn parse_get(id: &[u8]) -> Result<Query, Refusal> {
    parse_uuid(id).map(Query::GetHold).ok_or(NOT_A_UUID)
}

/// The body is judged first (422): none, or a JSON object whose members
/// are not looked at.
pub fn parse_release(id: &[u8], body: &[u8]) -> Result<Query, Refusal> {
    if !body.iter().all(|&b| json::is_whitespace(b)) {
        json::parse_object(body, |_, _| Ok(()))
            .map_err(|error| Invalid(error.message).refusal())?;
    }
    parse_uuid(id).map(Query::ReleaseHold).ok_or(HOLD_NOT_FOUND)
}

pub fn submit_get(db: &mut Db<'_>, hold_id: &[u8; 16]) -> Result<(), Refused> {
    db.submit(GET_HOLD_ID, &[Param::Uuid(hold_id)])
}

pub fn submit_release(
    db: &mut Db<'_>,
    hold_id: &[u8; 16],
    session: Option<&str>,
) -> Result<(), Refused> {
    match session {
        None => db.submit(RELEASE_HOLD_ID, &[Param::Uuid(hold_id)]),
        Some(token) => db.submit(
            RELEASE_HOLD_AS_ID,
            &[Param::Uuid(hold_id), Param::Text(token)],
        ),
    }
}

pub fn answer_get(rows: Rows<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    match outcome_and_hold(&rows)? {
        (DONE, Some(hold)) => {
            render_hold(body, &hold);
            Ok(200)
        }
        (code, _) => Err(hold_refusal(code).unwrap_or_else(|| malformed(Malformed))),
    }
}

pub fn answer_release(rows: Rows<'_>, body: &mut Vec<u8>) -> Result<u16, Refusal> {
    match outcome_and_hold(&rows)? {
        (DONE, Some(hold)) => {
            write_released(body, &hold.id, hold.quantity);
            Ok(200)
        }
        (code, _) => Err(hold_refusal(code).unwrap_or_else(|| malformed(Malformed))),
    }
}

/// `{"hold_id":…,"status":"RELEASED","restored_quantity":N}`
fn write_released(out: &mut Vec<u8>, hold_id: &[u8; 16], restored_quantity: i32) {
    render::uuid(out, b"{\"hold_id\":", hold_id);
    out.extend_from_slice(b",\"status\":\"RELEASED\"");
    render::int(out, b",\"restored_quantity\":", restored_quantity);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: &[u8] = b"54b40303-b83a-4c37-86ed-716e630e4337";

    #[test]
    fn release_bodies() {
        let status = |body: &[u8]| parse_release(HOLD, body).map(|_| 200).map_err(|r| r.status);
        assert_eq!(status(b""), Ok(200));
        assert_eq!(status(b" \r\n"), Ok(200));
        assert_eq!(status(b"{}"), Ok(200));
        assert_eq!(status(br#"{"customer_id":"c"}"#), Ok(200));
        for bad in [&b"[]"[..], b"null", b"{", b"x", b"\xff"] {
            assert_eq!(status(bad), Err(422), "{:?}", String::from_utf8_lossy(bad));
        }
        let message = parse_release(HOLD, b"[1]").unwrap_err().message;
        assert_eq!(message, "body must be a JSON object");
        assert_eq!(parse_release(b"nope", b"").unwrap_err().status, 404);
        assert_eq!(parse_get(b"nope").unwrap_err().status, 422);
    }

    #[test]
    fn the_release_body_is_exact() {
        let mut out = Vec::new();
        write_released(&mut out, &[0xab; 16], 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"hold_id":"abababab-abab-abab-abab-abababababab","status":"RELEASED","restored_quantity":2}"#
        );
    }
}
