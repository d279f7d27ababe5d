//! /healthz: `{"status":"ok"}` (compact, unlike the other endpoints). tern has no
//! JetStream, so every JetStream variant is healthy once its arguments are valid, as
//! nats-server answers without JetStream. With Raft, 503 until the node is ready.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::format::Query;
use super::{bad_request, json_body, Params, QueryMap, St};

pub async fn handle(State(m): St, Params(q): Params<QueryMap>) -> Response {
    let q = Query(&q);
    let mut details = false;
    for key in [
        "js-enabled-only",
        "js-server-only",
        "js-meta-only",
        "js-enabled",
        "details",
    ] {
        match q.bool(key) {
            Ok(b) => details |= key == "details" && b,
            Err(e) => return bad_request(e),
        }
    }
    let missing = if q.get("stream").is_some() && q.get("account").is_none() {
        Some("\"account\" must not be empty when checking stream health")
    } else if q.get("consumer").is_some() && q.get("stream").is_none() {
        Some("\"stream\" must not be empty when checking consumer health")
    } else {
        None
    };
    // Raft readiness (issue 5): 503 until the node has applied the membership and
    // configuration committed when it started. Always ready without Raft.
    if missing.is_none() {
        if let Some(reason) = m.shared.not_ready() {
            let body = json!({"status": "unavailable", "error": reason});
            return json_body(StatusCode::SERVICE_UNAVAILABLE, body.to_string());
        }
    }
    let (status, body) = match missing {
        None => (StatusCode::OK, json!({"status": "ok"})),
        Some(e) if details => (
            StatusCode::BAD_REQUEST,
            json!({"status": "error", "errors": [{"type": "BAD_REQUEST", "error": e}]}),
        ),
        Some(e) => (
            StatusCode::BAD_REQUEST,
            json!({"status": "error", "error": e}),
        ),
    };
    json_body(status, body.to_string())
}
