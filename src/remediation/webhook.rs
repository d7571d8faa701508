//! `POST /alertmanager`: authenticate, bound the body, parse strictly, check pools and hosts,
//! journal, answer. It never acts inside the request: new alerts go to the engine.
//!
//! Answers: 200 with `{"new":N,"duplicates":M,"rejected":[why…]}`; 401 without credentials,
//! 403 with wrong ones; 413 over `max_body_bytes`; 415 for a body that is not JSON; 400 for a
//! malformed payload (times not RFC 3339 included); 422 when every alert names an unknown pool
//! or host, a host that is no UUID, or lacks a label (one such alert among good ones is
//! journaled as rejected and the others accepted); 503 when the journal cannot be written
//! (Alertmanager retries 5xx, and nothing was acknowledged).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::Receiver;
use super::alert::{self, Status};
use super::policy::intent_for;

/// What Alertmanager must present.
#[derive(Clone)]
pub enum Authenticator {
    /// `Authorization: Bearer <token>`.
    Bearer(Vec<u8>),
    /// `Authorization: Basic base64(user:password)`.
    Basic(Vec<u8>),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Authenticator::Bearer(_) => "Bearer(***)",
            Authenticator::Basic(_) => "Basic(***)",
        })
    }
}

/// Outcome of checking a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Accepted.
    Ok,
    /// No usable `Authorization` header: 401.
    Missing,
    /// Credentials that do not match: 403.
    Wrong,
}

impl Authenticator {
    /// A bearer token.
    pub fn bearer(token: &str) -> Authenticator {
        Authenticator::Bearer(token.as_bytes().to_vec())
    }

    /// Basic credentials.
    pub fn basic(user: &str, password: &str) -> Authenticator {
        Authenticator::Basic(format!("{user}:{password}").into_bytes())
    }

    /// Checks an `Authorization` header value in constant time.
    pub fn check(&self, header: Option<&str>) -> AuthOutcome {
        let Some(value) = header else {
            return AuthOutcome::Missing;
        };
        let Some((scheme, credentials)) = value.trim().split_once(' ') else {
            return AuthOutcome::Missing;
        };
        let (expected, presented) = match self {
            Authenticator::Bearer(token) if scheme.eq_ignore_ascii_case("bearer") => {
                (token, credentials.trim().as_bytes().to_vec())
            }
            Authenticator::Basic(pair) if scheme.eq_ignore_ascii_case("basic") => {
                match base64::engine::general_purpose::STANDARD.decode(credentials.trim()) {
                    Ok(decoded) => (pair, decoded),
                    Err(_) => return AuthOutcome::Missing,
                }
            }
            _ => return AuthOutcome::Missing,
        };
        if bool::from(expected.as_slice().ct_eq(presented.as_slice())) {
            AuthOutcome::Ok
        } else {
            AuthOutcome::Wrong
        }
    }
}

fn reject(receiver: &Receiver, status: StatusCode, reason: String) -> Response {
    receiver.metrics.webhook(status.as_u16());
    let unauthenticated = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
    if unauthenticated {
        // Counted only: a flood of them must not grow the journal nor take its fsyncs from
        // the executor.
        tracing::debug!(status = status.as_u16(), reason = ?reason, "Webhook refused: credentials.");
    } else {
        if let Err(e) =
            receiver
                .journal
                .record_rejection(status.as_u16(), &reason, receiver.clock.unix())
        {
            tracing::error!(error = %e, "Cannot journal a rejected webhook.");
        }
        tracing::warn!(status = status.as_u16(), reason = ?reason, "Webhook rejected.");
    }
    let mut response = (status, Json(json!({"error": reason}))).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let scheme = match receiver.auth {
            Some(Authenticator::Basic(_)) => "Basic realm=\"xenguard\"",
            _ => "Bearer",
        };
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            scheme.parse().expect("static header"),
        );
    }
    response
}

