//! One host's copy of the pool database: typed tables with the generation counters `event.from`
//! needs (xapi-notes.md §7.1), generic field getters, and `get_all_records_where` filters
//! (xapi-notes.md §5.2).
//!
//! The master's copy is the live database; a slave's copy is its last backup, which is what it
//! restarts with after `emergency_transition_to_master` (possibly minutes stale,
//! xapi-notes.md §6.1).
//!
//! Rows are typed records (the ~20 fields xenguard reads), but `VM` and `host` records go on the
//! wire padded to the ~90 / ~70 fields real xapi writes (xapi-notes.md §4.2, §5.1, §7.3), so
//! answers have the size and shape clients meet in production (the `padding` module).

use std::collections::BTreeMap;

use super::padding::WireRecord;
use crate::xapi::records::{Host, HostMetrics, Pbd, Pool, Sr, Task, Vbd, Vdi, Vm};
use crate::xapi::typed::to_value;
use crate::xapi::wire::Value;

/// A row with the generations at which it was created and last modified.
#[derive(Debug, Clone)]
pub struct Row<T> {
    /// The record.
    pub record: T,
    /// Generation of its creation.
    pub created: u64,
    /// Generation of its last change.
    pub modified: u64,
}

/// One class's rows plus the deletions `event.from` still has to report.
#[derive(Debug, Clone)]
pub struct Table<T> {
    /// Reference -> row.
    pub rows: BTreeMap<String, Row<T>>,
    /// (reference, created, deleted) of removed rows.
    pub deleted: Vec<(String, u64, u64)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            rows: BTreeMap::new(),
            deleted: Vec::new(),
        }
    }
}

impl<T> Table<T> {
    /// The record behind a reference.
    pub fn get(&self, reference: &str) -> Option<&T> {
        self.rows.get(reference).map(|r| &r.record)
    }

    /// References and records, in reference order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.rows.iter().map(|(k, r)| (k, &r.record))
    }
}

/// The classes of the database, with their wire names.
macro_rules! database {
    ($($field:ident: $ty:ty => $class:literal, $event:literal;)+) => {
        /// A pool database.
        #[derive(Debug, Clone, Default)]
        pub struct Db {
            /// Generation of the latest change.
            pub generation: u64,
            $(
                #[doc = concat!("`", $class, "` objects.")]
                pub $field: Table<$ty>,
            )+
        }

        /// Classes as named in method names, with their event (lower-case) names.
        pub const CLASSES: &[(&str, &str)] = &[$(($class, $event)),+];

        impl Db {
            /// The wire records of a class (`VM`, `host`, …), or `None` for an unknown class.
            pub fn records(&self, class: &str) -> Option<Vec<(String, Value)>> {
                match class {
                    $($class => Some(encode_all(self, &self.$field)),)+
                    _ => None,
                }
            }

            /// The wire record of one object.
            pub fn record(&self, class: &str, reference: &str) -> Option<Value> {
                match class {
                    $($class => self.$field.get(reference).map(|r| encode(self, r)),)+
                    _ => None,
                }
            }

            /// Events newer than `since` for a lower-case event class: (ref, op, snapshot).
            fn changes(&self, event_class: &str, since: u64) -> Vec<(u64, String, &'static str, Option<Value>)> {
                match event_class {
                    $($event => changes_of(self, &self.$field, since),)+
                    _ => Vec::new(),
                }
            }

            /// Whether an object of `class` has this reference.
            pub fn record_exists(&self, class: &str, reference: &str) -> bool {
                match class {
                    $($class => self.$field.rows.contains_key(reference),)+
                    _ => false,
                }
            }

            /// Whether `class` is a class of the database.
            pub fn has_class(&self, class: &str) -> bool {
                CLASSES.iter().any(|(c, _)| *c == class)
            }

            /// References of the objects of `class` whose `uuid` or `name_label` equals `value`,
            /// without encoding any record.
            pub fn find_refs(&self, class: &str, field: Identity, value: &str) -> Vec<String> {
                match class {
                    $($class => self
                        .$field
                        .iter()
                        .filter(|(_, r)| match field {
                            Identity::Uuid => r.uuid() == value,
                            Identity::NameLabel => r.name_label() == Some(value),
                        })
                        .map(|(k, _)| k.clone())
                        .collect(),)+
                    _ => Vec::new(),
                }
            }

            /// Live object counts for every table, as `valid_ref_counts` reports them.
            pub fn ref_counts(&self) -> Vec<(String, Value)> {
                vec![$(($event.to_owned(), Value::Int(self.$field.rows.len() as i64))),+]
            }
        }
    };
}

