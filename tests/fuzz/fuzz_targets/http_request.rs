//! HTTP/1.1 framing: any bytes, parsed request after request as a pipelining
//! connection would. Whatever is accepted must describe the input it came
//! from, must not depend on the bytes that follow it, and must be the same
//! when the bytes arrive one at a time (the parse resuming each time).
#![no_main]
use flashsale::config::HTTP_BODY_BYTES_MAX;
use flashsale::http::request::{parse_request, Body, Parsed, Progress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut progress = Progress::default();
    let mut alone = Progress::default();
    let mut rest = data;
    while let Ok(Parsed::Complete(request)) = parse_request(rest, &mut progress) {
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
            Body::Decoded => assert!(progress.decoded_body().len() <= HTTP_BODY_BYTES_MAX),
        }
        // The request alone parses to the same request: framing never looks
        // past its own end (else two parsers could split a stream differently).
        alone.reset();
        let parsed_alone = parse_request(&rest[..request.consumed], &mut alone);
        assert_eq!(parsed_alone, Ok(Parsed::Complete(request.clone())));
        assert_eq!(alone.decoded_body(), progress.decoded_body());
        // Byte by byte, resuming: incomplete until the last byte, then the
        // same request.
        let mut trickled = Progress::default();
        for end in 0..request.consumed {
            let partial = parse_request(&rest[..end], &mut trickled);
            assert!(matches!(partial, Ok(Parsed::Partial { .. })), "{partial:?}");
        }
        let whole = parse_request(&rest[..request.consumed], &mut trickled);
        assert_eq!(whole, Ok(Parsed::Complete(request.clone())));
        assert_eq!(trickled.decoded_body(), progress.decoded_body());
        progress.reset();
        rest = &rest[request.consumed..];
    }
});
