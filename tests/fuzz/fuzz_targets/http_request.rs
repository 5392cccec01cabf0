//! HTTP/1.1 framing: any bytes, parsed request after request as a pipelining
//! connection would. Whatever is accepted must describe the input it came
//! from, and must not depend on the bytes that follow it.
#![no_main]
use flashsale::config::HTTP_BODY_BYTES_MAX;
use flashsale::http::request::{parse_request, Body, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut chunked_body = Vec::new();
    let mut alone_body = Vec::new();
    let mut rest = data;
    while let Ok(Parsed::Complete(request)) = parse_request(rest, &mut chunked_body) {
        // Progress and bounds: the loop ends, and no range leaves the input.
        assert!(request.consumed > 0 && request.consumed <= rest.len());
        let path = &request.head.path;
        assert!(path.start <= path.end && path.end <= request.consumed);
        match &request.body {
            Body::None => {}
            Body::InBuffer(body) => {
                assert!(path.end <= body.start && body.end == request.consumed);
                assert!(body.len() <= HTTP_BODY_BYTES_MAX);
            }
            Body::Decoded => assert!(chunked_body.len() <= HTTP_BODY_BYTES_MAX),
        }
        // The request alone parses to the same request: framing never looks
        // past its own end (else two parsers could split a stream differently).
        let alone = parse_request(&rest[..request.consumed], &mut alone_body);
        assert_eq!(alone, Ok(Parsed::Complete(request.clone())));
        assert_eq!(alone_body, chunked_body);
        rest = &rest[request.consumed..];
    }
});