database! {
    pool: Pool => "pool", "pool";
    host: Host => "host", "host";
    host_metrics: HostMetrics => "host_metrics", "host_metrics";
    vm: Vm => "VM", "vm";
    vbd: Vbd => "VBD", "vbd";
    vdi: Vdi => "VDI", "vdi";
    sr: Sr => "SR", "sr";
    pbd: Pbd => "PBD", "pbd";
    task: Task => "task", "task";
}

/// The identifying fields generic lookups search on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// `get_by_uuid`.
    Uuid,
    /// `get_by_name_label`.
    NameLabel,
}

/// Access to the identifying fields of a record type.
trait Identified {
    fn uuid(&self) -> &str;
    fn name_label(&self) -> Option<&str> {
        None
    }
}

macro_rules! identified {
    (named: $($named:ty),+; unnamed: $($unnamed:ty),+) => {
        $(impl Identified for $named {
            fn uuid(&self) -> &str {
                &self.uuid
            }
            fn name_label(&self) -> Option<&str> {
                Some(&self.name_label)
            }
        })+
        $(impl Identified for $unnamed {
            fn uuid(&self) -> &str {
                &self.uuid
            }
        })+
    };
}

identified!(named: Pool, Host, Vm, Vdi, Sr, Task; unnamed: HostMetrics, Vbd, Pbd);

/// Every wire encoding of a record (`get_record`, `get_all_records*`, field getters, `event.from`
/// snapshots) goes through here: the typed fields, then [`WireRecord::pad`].
fn encode<T: WireRecord>(db: &Db, record: &T) -> Value {
    // Records are plain data: encoding cannot fail.
    match to_value(record) {
        Ok(Value::Struct(mut members)) => {
            record.pad(db, &mut members);
            Value::Struct(members)
        }
        Ok(other) => other,
        Err(_) => Value::Nil,
    }
}

fn encode_all<T: WireRecord>(db: &Db, table: &Table<T>) -> Vec<(String, Value)> {
    table
        .rows
        .iter()
        .map(|(k, r)| (k.clone(), encode(db, &r.record)))
        .collect()
}

fn changes_of<T: WireRecord>(
    db: &Db,
    table: &Table<T>,
    since: u64,
) -> Vec<(u64, String, &'static str, Option<Value>)> {
    let mut out: Vec<_> = table
        .rows
        .iter()
        .filter(|(_, r)| r.modified > since)
        .map(|(k, r)| {
            let op = if r.created > since { "add" } else { "mod" };
            (r.modified, k.clone(), op, Some(encode(db, &r.record)))
        })
        .collect();
    out.extend(
        table
            .deleted
            .iter()
            .filter(|(_, created, deleted)| *deleted > since && *created <= since)
            .map(|(k, _, deleted)| (*deleted, k.clone(), "del", None)),
    );
    out
}

impl Db {
    /// Inserts or replaces a row, bumping the generation.
    pub fn put<T>(
        table: impl FnOnce(&mut Db) -> &mut Table<T>,
        db: &mut Db,
        reference: &str,
        record: T,
    ) {
        db.generation += 1;
        let generation = db.generation;
        let t = table(db);
        match t.rows.get_mut(reference) {
            Some(row) => {
                row.record = record;
                row.modified = generation;
            }
            None => {
                t.rows.insert(
                    reference.to_owned(),
                    Row {
                        record,
                        created: generation,
                        modified: generation,
                    },
                );
            }
        }
    }

    /// Changes a row in place, bumping the generation; false if it does not exist.
    pub fn update<T>(
        table: impl FnOnce(&mut Db) -> &mut Table<T>,
        db: &mut Db,
        reference: &str,
        change: impl FnOnce(&mut T),
    ) -> bool {
        let generation = db.generation + 1;
        let t = table(db);
        let Some(row) = t.rows.get_mut(reference) else {
            return false;
        };
        change(&mut row.record);
        row.modified = generation;
        db.generation = generation;
        true
    }