/// The handler.
pub async fn alertmanager(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(auth) = &receiver.auth {
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match auth.check(header) {
            AuthOutcome::Ok => {}
            AuthOutcome::Missing => {
                return reject(
                    &receiver,
                    StatusCode::UNAUTHORIZED,
                    "missing or malformed Authorization header".into(),
                );
            }
            AuthOutcome::Wrong => {
                return reject(&receiver, StatusCode::FORBIDDEN, "wrong credentials".into());
            }
        }
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case("application/json")
    {
        return reject(
            &receiver,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content type {content_type:?} is not application/json"),
        );
    }
    let limit = receiver.config.receiver.max_body_bytes;
    // Read at most `limit` bytes: a larger body is refused without being buffered whole.
    let body = match axum::body::to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX)).await
    {
        Ok(bytes) => bytes,
        Err(_) => {
            return reject(
                &receiver,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body exceeds {limit} bytes or broke off"),
            );
        }
    };
    let mut message = match alert::parse(&body) {
        Ok(m) => m,
        Err(e) => return reject(&receiver, StatusCode::BAD_REQUEST, e.to_string()),
    };
    // Alertmanager never retries a 4xx: one bad alert must not lose the good ones with it.
    let mut rejected = Vec::new();
    let alerts = std::mem::take(&mut message.alerts);
    for (index, alert) in alerts.into_iter().enumerate() {
        match acceptable(&receiver, &alert) {
            Ok(()) => message.alerts.push(alert),
            Err(reason) => rejected.push(format!("alert {index} ({:?}): {reason}", alert.name())),
        }
    }
    if message.alerts.is_empty() && !rejected.is_empty() {
        return reject(
            &receiver,
            StatusCode::UNPROCESSABLE_ENTITY,
            rejected.join("; "),
        );
    }
    for reason in &rejected {
        if let Err(e) = receiver.journal.record_rejection(
            StatusCode::UNPROCESSABLE_ENTITY.as_u16(),
            reason,
            receiver.clock.unix(),
        ) {
            tracing::error!(error = %e, "Cannot journal a rejected alert.");
        }
        tracing::warn!(reason = ?reason, "Alert rejected; the notification's other alerts are accepted.");
    }
    let text = String::from_utf8_lossy(&body);
    let received = match receiver.journal.record_notification(
        &message,
        &text,
        receiver.clock.unix(),
    ) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "Cannot journal a notification; Alertmanager will retry.");
            receiver.metrics.journal_error();
            receiver.metrics.webhook(503);
            let body = Json(json!({"error": format!("journal unavailable: {e}")}));
            return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
        }
    };
    receiver
        .metrics
        .alerts(received.new.len(), received.duplicates);
    let new = received.new.len();
    for alert in received.new {
        // The engine outlives every request; a send can only fail during shutdown.
        let _ = receiver
            .executor
            .send(super::executor::Command::Alert(alert));
    }
    receiver.metrics.webhook(200);
    (
        StatusCode::OK,
        Json(json!({"new": new, "duplicates": received.duplicates, "rejected": rejected})),
    )
        .into_response()
}

/// Whether a firing alert the policy acts on names a configured pool and one of its hosts.
fn acceptable(receiver: &Receiver, alert: &alert::Alert) -> Result<(), String> {
    if alert.status != Status::Firing {
        return Ok(());
    }
    match intent_for(alert) {
        Ok(Some(intent)) => receiver.check_target(&intent.pool, &intent.host_uuid),
        Ok(None) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_checked_exactly() {
        let bearer = Authenticator::bearer("s3cret");
        assert_eq!(bearer.check(Some("Bearer s3cret")), AuthOutcome::Ok);
        assert_eq!(bearer.check(Some("bearer s3cret")), AuthOutcome::Ok);
        assert_eq!(bearer.check(Some("Bearer s3cre")), AuthOutcome::Wrong);
        assert_eq!(bearer.check(Some("Bearer s3cret2")), AuthOutcome::Wrong);
        assert_eq!(bearer.check(Some("Basic czNjcmV0")), AuthOutcome::Missing);
        assert_eq!(bearer.check(None), AuthOutcome::Missing);
        let basic = Authenticator::basic("am", "pw");
        let good = base64::engine::general_purpose::STANDARD.encode("am:pw");
        assert_eq!(basic.check(Some(&format!("Basic {good}"))), AuthOutcome::Ok);
        let bad = base64::engine::general_purpose::STANDARD.encode("am:px");
        assert_eq!(
            basic.check(Some(&format!("Basic {bad}"))),
            AuthOutcome::Wrong
        );
        assert_eq!(basic.check(Some("Basic !!!")), AuthOutcome::Missing);
        assert!(!format!("{bearer:?}").contains("s3cret"));
    }
}
