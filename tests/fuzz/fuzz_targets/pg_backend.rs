//! Backend (server -> client) messages: any bytes, framed message after
//! message, each body handed to the decoder its tag selects, as the
//! connection does. The client must never panic on what a server (or
//! something posing as one) sends.
#![no_main]
use flashsale::api::statements::STATEMENTS;
use flashsale::pg::backend::{
    auth_request, next_frame, parameter_types, row_description, sasl_offers_scram_sha_256, tag,
    validate_data_row, AuthRequest, DataRowColumns, DbError,
};
use flashsale::pg::types::fixed_width;
use libfuzzer_sys::fuzz_target;

/// A row accepted for `column_types` must read back as exactly that many
/// columns, each of its type's width: the typed accessors rely on it.
fn check_data_row(body: &[u8], column_types: &[u32]) {
    if validate_data_row(body, column_types).is_err() {
        return;
    }
    let mut columns = DataRowColumns::new(body);
    for &type_oid in column_types {
        let value = columns
            .next()
            .expect("validated row is short")
            .expect("validated column");
        if let (Some(value), Some(width)) = (value, fixed_width(type_oid)) {
            assert_eq!(value.len(), width);
        }
    }
    assert!(columns.next().is_none());
}

fuzz_target!(|data: &[u8]| {
    // Column types of the last RowDescription, as a simple-query client sees them.
    let mut described: Vec<u32> = Vec::new();
    let mut rest = data;
    while let Ok(Some((frame, len))) = next_frame(rest) {
        assert!(len >= 5 && len <= rest.len() && frame.body.len() == len - 5);
        let body = frame.body;
        match frame.tag {
            tag::AUTHENTICATION => {
                if let Ok(AuthRequest::Sasl { mechanisms }) = auth_request(body) {
                    sasl_offers_scram_sha_256(mechanisms);
                }
            }
            tag::ERROR_RESPONSE | tag::NOTICE_RESPONSE => {
                if let Ok(error) = DbError::parse(body) {
                    error.ends_session();
                }
            }
            tag::PARAMETER_DESCRIPTION => drop(parameter_types(body)),
            tag::ROW_DESCRIPTION => {
                described = row_description(body)
                    .map(|columns| columns.into_iter().map(|(_, type_oid)| type_oid).collect())
                    .unwrap_or_default();
            }
            tag::DATA_ROW => {
                DataRowColumns::new(body).for_each(drop);
                check_data_row(body, &described);
                for statement in STATEMENTS {
                    check_data_row(body, statement.column_types);
                }
            }
            _ => {}
        }
        rest = &rest[len..];
    }
});