    /// Removes a row, remembering the deletion for `event.from`.
    pub fn remove<T>(
        table: impl FnOnce(&mut Db) -> &mut Table<T>,
        db: &mut Db,
        reference: &str,
    ) -> Option<T> {
        let generation = db.generation + 1;
        let t = table(db);
        let row = t.rows.remove(reference)?;
        t.deleted
            .push((reference.to_owned(), row.created, generation));
        db.generation = generation;
        Some(row.record)
    }

    /// The reference of the one pool object.
    pub fn pool_ref(&self) -> Option<&String> {
        self.pool.rows.keys().next()
    }

    /// The pool record.
    pub fn pool_record(&self) -> Option<&Pool> {
        self.pool.rows.values().next().map(|r| &r.record)
    }

    /// Collects `event.from` results for subscriptions (`"*"`, `"vm"`, `"vm/OpaqueRef:…"`,
    /// case-insensitive) since generation `since`, ordered by generation.
    pub fn events_since(&self, subscriptions: &[String], since: u64) -> Vec<Value> {
        let subs: Vec<(String, Option<&str>)> = subscriptions
            .iter()
            .map(|s| match s.split_once('/') {
                Some((class, reference)) => (class.to_ascii_lowercase(), Some(reference)),
                None => (s.to_ascii_lowercase(), None),
            })
            .collect();
        let mut all = Vec::new();
        for (_, event_class) in CLASSES {
            let wanted: Vec<Option<&str>> = subs
                .iter()
                .filter(|(c, _)| c == "*" || c == event_class)
                .map(|(_, r)| *r)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            for (generation, reference, op, snapshot) in self.changes(event_class, since) {
                if wanted.iter().any(|r| r.is_none_or(|r| r == reference)) {
                    all.push((generation, event_class, reference, op, snapshot));
                }
            }
        }
        all.sort_by_key(|(generation, ..)| *generation);
        all.into_iter()
            .map(|(generation, class, reference, op, snapshot)| {
                let mut members = vec![
                    ("id".to_owned(), Value::String(generation.to_string())),
                    ("timestamp".to_owned(), Value::string("0.0")),
                    ("class".to_owned(), Value::string(*class)),
                    ("operation".to_owned(), Value::string(op)),
                    ("ref".to_owned(), Value::String(reference)),
                ];
                if let Some(snapshot) = snapshot {
                    members.push(("snapshot".to_owned(), snapshot));
                }
                Value::Struct(members)
            })
            .collect()
    }
}

/// The event token of a generation: `"%020d,%020d"` (database, message generation).
pub fn token_of(generation: u64) -> String {
    format!("{generation:020},{:020}", 0)
}

/// Parses an event token; `""` is the beginning.
pub fn parse_token(token: &str) -> Option<u64> {
    if token.is_empty() {
        return Some(0);
    }
    let (db, messages) = token.split_once(',')?;
    messages.trim().parse::<u64>().ok()?;
    db.trim().parse().ok()
}

/// The value of a record field in the database's string form (xapi-notes.md §5.2): bools
/// `"true"`/`"false"`, ints in decimal, enums and refs as written.
pub fn field_string(record: &Value, field: &str) -> Option<String> {
    match record.member(field)? {
        Value::String(s) | Value::DateTime(s) | Value::Base64(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Double(d) => Some(d.to_string()),
        _ => None,
    }
}

/// A parsed `get_all_records_where` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `true` / `false`.
    Const(bool),
    /// `a = b` on fields or literals.
    Eq(Operand, Operand),
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
    /// `not a`.
    Not(Box<Filter>),
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `"literal"`.
    Literal(String),
    /// `field "name"`; `__` in the name is the `_` of the wire name.
    Field(String),
}

