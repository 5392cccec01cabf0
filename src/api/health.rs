//! `GET /health`: 200 while at least one database connection is ready,
//! else 503, so the load balancer and container health checks see what a
//! request would meet. Answered without a database round trip.

use crate::api::{Answer, DATABASE_UNAVAILABLE};

const HEALTHY: &[u8] = br#"{"status":"ok"}"#;

pub fn answer(database_ready: bool) -> Answer<'static> {
    if database_ready {
        Answer::Json {
            status: 200,
            body: HEALTHY,
        }
    } else {
        Answer::Refused(DATABASE_UNAVAILABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_only_with_the_database() {
        assert_eq!(
            answer(true),
            Answer::Json {
                status: 200,
                body: br#"{"status":"ok"}"#
            }
        );
        assert_eq!(answer(false), Answer::Refused(DATABASE_UNAVAILABLE));
    }
}
