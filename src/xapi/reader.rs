//! [`PoolReader`]: the read-only calls the exporter and the confirmation checks make. It has
//! no mutating method, so code holding one cannot change a pool.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::error::Error;
use super::records::{
    Event, EventBatch, Host, HostMetrics, Pbd, Pool, Ref, Sr, Task, TypedEventBatch, Vbd, Vdi, Vm,
};
use super::session::Session;
use super::typed::from_value;
use super::wire::Value;

/// A record class: its wire name (`VM`) and its lower-case event class (`vm`).
pub trait XapiClass: DeserializeOwned + Send + 'static {
    /// Class name in method names (`VM.get_all_records`).
    const CLASS: &'static str;
    /// Lower-case name used by `event.from` and `valid_ref_counts`.
    const EVENT_CLASS: &'static str;
}

macro_rules! classes {
    ($($ty:ty => $class:literal, $event:literal;)+) => {$(
        impl XapiClass for $ty {
            const CLASS: &'static str = $class;
            const EVENT_CLASS: &'static str = $event;
        }
    )+};
}

classes! {
    Pool => "pool", "pool";
    Host => "host", "host";
    HostMetrics => "host_metrics", "host_metrics";
    Vm => "VM", "vm";
    Vbd => "VBD", "vbd";
    Vdi => "VDI", "vdi";
    Sr => "SR", "sr";
    Pbd => "PBD", "pbd";
    Task => "task", "task";
}

/// Read-only access to a pool through its master.
#[derive(Debug, Clone)]
pub struct PoolReader {
    session: Arc<Session>,
}

impl PoolReader {
    /// A reader over a pool session.
    pub fn new(session: Arc<Session>) -> PoolReader {
        PoolReader { session }
    }

    /// The underlying session (for its master address).
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// `<class>.get_all_records`: every object of a class, keyed by reference, in wire order.
    pub async fn all<T: XapiClass>(&self) -> Result<Vec<(Ref<T>, T)>, Error> {
        let method = format!("{}.get_all_records", T::CLASS);
        let list: RecordList<T> = self.session.call_as(&method, &[], None).await?;
        Ok(list.0)
    }

    /// `<class>.get_all_records_where(expr)` (xapi-notes.md §5.2), e.g.
    /// `field "power_state"="Running" and field "is_control_domain"="false"`.
    pub async fn all_where<T: XapiClass>(&self, expr: &str) -> Result<Vec<(Ref<T>, T)>, Error> {
        let method = format!("{}.get_all_records_where", T::CLASS);
        let list: RecordList<T> = self
            .session
            .call_as(&method, &[Value::string(expr)], None)
            .await?;
        Ok(list.0)
    }

    /// `<class>.get_record(ref)`.
    pub async fn record<T: XapiClass>(&self, reference: &Ref<T>) -> Result<T, Error> {
        let method = format!("{}.get_record", T::CLASS);
        self.session
            .call_as(&method, &[Value::string(reference.as_str())], None)
            .await
    }

    /// The pool and its record (there is exactly one per database).
    pub async fn pool(&self) -> Result<(Ref<Pool>, Pool), Error> {
        self.all::<Pool>()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Decode {
                address: String::new(),
                method: "pool.get_all_records".into(),
                source: super::wire::WireError::Type("no pool record".into()),
            })
    }

    /// `event.from(classes, token, timeout)` (xapi-notes.md §7.1). The HTTP limit is the
    /// server-side `timeout` plus `margin`, since the call legitimately blocks that long.
    pub async fn event_from(
        &self,
        classes: &[&str],
        token: &str,
        timeout: Duration,
        margin: Duration,
    ) -> Result<EventBatch, Error> {
        let params = event_params(classes, token, timeout);
        self.session
            .call_as("event.from", &params, Some(timeout + margin))
            .await
    }

    /// [`PoolReader::event_from`] with every snapshot decoded straight into its typed record.
    pub async fn event_from_typed(
        &self,
        classes: &[&str],
        token: &str,
        timeout: Duration,
        margin: Duration,
    ) -> Result<TypedEventBatch, Error> {
        let params = event_params(classes, token, timeout);
        self.session
            .call_as("event.from", &params, Some(timeout + margin))
            .await
    }
}

fn event_params(classes: &[&str], token: &str, timeout: Duration) -> [Value; 3] {
    [
        Value::Array(classes.iter().map(|c| Value::string(*c)).collect()),
        Value::string(token),
        Value::Double(timeout.as_secs_f64()),
    ]
}

/// A `get_all_records` answer: a struct of reference -> record, kept in wire order.
struct RecordList<T>(Vec<(Ref<T>, T)>);

impl<'de, T: XapiClass> serde::Deserialize<'de> for RecordList<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: XapiClass> serde::de::Visitor<'de> for Visit<T> {
            type Value = RecordList<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a struct of reference to record")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RecordList<T>, A::Error> {
                let mut out = Vec::new();
                while let Some((reference, record)) = map.next_entry::<String, T>()? {
                    out.push((Ref::new(reference), record));
                }
                Ok(RecordList(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// Decodes an event's snapshot as a typed record.
pub fn snapshot<T: XapiClass>(event: &Event) -> Option<Result<T, super::wire::WireError>> {
    event.snapshot.clone().map(from_value)
}