impl Filter {
    /// Parses the grammar of xapi-notes.md §5.2.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let tokens = lex(text)?;
        let mut pos = 0;
        let filter = parse_or(&tokens, &mut pos)?;
        if pos != tokens.len() {
            return Err(format!("unexpected {:?}", tokens[pos]));
        }
        Ok(filter)
    }

    /// Evaluates the filter on a wire record.
    pub fn matches(&self, record: &Value) -> bool {
        match self {
            Filter::Const(b) => *b,
            Filter::Eq(a, b) => operand(a, record) == operand(b, record),
            Filter::And(a, b) => a.matches(record) && b.matches(record),
            Filter::Or(a, b) => a.matches(record) || b.matches(record),
            Filter::Not(a) => !a.matches(record),
        }
    }
}

fn operand(op: &Operand, record: &Value) -> Option<String> {
    match op {
        Operand::Literal(s) => Some(s.clone()),
        Operand::Field(name) => field_string(record, &name.replace("__", "_")),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Eq,
    Open,
    Close,
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                tokens.push(Token::Eq);
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("unterminated string".into()),
                    }
                }
                tokens.push(Token::Quoted(s));
            }
            c if c.is_ascii_alphabetic() => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if !c.is_ascii_alphanumeric() && c != '_' {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(s));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(tokens)
}

fn parse_or(tokens: &[Token], pos: &mut usize) -> Result<Filter, String> {
    let mut left = parse_and(tokens, pos)?;
    while tokens.get(*pos) == Some(&Token::Word("or".into())) {
        *pos += 1;
        left = Filter::Or(Box::new(left), Box::new(parse_and(tokens, pos)?));
    }
    Ok(left)
}

fn parse_and(tokens: &[Token], pos: &mut usize) -> Result<Filter, String> {
    let mut left = parse_unary(tokens, pos)?;
    while tokens.get(*pos) == Some(&Token::Word("and".into())) {
        *pos += 1;
        left = Filter::And(Box::new(left), Box::new(parse_unary(tokens, pos)?));
    }
    Ok(left)
}

fn parse_unary(tokens: &[Token], pos: &mut usize) -> Result<Filter, String> {
    match tokens.get(*pos) {
        Some(Token::Word(w)) if w == "not" => {
            *pos += 1;
            Ok(Filter::Not(Box::new(parse_unary(tokens, pos)?)))
        }
        Some(Token::Word(w)) if w == "true" || w == "false" => {
            *pos += 1;
            Ok(Filter::Const(w == "true"))
        }
        Some(Token::Open) => {
            *pos += 1;
            let inner = parse_or(tokens, pos)?;
            if tokens.get(*pos) != Some(&Token::Close) {
                return Err("missing )".into());
            }
            *pos += 1;
            Ok(inner)
        }
        _ => {
            let a = parse_operand(tokens, pos)?;
            if tokens.get(*pos) != Some(&Token::Eq) {
                return Err("expected =".into());
            }
            *pos += 1;
            let b = parse_operand(tokens, pos)?;
            Ok(Filter::Eq(a, b))
        }
    }
}

