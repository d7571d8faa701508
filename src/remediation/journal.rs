//! The journal: an embedded SQLite database (WAL, synchronous=FULL) holding every
//! notification received, every alert (deduplicated on fingerprint, startsAt and status),
//! every rejected request, and every remediation with its steps and evidence.
//!
//! # Guarantees
//! - A notification is acknowledged to Alertmanager only after its transaction committed.
//! - The same firing (fingerprint, startsAt) creates at most one remediation.
//! - Phases and steps are written before the action they describe is issued.
//! - Each pool's last host inventory is kept, so a receiver restarted while a master is down
//!   can still name the pool's hosts.
//!
//! # Caveats
//! Calls are synchronous and short (one local transaction each); they run on the caller's
//! thread under a mutex.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::alert::{Message, Status};
use super::inventory::Inventory;

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// SQLite failed (disk full, permissions, corruption…).
    #[error("journal: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database directory could not be created.
    #[error("journal directory: {0}")]
    Io(#[from] std::io::Error),
    /// A stored document could not be written or read back.
    #[error("journal document: {0}")]
    Encoding(serde_json::Error),
    /// Another receiver process holds this journal.
    #[error(
        "journal {0} is held by another receiver (lock file {0}.lock): one receiver per journal, or both would act"
    )]
    Held(String),
}

/// An alert seen for the first time in this status.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// Row id.
    pub id: i64,
    /// `firing` or `resolved`.
    pub status: Status,
    /// The alert's fingerprint.
    pub fingerprint: String,
    /// Its startsAt.
    pub starts_at: String,
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
}

/// What happened to a notification.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Received {
    /// Alerts not seen before.
    pub new: Vec<NewAlert>,
    /// Alerts already journaled in the same status.
    pub duplicates: usize,
}

/// A remediation as listed by `GET /remediations` and `xenguard journal`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Remediation {
    /// Id.
    pub id: i64,
    /// Unix time of creation.
    pub created_at: f64,
    /// Unix time of the last change.
    pub updated_at: f64,
    /// Pool name.
    pub pool: String,
    /// Host uuid (empty when the alert named none).
    pub host_uuid: String,
    /// What the plan is for (`recover_host`, `recover_master`).
    pub kind: String,
    /// The alert that started it.
    pub alertname: String,
    /// Fingerprint of that alert.
    pub fingerprint: String,
    /// Its startsAt.
    pub starts_at: String,
    /// Current phase.
    pub phase: String,
    /// Why it is in this phase.
    pub reason: String,
}

/// An operator's request, written by `xenguard journal approve|abort|attest`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    /// Row id.
    pub id: i64,
    /// The remediation it is for.
    pub remediation_id: i64,
    /// Unix time it was made.
    pub at: f64,
    /// `approve`, `abort` or `attest`.
    pub kind: String,
    /// Who made it (the operator's user name).
    pub operator: String,
}

