//! The generic messages every class has: `get_all`, `get_all_records`, `get_record`,
//! `get_by_uuid`, `get_by_name_label`, `get_<field>` (docs/simulator.md, "Generic messages"),
//! and the map messages of `pool.other_config`.

use std::sync::Arc;

use crate::xapi::error::{ErrorCode, Failure};
use crate::xapi::wire::Value;

use super::db::{Db, Filter, Identity};
use super::methods::{fail, string_param, void};
use super::model::Model;

impl Model {
    // -----------------------------------------------------------------------------------------
    // Generic messages: get_all*, get_record, get_by_*, get_<field>
    // -----------------------------------------------------------------------------------------

    pub(super) fn generic(
        &self,
        m: usize,
        method: &str,
        params: &[Value],
    ) -> Result<Value, Failure> {
        let unknown = || Failure::new(ErrorCode::MessageMethodUnknown, vec![method.to_owned()]);
        let (class, message) = method.split_once('.').ok_or_else(unknown)?;
        let db = &self.hosts[m].db;
        // Encoding a whole class is costly (5,000 realistic VMs): only the messages that list
        // the class do it; single-object messages encode one record.
        let records = || db.records(class).ok_or_else(unknown);
        if !db.has_class(class) {
            return Err(unknown());
        }
        match message {
            "get_all" => Ok(Value::Array(
                records()?
                    .into_iter()
                    .map(|(r, _)| Value::String(r))
                    .collect(),
            )),
            "get_all_records" => Ok(Value::Struct(records()?)),
            "get_all_records_where" | "get_all_where" => {
                let expr = string_param(params, 0)?;
                let filter = Filter::parse(&expr)
                    .map_err(|e| Failure::new(ErrorCode::InvalidValue, vec![expr.clone(), e]))?;
                let all = records()?;
                let matching = all.into_iter().filter(|(_, v)| filter.matches(v));
                Ok(if message == "get_all_where" {
                    Value::Array(matching.map(|(r, _)| Value::String(r)).collect())
                } else {
                    Value::Struct(matching.collect())
                })
            }
            "get_record" => {
                let reference = string_param(params, 0)?;
                db.record(class, &reference).ok_or_else(|| {
                    Failure::new(ErrorCode::HandleInvalid, vec![class.into(), reference])
                })
            }
            "get_by_uuid" => {
                let uuid = string_param(params, 0)?;
                db.find_refs(class, Identity::Uuid, &uuid)
                    .into_iter()
                    .next()
                    .map(Value::String)
                    .ok_or_else(|| Failure::new(ErrorCode::UuidInvalid, vec![class.into(), uuid]))
            }
            "get_by_name_label" => {
                let label = string_param(params, 0)?;
                Ok(Value::Array(
                    db.find_refs(class, Identity::NameLabel, &label)
                        .into_iter()
                        .map(Value::String)
                        .collect(),
                ))
            }
            field_getter => {
                let field = field_getter.strip_prefix("get_").ok_or_else(unknown)?;
                let reference = string_param(params, 0)?;
                let record = db.record(class, &reference).ok_or_else(|| {
                    Failure::new(ErrorCode::HandleInvalid, vec![class.into(), reference])
                })?;
                record.member(field).cloned().ok_or_else(unknown)
            }
        }
    }

    /// `pool.add_to_other_config` / `pool.remove_from_other_config`. As on a real master, an
    /// add of a key already present fails with MAP_DUPLICATE_KEY, whatever its value: the
    /// generated `add_to_<map>` actions use the legacy map add (`AddMapLegacy` in
    /// gen_db_actions.ml), which is idempotent only where `Db_globs.idempotent_map` is set, and
    /// it is not by default. Removing an absent key is no error.
    pub(super) fn pool_other_config(
        &mut self,
        m: usize,
        params: &[Value],
        add: bool,
    ) -> Result<Value, Failure> {
        let pool = self.require(m, params, "pool")?;
        let key = string_param(params, 1)?;
        let value = if add {
            Some(string_param(params, 2)?)
        } else {
            None
        };
        let present = |p: &crate::xapi::records::Pool| p.other_config.contains_key(&key);
        if value.is_some() && self.hosts[m].db.pool.get(&pool).is_some_and(present) {
            return fail(
                ErrorCode::MapDuplicateKey,
                vec!["pool".into(), "other_config".into(), pool, key],
            );
        }
        Db::update(
            |d| &mut d.pool,
            Arc::make_mut(&mut self.hosts[m].db),
            &pool,
            |p| match value {
                Some(value) => {
                    p.other_config.insert(key, value);
                }
                None => {
                    p.other_config.remove(&key);
                }
            },
        );
        void()
    }
}