fn parse_operand(tokens: &[Token], pos: &mut usize) -> Result<Operand, String> {
    match (tokens.get(*pos), tokens.get(*pos + 1)) {
        (Some(Token::Word(w)), Some(Token::Quoted(name))) if w == "field" => {
            *pos += 2;
            Ok(Operand::Field(name.clone()))
        }
        (Some(Token::Quoted(s)), _) => {
            *pos += 1;
            Ok(Operand::Literal(s.clone()))
        }
        (other, _) => Err(format!("expected a value, found {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::padding::HOST_CPUS;
    use crate::xapi::records::{NULL_REF, PowerState};
    use std::collections::BTreeSet;

    fn vm(power: &str, control: bool) -> Value {
        Value::Struct(vec![
            ("power_state".into(), Value::string(power)),
            ("is_control_domain".into(), Value::Bool(control)),
            ("name_label".into(), Value::string("web")),
        ])
    }

    #[test]
    fn filters_follow_the_xapi_grammar() {
        let f = Filter::parse(
            r#"field "is_control_domain"="false" and (field "power_state"="Running" or not true) and field "name__label"="web""#,
        )
        .unwrap();
        assert!(f.matches(&vm("Running", false)));
        assert!(!f.matches(&vm("Halted", false)));
        assert!(!f.matches(&vm("Running", true)));
        assert!(Filter::parse(r#"field "x" = "#).is_err());
        assert!(Filter::parse(r#"field "x" = "y" junk"#).is_err());
    }

    #[test]
    fn events_report_add_mod_del_once_per_object() {
        let mut db = Db::default();
        Db::put(|d| &mut d.vm, &mut db, "OpaqueRef:a", Vm::default());
        Db::put(|d| &mut d.vm, &mut db, "OpaqueRef:b", Vm::default());
        let token = db.generation;
        Db::update(
            |d| &mut d.vm,
            &mut db,
            "OpaqueRef:a",
            |v| v.name_label = "x".into(),
        );
        Db::update(
            |d| &mut d.vm,
            &mut db,
            "OpaqueRef:a",
            |v| v.name_label = "y".into(),
        );
        Db::remove(|d| &mut d.vm, &mut db, "OpaqueRef:b");
        Db::put(|d| &mut d.vm, &mut db, "OpaqueRef:c", Vm::default());
        let ops: Vec<(String, String)> = db
            .events_since(&["VM".into()], token)
            .iter()
            .map(|e| {
                (
                    e.member("ref").and_then(Value::as_str).unwrap().to_owned(),
                    e.member("operation")
                        .and_then(Value::as_str)
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
        assert_eq!(
            ops,
            vec![
                ("OpaqueRef:a".into(), "mod".into()),
                ("OpaqueRef:b".into(), "del".into()),
                ("OpaqueRef:c".into(), "add".into())
            ]
        );
        assert_eq!(
            db.events_since(&["vm".into()], 0).len(),
            2,
            "from the start: live objects only"
        );
        assert!(db.events_since(&["host".into()], 0).is_empty());
    }

    /// A running guest, a control domain and a host as the simulator builds them.
    fn sample() -> (Db, Vm, Host) {
        let mut db = Db::default();
        let vm = Vm {
            uuid: "0000002a-5a1e-4002-8000-00000000002a".into(),
            name_label: "vm0001 'quoted'".into(),
            power_state: PowerState::Running,
            resident_on: crate::xapi::records::Ref::new("OpaqueRef:h1"),
            affinity: crate::xapi::records::Ref::new("OpaqueRef:h1"),
            domid: 7,
            ha_restart_priority: "restart".into(),
            order: 2,
            memory_static_max: 2 << 30,
            memory_dynamic_max: 2 << 30,
            vcpus_at_startup: 2,
            vbds: vec![crate::xapi::records::Ref::new("OpaqueRef:b1")],
            allowed_operations: vec!["clean_shutdown".into()],
            other_config: [("platform".to_owned(), "typed".to_owned())].into(),
            ..Vm::default()
        };
        let host = Host {
            uuid: "00000003-5a1e-4003-8000-000000000003".into(),
            name_label: "host1".into(),
            address: "127.0.0.11".into(),
            enabled: true,
            pbds: vec![crate::xapi::records::Ref::new("OpaqueRef:pbd")],
            api_version_major: 2,
            api_version_minor: 21,
            ..Host::default()
        };
        Db::put(|d| &mut d.vm, &mut db, "OpaqueRef:vm", vm.clone());
        Db::put(|d| &mut d.host, &mut db, "OpaqueRef:h1", host.clone());
        Db::put(
            |d| &mut d.pbd,
            &mut db,
            "OpaqueRef:pbd",
            Pbd {
                sr: crate::xapi::records::Ref::new("OpaqueRef:local"),
                ..Pbd::default()
            },
        );
        Db::put(|d| &mut d.sr, &mut db, "OpaqueRef:local", Sr::default());
        (db, vm, host)
    }

    fn names(record: &Value) -> Vec<&str> {
        match record {
            Value::Struct(members) => members.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// xapi-notes.md §5.1 / §7.3: a VM record on the wire carries about a hundred fields, and still
    /// decodes into the typed record it came from.
    #[test]
    fn vm_records_on_the_wire_look_real_and_decode_to_the_typed_record() {
        use crate::xapi::typed::from_value;
        use crate::xapi::wire::{self, Response};

        let (db, vm, _) = sample();
        let record = db.record("VM", "OpaqueRef:vm").unwrap();
        let fields = names(&record);
        assert!(fields.len() >= 90, "{} fields: {fields:?}", fields.len());
        let unique: BTreeSet<&str> = fields.iter().copied().collect();
        assert_eq!(unique.len(), fields.len(), "a field appears twice");
        // Through real XML, as a client receives it.
        let body = wire::encode_success(&Value::Struct(vec![("OpaqueRef:vm".into(), record)]));
        let Ok(Response::Success(Value::Struct(mut all))) = wire::decode_response(body.as_bytes())
        else {
            panic!("undecodable answer");
        };
        let (_, received) = all.remove(0);
        assert_eq!(from_value::<Vm>(received.clone()).unwrap(), vm);
        // Values as xapi writes them, consistent with the typed fields.
        assert_eq!(
            received.member("memory_target"),
            Some(&Value::string("2147483648"))
        );
        assert_eq!(received.member("VCPUs_max"), Some(&Value::string("2")));
        assert_eq!(
            received.member("suspend_VDI"),
            Some(&Value::string(NULL_REF))
        );
        assert_eq!(received.member("ha_always_run"), Some(&Value::Bool(true)));
        assert_eq!(
            received.member("HVM_shadow_multiplier"),
            Some(&Value::Double(1.0))
        );
        assert_eq!(
            received.member("snapshot_time"),
            Some(&Value::DateTime("19700101T00:00:00Z".into()))
        );
        assert!(matches!(received.member("platform"), Some(Value::Struct(m)) if m.len() >= 10));
        assert!(
            field_string(&received, "recommendations")
                .is_some_and(|r| r.starts_with("<restrictions>"))
        );
        assert!(
            field_string(&received, "last_booted_record")
                .is_some_and(|r| r.len() > 1000 && r.contains(&vm.uuid))
        );
        // Padding never shadows a typed field, and follows power state changes.
        assert_eq!(
            received.member("other_config"),
            Some(&Value::Struct(vec![(
                "platform".into(),
                Value::string("typed")
            )]))
        );
        let mut db = db;
        Db::update(
            |d| &mut d.vm,
            &mut db,
            "OpaqueRef:vm",
            |v| v.power_state = PowerState::Halted,
        );
        let halted = db.record("VM", "OpaqueRef:vm").unwrap();
        assert_eq!(halted.member("memory_target"), Some(&Value::string("0")));
        assert_eq!(halted.member("consoles"), Some(&Value::Array(Vec::new())));
        // Every path pads the same way.
        let listed = db.records("VM").unwrap().remove(0).1;
        assert_eq!(listed, halted);
        let event = db.events_since(&["vm".into()], 0).remove(0);
        assert_eq!(event.member("snapshot"), Some(&halted));
    }

    #[test]
    fn control_domains_and_hosts_are_padded_too() {
        use crate::xapi::typed::from_value;

        let (mut db, _, host) = sample();
        Db::put(
            |d| &mut d.vm,
            &mut db,
            "OpaqueRef:dom0",
            Vm {
                uuid: "dom0".into(),
                is_control_domain: true,
                power_state: PowerState::Running,
                ..Vm::default()
            },
        );
        let dom0 = db.record("VM", "OpaqueRef:dom0").unwrap();
        assert_eq!(field_string(&dom0, "domain_type").as_deref(), Some("pv"));
        assert_eq!(
            field_string(&dom0, "last_booted_record").as_deref(),
            Some("")
        );
        assert!(names(&dom0).len() >= 90);

        let record = db.record("host", "OpaqueRef:h1").unwrap();
        let fields = names(&record);
        assert!(fields.len() >= 60, "{} fields: {fields:?}", fields.len());
        let unique: BTreeSet<&str> = fields.iter().copied().collect();
        assert_eq!(unique.len(), fields.len(), "a field appears twice");
        assert_eq!(
            field_string(&record, "suspend_image_sr").as_deref(),
            Some("OpaqueRef:local")
        );
        assert!(
            matches!(record.member("host_CPUs"), Some(Value::Array(cpus)) if cpus.len() == HOST_CPUS)
        );
        assert!(matches!(record.member("cpu_info"), Some(Value::Struct(_))));
        assert_eq!(from_value::<Host>(record).unwrap(), host);
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(parse_token(&token_of(4711)), Some(4711));
        assert_eq!(parse_token(""), Some(0));
        assert_eq!(parse_token("garbage"), None);
    }
}