/// One journaled step or piece of evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Unix time.
    pub at: f64,
    /// What kind of entry (`planned`, `blocked`, `aborted`, `evidence`, …).
    pub kind: String,
    /// Details (JSON).
    pub detail: serde_json::Value,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    group_key TEXT NOT NULL,
    status TEXT NOT NULL,
    receiver TEXT NOT NULL,
    alerts INTEGER NOT NULL,
    truncated_alerts INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    notification_id INTEGER NOT NULL REFERENCES notifications(id),
    received_at REAL NOT NULL,
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    status TEXT NOT NULL,
    alertname TEXT NOT NULL,
    labels TEXT NOT NULL,
    UNIQUE (fingerprint, starts_at, status)
);
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    http_status INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS remediations (
    id INTEGER PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    pool TEXT NOT NULL,
    host_uuid TEXT NOT NULL,
    kind TEXT NOT NULL,
    alertname TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    phase TEXT NOT NULL,
    reason TEXT NOT NULL,
    UNIQUE (fingerprint, starts_at)
);
CREATE TABLE IF NOT EXISTS fences (
    id INTEGER PRIMARY KEY,
    remediation_id INTEGER NOT NULL REFERENCES remediations(id),
    at REAL NOT NULL,
    pool TEXT NOT NULL,
    host_uuid TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS storms (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    pool TEXT NOT NULL,
    unhealthy INTEGER NOT NULL,
    hosts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    remediation_id INTEGER NOT NULL REFERENCES remediations(id),
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    operator TEXT NOT NULL,
    handled_at REAL,
    result TEXT
);
CREATE TABLE IF NOT EXISTS inventories (
    pool TEXT PRIMARY KEY,
    read_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('instance', lower(hex(randomblob(16))));
CREATE TABLE IF NOT EXISTS steps (
    id INTEGER PRIMARY KEY,
    remediation_id INTEGER NOT NULL REFERENCES remediations(id),
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
";

/// The journal database.
#[derive(Debug)]
pub struct Journal {
    conn: Mutex<Connection>,
    path: std::path::PathBuf,
    /// The receiver's exclusive lock (`<journal>.lock`), while it holds one.
    lock: Mutex<Option<std::fs::File>>,
}

impl Journal {
    /// Opens (creating if needed) the journal at `path`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let has_state: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('remediations') WHERE name = 'state'")?
            .exists([])?;
        if !has_state {
            // Journals written before the executor existed: their plans carry no run state.
            conn.execute_batch(
                "ALTER TABLE remediations ADD COLUMN state TEXT NOT NULL DEFAULT '{}'",
            )?;
        }
        Ok(Journal {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            lock: Mutex::new(None),
        })
    }

    /// Takes the exclusive lock only an acting receiver holds, or fails if another process
    /// holds it. A separate file: closing any descriptor of the database itself would drop
    /// SQLite's own locks. Operator commands read and write without it.
    pub fn hold(&self) -> Result<(), JournalError> {
        let mut name = self.path.clone().into_os_string();
        name.push(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&name)?;
        match file.try_lock() {
            Ok(()) => {
                *self.lock.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
                Ok(())
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(JournalError::Held(self.path.display().to_string()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// Gives the lock up (the receiver is shutting down).
    pub fn release(&self) {
        self.lock.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// This journal's identity, made once when it was created: the owner a receiver writes
    /// into the pool's lease, the same across restarts of the receiver that uses it.
    pub fn instance(&self) -> Result<String, JournalError> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = 'instance'", [], |row| {
                row.get(0)
            })?)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Journals a notification and its alerts in one transaction; reports which alerts are
    /// new and how many were duplicates (Alertmanager redelivers by design).
    pub fn record_notification(
        &self,
        message: &Message,
        body: &str,
        now: f64,
    ) -> Result<Received, JournalError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO notifications (received_at, group_key, status, receiver, alerts, truncated_alerts, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                now,
                message.group_key,
                message.status.as_str(),
                message.receiver,
                message.alerts.len() as i64,
                message.truncated_alerts as i64,
                body
            ],
        )?;
        let notification = tx.last_insert_rowid();
        let mut received = Received::default();
        for alert in &message.alerts {
            let labels = serde_json::to_string(&alert.labels).unwrap_or_default();
            let inserted = tx.execute(
                "INSERT INTO alerts (notification_id, received_at, fingerprint, starts_at, status, alertname, labels) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                params![notification, now, alert.fingerprint, alert.starts_at, alert.status.as_str(), alert.name(), labels],
            )?;
            if inserted == 1 {
                received.new.push(NewAlert {
                    id: tx.last_insert_rowid(),
                    status: alert.status,
                    fingerprint: alert.fingerprint.clone(),
                    starts_at: alert.starts_at.clone(),
                    labels: alert.labels.clone(),
                });
            } else {
                received.duplicates += 1;
            }
        }
        tx.commit()?;
        Ok(received)
    }

    /// Journals a rejected request (never its body: it may hold credentials).
    pub fn record_rejection(
        &self,
        http_status: u16,
        reason: &str,
        now: f64,
    ) -> Result<(), JournalError> {
        self.conn().execute(
            "INSERT INTO rejections (received_at, http_status, reason) VALUES (?1, ?2, ?3)",
            params![now, http_status, reason],
        )?;
        Ok(())
    }

    /// Creates a remediation for one firing, unless that firing already has one (then `None`).
    #[allow(clippy::too_many_arguments)]
    pub fn create_remediation(
        &self,
        pool: &str,
        host_uuid: &str,
        kind: &str,
        alertname: &str,
        fingerprint: &str,
        starts_at: &str,
        phase: &str,
        reason: &str,
        now: f64,
    ) -> Result<Option<i64>, JournalError> {
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO remediations (created_at, updated_at, pool, host_uuid, kind, alertname, fingerprint, starts_at, phase, reason) VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
            params![now, pool, host_uuid, kind, alertname, fingerprint, starts_at, phase, reason],
        )?;
        Ok((inserted == 1).then(|| conn.last_insert_rowid()))
    }

    /// Moves a remediation to `phase`, recording why, and appends the step that says so, in
    /// one transaction: a crash leaves both or neither.
    pub fn set_phase_with_step(
        &self,
        id: i64,
        phase: &str,
        reason: &str,
        step: &str,
        detail: &serde_json::Value,
        now: f64,
    ) -> Result<(), JournalError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE remediations SET phase = ?2, reason = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, phase, reason, now],
        )?;
        tx.execute(
            "INSERT INTO steps (remediation_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![id, now, step, detail.to_string()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Appends a step or piece of evidence.
    pub fn add_step(
        &self,
        id: i64,
        kind: &str,
        detail: &serde_json::Value,
        now: f64,
    ) -> Result<(), JournalError> {
        self.conn().execute(
            "INSERT INTO steps (remediation_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![id, now, kind, detail.to_string()],
        )?;
        Ok(())
    }

    /// The remediation of one firing, if any.
    pub fn remediation_for(
        &self,
        fingerprint: &str,
        starts_at: &str,
    ) -> Result<Option<Remediation>, JournalError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "{SELECT} WHERE fingerprint = ?1 AND starts_at = ?2"
        ))?;
        Ok(stmt
            .query_row(params![fingerprint, starts_at], row)
            .optional()?)
    }

    /// Remediations, newest first (at most `limit`).
    pub fn list(&self, limit: usize) -> Result<Vec<Remediation>, JournalError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY id DESC LIMIT ?1"))?;
        let rows = stmt.query_map(params![limit as i64], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One remediation and its steps.
    pub fn show(&self, id: i64) -> Result<Option<(Remediation, Vec<Step>)>, JournalError> {
        let conn = self.conn();
        let remediation = conn
            .prepare(&format!("{SELECT} WHERE id = ?1"))?
            .query_row(params![id], row)
            .optional()?;
        let Some(remediation) = remediation else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare("SELECT at, kind, detail FROM steps WHERE remediation_id = ?1 ORDER BY id")?;
        let steps = stmt
            .query_map(params![id], |r| {
                let detail: String = r.get(2)?;
                Ok(Step {
                    at: r.get(0)?,
                    kind: r.get(1)?,
                    detail: serde_json::from_str(&detail)
                        .unwrap_or(serde_json::Value::String(detail)),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some((remediation, steps)))
    }

    /// The run state of a remediation (JSON written by the executor; `{}` before it ran).
    pub fn state(&self, id: i64) -> Result<serde_json::Value, JournalError> {
        let text: String = self.conn().query_row(
            "SELECT state FROM remediations WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Replaces the run state of a remediation.
    pub fn set_state(
        &self,
        id: i64,
        state: &serde_json::Value,
        now: f64,
    ) -> Result<(), JournalError> {
        self.conn().execute(
            "UPDATE remediations SET state = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, state.to_string(), now],
        )?;
        Ok(())
    }

    /// Remediations whose phase is one of `phases`, oldest first.
    pub fn in_phases(&self, phases: &[&str]) -> Result<Vec<Remediation>, JournalError> {
        let conn = self.conn();
        let marks = vec!["?"; phases.len()].join(",");
        let mut stmt = conn.prepare(&format!("{SELECT} WHERE phase IN ({marks}) ORDER BY id"))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(phases), row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records a fence attempt (`issued`, `confirmed_off`, `failed`) of a pool's host.
    pub fn record_fence(
        &self,
        id: i64,
        pool: &str,
        host_uuid: &str,
        outcome: &str,
        now: f64,
    ) -> Result<(), JournalError> {
        self.conn().execute(
            "INSERT INTO fences (remediation_id, at, pool, host_uuid, outcome) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, now, pool, host_uuid, outcome],
        )?;
        Ok(())
    }

    /// Fences issued in `pool` since `since` (Unix time).
    pub fn fences_since(&self, pool: &str, since: f64) -> Result<u32, JournalError> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM fences WHERE pool = ?1 AND outcome = 'issued' AND at >= ?2",
            params![pool, since],
            |r| r.get(0),
        )?;
        Ok(n as u32)
    }

    /// Unix time of the last fence issued at a host, if any.
    pub fn last_fence_of(&self, pool: &str, host_uuid: &str) -> Result<Option<f64>, JournalError> {
        Ok(self.conn().query_row(
            "SELECT MAX(at) FROM fences WHERE pool = ?1 AND host_uuid = ?2 AND outcome = 'issued'",
            params![pool, host_uuid],
            |r| r.get(0),
        )?)
    }

    /// Uuids of the pool's hosts this receiver ever powered off or had attested off: every
    /// fence issued (a fence resumed after a crash and read back off writes no second record)
    /// and every host an operator attested.
    pub fn fenced_hosts(&self, pool: &str) -> Result<Vec<String>, JournalError> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT host_uuid FROM fences WHERE pool = ?1 \
             UNION SELECT r.host_uuid FROM remediations r JOIN requests q ON q.remediation_id = r.id \
             WHERE r.pool = ?1 AND q.kind = 'attest' AND r.host_uuid != ''",
        )?;
        let hosts = statement
            .query_map(params![pool], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(hosts)
    }

    /// Records a pool's stand-down for a storm: `unhealthy` of its `hosts` at once.
    pub fn record_storm(
        &self,
        pool: &str,
        unhealthy: usize,
        hosts: usize,
        now: f64,
    ) -> Result<(), JournalError> {
        self.conn().execute(
            "INSERT INTO storms (at, pool, unhealthy, hosts) VALUES (?1, ?2, ?3, ?4)",
            params![now, pool, unhealthy as i64, hosts as i64],
        )?;
        Ok(())
    }

    /// Unix time of the pool's last stand-down for a storm, if any.
    pub fn last_storm(&self, pool: &str) -> Result<Option<f64>, JournalError> {
        Ok(self.conn().query_row(
            "SELECT MAX(at) FROM storms WHERE pool = ?1",
            params![pool],
            |r| r.get(0),
        )?)
    }

    /// The hosts (uuids) the pool's remediations planned since `since` are about.
    pub fn recent_suspects(&self, pool: &str, since: f64) -> Result<Vec<String>, JournalError> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT DISTINCT host_uuid FROM remediations WHERE pool = ?1 AND created_at >= ?2 AND host_uuid != ''",
        )?;
        let hosts = statement
            .query_map(params![pool, since], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(hosts)
    }

    /// Records an operator's request (`approve`, `abort`, `attest`) for the receiver to act on.
    pub fn add_request(
        &self,
        id: i64,
        kind: &str,
        operator: &str,
        now: f64,
    ) -> Result<i64, JournalError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO requests (remediation_id, at, kind, operator) VALUES (?1, ?2, ?3, ?4)",
            params![id, now, kind, operator],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Requests not handled yet, oldest first.
    pub fn pending_requests(&self) -> Result<Vec<Request>, JournalError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, remediation_id, at, kind, operator FROM requests WHERE handled_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Request {
                id: r.get(0)?,
                remediation_id: r.get(1)?,
                at: r.get(2)?,
                kind: r.get(3)?,
                operator: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks a request handled, with what came of it.
    pub fn handle_request(&self, id: i64, result: &str, now: f64) -> Result<(), JournalError> {
        self.conn().execute(
            "UPDATE requests SET handled_at = ?2, result = ?3 WHERE id = ?1",
            params![id, now, result],
        )?;
        Ok(())
    }

    /// What came of a request (`None` while the receiver has not handled it).
    pub fn request_result(&self, id: i64) -> Result<Option<String>, JournalError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT result FROM requests WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?
            .flatten())
    }

    /// Whether a `resolved` notification arrived for this firing.
    pub fn alert_resolved(&self, fingerprint: &str, starts_at: &str) -> Result<bool, JournalError> {
        Ok(self
            .conn()
            .prepare(
                "SELECT 1 FROM alerts WHERE fingerprint = ?1 AND starts_at = ?2 AND status = 'resolved'",
            )?
            .exists(params![fingerprint, starts_at])?)
    }

    /// Records which host a remediation is about, once confirmation named it.
    pub fn set_host(&self, id: i64, host_uuid: &str) -> Result<(), JournalError> {
        self.conn().execute(
            "UPDATE remediations SET host_uuid = ?2 WHERE id = ?1",
            params![id, host_uuid],
        )?;
        Ok(())
    }

    /// A remediation of this host, other than `except`, that finished `done` since `since`.
    pub fn done_for_host(
        &self,
        pool: &str,
        host_uuid: &str,
        since: f64,
        except: i64,
    ) -> Result<Option<i64>, JournalError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id FROM remediations WHERE pool = ?1 AND host_uuid = ?2 AND phase = 'done' AND updated_at >= ?3 AND id != ?4 ORDER BY id DESC LIMIT 1",
                params![pool, host_uuid, since, except],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The host the pool's latest finished master recovery promoted (its uuid), if any.
    pub fn last_promotion(&self, pool: &str) -> Result<Option<String>, JournalError> {
        let state: Option<String> = self
            .conn()
            .query_row(
                "SELECT state FROM remediations WHERE pool = ?1 AND kind = 'recover_master' AND phase = 'done' ORDER BY id DESC LIMIT 1",
                params![pool],
                |r| r.get(0),
            )
            .optional()?;
        Ok(state
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| v["survivor"]["uuid"].as_str().map(str::to_owned)))
    }

    /// One remediation.
    pub fn remediation(&self, id: i64) -> Result<Option<Remediation>, JournalError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{SELECT} WHERE id = ?1"))?;
        Ok(stmt.query_row(params![id], row).optional()?)
    }

    /// Keeps `inventory` as the last one read for `pool` (replacing the one before).
    pub fn save_inventory(&self, pool: &str, inventory: &Inventory) -> Result<(), JournalError> {
        let body = serde_json::to_string(inventory).map_err(JournalError::Encoding)?;
        self.conn().execute(
            "INSERT INTO inventories (pool, read_at, body) VALUES (?1, ?2, ?3) \
             ON CONFLICT (pool) DO UPDATE SET read_at = excluded.read_at, body = excluded.body",
            params![pool, inventory.read_at, body],
        )?;
        Ok(())
    }

    /// The last inventory kept for `pool`, if any.
    pub fn inventory(&self, pool: &str) -> Result<Option<Inventory>, JournalError> {
        let body: Option<String> = self
            .conn()
            .query_row(
                "SELECT body FROM inventories WHERE pool = ?1",
                params![pool],
                |r| r.get(0),
            )
            .optional()?;
        body.map(|b| serde_json::from_str(&b).map_err(JournalError::Encoding))
            .transpose()
    }

    /// Counts of journaled rows: (notifications, alerts, rejections, remediations).
    pub fn counts(&self) -> Result<(i64, i64, i64, i64), JournalError> {
        let conn = self.conn();
        let count = |table: &str| -> Result<i64, rusqlite::Error> {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        };
        Ok((
            count("notifications")?,
            count("alerts")?,
            count("rejections")?,
            count("remediations")?,
        ))
    }
}

