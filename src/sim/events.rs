//! `event.from`, `event.inject` and the event batches the simulator answers
//! (docs/simulator.md, "Events and tasks").

use crate::xapi::error::{ErrorCode, Failure};
use crate::xapi::wire::Value;

use std::sync::Arc;

use super::db::{self, Db};
use super::methods::{EventWait, Outcome, fail, string_param, type_error};
use super::model::Model;

impl Model {
    // -----------------------------------------------------------------------------------------
    // Events
    // -----------------------------------------------------------------------------------------

    pub(super) fn event_from(&mut self, m: usize, session: &str, params: &[Value]) -> Outcome {
        let classes: Vec<String> = match &params[0] {
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            other => return Outcome::Reply(Err(type_error("string set", other))),
        };
        let token = match string_param(params, 1) {
            Ok(t) => t,
            Err(e) => return Outcome::Reply(Err(e)),
        };
        let Some(since) = db::parse_token(&token) else {
            return Outcome::Reply(fail(ErrorCode::EventFromTokenParseFailure, vec![token]));
        };
        let timeout = match &params[2] {
            Value::Double(d) if d.is_finite() && *d >= 0.0 => *d,
            Value::Int(i) if *i >= 0 => *i as f64,
            Value::Double(_) | Value::Int(_) => 86_400.0,
            other => return Outcome::Reply(Err(type_error("float", other))),
        };
        let wait = EventWait {
            host: m,
            session: session.to_owned(),
            classes,
            since,
            timeout,
        };
        match self.poll_events(&wait) {
            Some(result) => Outcome::Reply(result),
            None if timeout <= 0.0 => Outcome::Reply(Ok(self.event_batch(m, &wait, Vec::new()))),
            None => Outcome::WaitEvents(wait),
        }
    }

    /// The answer to a waiting `event.from`, or `None` while there is nothing new. The session
    /// vanishing (xapi restart) ends the wait with SESSION_INVALID.
    pub fn poll_events(&self, wait: &EventWait) -> Option<Result<Value, Failure>> {
        let host = &self.hosts[wait.host];
        if !host.xapi_running
            || !(host.sessions.contains(&wait.session)
                || self
                    .hosts
                    .iter()
                    .any(|h| h.local_sessions.contains(&wait.session)))
        {
            return Some(fail(ErrorCode::SessionInvalid, vec![wait.session.clone()]));
        }
        let events = host.db.events_since(&wait.classes, wait.since);
        (!events.is_empty()).then(|| Ok(self.event_batch(wait.host, wait, events)))
    }

    /// The `event.from` answer after its timeout: no events, the current token.
    pub fn event_timeout(&self, wait: &EventWait) -> Value {
        self.event_batch(wait.host, wait, Vec::new())
    }

    pub(super) fn event_batch(&self, m: usize, _wait: &EventWait, events: Vec<Value>) -> Value {
        let db = &self.hosts[m].db;
        Value::Struct(vec![
            ("events".into(), Value::Array(events)),
            ("valid_ref_counts".into(), Value::Struct(db.ref_counts())),
            ("token".into(), Value::String(db::token_of(db.generation))),
        ])
    }

    pub(super) fn inject(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        let class = string_param(params, 0)?;
        let reference = string_param(params, 1)?;
        let db = Arc::make_mut(&mut self.hosts[m].db);
        let touched = match class.to_ascii_lowercase().as_str() {
            "vm" => Db::update(|d| &mut d.vm, db, &reference, |_| {}),
            "host" => Db::update(|d| &mut d.host, db, &reference, |_| {}),
            "pool" => Db::update(|d| &mut d.pool, db, &reference, |_| {}),
            _ => false,
        };
        if !touched {
            return fail(ErrorCode::HandleInvalid, vec![class, reference]);
        }
        Ok(Value::String(db::token_of(db.generation)))
    }
}