const SELECT: &str = "SELECT id, created_at, updated_at, pool, host_uuid, kind, alertname, fingerprint, starts_at, phase, reason FROM remediations";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Remediation> {
    Ok(Remediation {
        id: r.get(0)?,
        created_at: r.get(1)?,
        updated_at: r.get(2)?,
        pool: r.get(3)?,
        host_uuid: r.get(4)?,
        kind: r.get(5)?,
        alertname: r.get(6)?,
        fingerprint: r.get(7)?,
        starts_at: r.get(8)?,
        phase: r.get(9)?,
        reason: r.get(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remediation::alert::{Alert, Message};

    fn message(status: Status, starts_at: &str) -> Message {
        Message {
            version: "4".into(),
            group_key: "g".into(),
            truncated_alerts: 0,
            status,
            receiver: "xenguard".into(),
            group_labels: Default::default(),
            common_labels: Default::default(),
            common_annotations: Default::default(),
            external_url: String::new(),
            alerts: vec![Alert {
                status,
                labels: [("alertname".to_string(), "XenVmsStuckOnDeadHost".to_string())].into(),
                annotations: Default::default(),
                starts_at: starts_at.into(),
                ends_at: String::new(),
                generator_url: String::new(),
                fingerprint: "f1".into(),
            }],
        }
    }

    #[test]
    fn duplicates_are_recognised_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let journal = Journal::open(&path).unwrap();
        let first = journal
            .record_notification(&message(Status::Firing, "t1"), "{}", 1.0)
            .unwrap();
        assert_eq!((first.new.len(), first.duplicates), (1, 0));
        let again = journal
            .record_notification(&message(Status::Firing, "t1"), "{}", 2.0)
            .unwrap();
        assert_eq!((again.new.len(), again.duplicates), (0, 1));
        drop(journal);
        let journal = Journal::open(&path).unwrap();
        let resolved = journal
            .record_notification(&message(Status::Resolved, "t1"), "{}", 3.0)
            .unwrap();
        assert_eq!(
            resolved.new.len(),
            1,
            "resolution of the same firing is new"
        );
        let refired = journal
            .record_notification(&message(Status::Firing, "t2"), "{}", 4.0)
            .unwrap();
        assert_eq!(refired.new.len(), 1, "a new firing (new startsAt) is new");
        assert_eq!(journal.counts().unwrap(), (4, 3, 0, 0));
    }

    /// A host counts as fenced before from its first fence record (a fence resumed after a
    /// crash adds none) or from an operator's attestation; another pool's are not its.
    #[test]
    fn fenced_hosts_include_interrupted_fences_and_attestations() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.db")).unwrap();
        let plan = |host: &str, fingerprint: &str| {
            journal
                .create_remediation(
                    "p",
                    host,
                    "recover_host",
                    "A",
                    fingerprint,
                    "t",
                    "planned",
                    "",
                    1.0,
                )
                .unwrap()
                .unwrap()
        };
        let crashed = plan("h1", "f1");
        journal
            .record_fence(crashed, "p", "h1", "issued", 2.0)
            .unwrap();
        let attested = plan("h2", "f2");
        journal
            .add_request(attested, "attest", "alice", 3.0)
            .unwrap();
        plan("h3", "f3");
        let other = journal
            .create_remediation(
                "q",
                "h4",
                "recover_host",
                "A",
                "f4",
                "t",
                "planned",
                "",
                1.0,
            )
            .unwrap()
            .unwrap();
        journal
            .record_fence(other, "q", "h4", "confirmed_off", 2.0)
            .unwrap();
        let mut fenced = journal.fenced_hosts("p").unwrap();
        fenced.sort();
        assert_eq!(fenced, ["h1", "h2"]);
    }

    #[test]
    fn one_remediation_per_firing_with_steps() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(&dir.path().join("j.db")).unwrap();
        let id = journal
            .create_remediation("p", "h", "recover_host", "A", "f", "t", "planned", "r", 1.0)
            .unwrap()
            .unwrap();
        assert_eq!(
            journal
                .create_remediation("p", "h", "recover_host", "A", "f", "t", "planned", "r", 2.0)
                .unwrap(),
            None
        );
        journal
            .add_step(id, "planned", &serde_json::json!({"steps": ["fence"]}), 3.0)
            .unwrap();
        journal
            .set_phase_with_step(
                id,
                "aborted",
                "resolved before acting",
                "phase",
                &serde_json::json!({}),
                4.0,
            )
            .unwrap();
        let (r, steps) = journal.show(id).unwrap().unwrap();
        assert_eq!(
            (r.phase.as_str(), r.reason.as_str()),
            ("aborted", "resolved before acting")
        );
        assert_eq!(steps[0].detail["steps"][0], "fence");
        assert_eq!(journal.list(10).unwrap().len(), 1);
        assert_eq!(journal.remediation_for("f", "t").unwrap().unwrap().id, id);
    }

    #[test]
    fn the_last_inventory_of_each_pool_survives_reopening() {
        use crate::remediation::inventory::{KnownHost, SeenVm};
        use crate::xapi::records::Ref;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let inventory = |read_at: f64, master: &str| Inventory {
            hosts: vec![KnownHost {
                reference: Ref::new(master),
                uuid: "u1".into(),
                name_label: "host1".into(),
                address: "192.0.2.1".into(),
                in_maintenance: false,
            }],
            master: Ref::new(master),
            ha_enabled: true,
            master_vms: vec![SeenVm {
                reference: Ref::new("OpaqueRef:vm"),
                uuid: "v1".into(),
                name_label: "db".into(),
            }],
            read_at,
            boot_times: [("u1".to_owned(), 12.5)].into(),
        };
        let journal = Journal::open(&path).unwrap();
        assert_eq!(journal.inventory("a").unwrap(), None);
        journal
            .save_inventory("a", &inventory(1.0, "OpaqueRef:h1"))
            .unwrap();
        journal
            .save_inventory("a", &inventory(2.0, "OpaqueRef:h2"))
            .unwrap();
        journal
            .save_inventory("b", &inventory(3.0, "OpaqueRef:h3"))
            .unwrap();
        drop(journal);
        let journal = Journal::open(&path).unwrap();
        assert_eq!(
            journal.inventory("a").unwrap(),
            Some(inventory(2.0, "OpaqueRef:h2"))
        );
        assert_eq!(journal.inventory("b").unwrap().unwrap().read_at, 3.0);
    }
}
