//! `pools`: names, hosts, port and scheme, certificate verification (pins), credentials,
//! timeouts; a host belongs to one pool only.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use super::Checker;
use crate::config::diagnostics::Pos;
use crate::config::model::{
    Credentials, PoolConfig, PoolTimeouts, ResourceMetrics, Scheme, TlsConfig, defaults,
};
use crate::config::raw::{Located, RawPool, RawResourceMetrics, RawTls};

impl Checker {
    pub(super) fn pools(&mut self, raw: &Located<Vec<Located<RawPool>>>) -> Vec<PoolConfig> {
        if raw.value.is_empty() && !self.tainted(raw) {
            self.error(raw.pos, "`pools` must list at least one pool");
        }
        let mut names: HashMap<String, Pos> = HashMap::new();
        let mut host_owner: HashMap<String, (String, Pos)> = HashMap::new();
        let mut pools = Vec::new();
        for pool in &raw.value {
            let name = &pool.value.name;
            if let Some(first) = names.get(&name.value) {
                self.error(
                    name.pos,
                    format!(
                        "duplicate pool name `{}` (first used on line {})",
                        name.value, first.line
                    ),
                );
            } else {
                names.insert(name.value.clone(), name.pos);
            }
            let config = self.pool(pool);
            for (host, raw_host) in config.hosts.iter().zip(&pool.value.hosts.value) {
                match host_owner.get(&host_key(host)) {
                    Some((owner, first)) if *owner != config.name => self.error(
                        raw_host.pos,
                        format!(
                            "host `{host}` is already listed in pool `{owner}` (line {})",
                            first.line
                        ),
                    ),
                    _ => {
                        host_owner.insert(host_key(host), (config.name.clone(), raw_host.pos));
                    }
                }
            }
            pools.push(config);
        }
        pools
    }

    fn pool(&mut self, located: &Located<RawPool>) -> PoolConfig {
        let raw = &located.value;
        let name = raw.name.value.clone();
        if !valid_pool_name(&name) {
            self.error(
                raw.name.pos,
                format!(
                    "pool name `{name}` must be 1 to 63 characters from `a-z`, `0-9`, `_` and `-`"
                ),
            );
        }

        if raw.hosts.value.is_empty() && !self.tainted(&raw.hosts) {
            self.error(
                raw.hosts.pos,
                format!("pool `{name}` needs at least one host"),
            );
        }
        let mut seen: HashMap<String, Pos> = HashMap::new();
        let mut hosts = Vec::new();
        for host in &raw.hosts.value {
            if let Err(why) = check_address(&host.value) {
                self.error(host.pos, format!("host `{}` {why}", host.value));
            }
            if let Some(first) = seen.get(&host_key(&host.value)) {
                self.error(
                    host.pos,
                    format!(
                        "host `{}` is listed twice (first on line {})",
                        host.value, first.line
                    ),
                );
                continue;
            }
            seen.insert(host_key(&host.value), host.pos);
            hosts.push(host.value.clone());
        }

        let scheme = raw.scheme.as_ref().map_or(Scheme::Https, |s| s.value);
        if let Some(scheme) = raw.scheme.as_ref().filter(|s| s.value == Scheme::Http) {
            self.warning(
                scheme.pos,
                format!("pool `{name}` uses plain HTTP: its password crosses the network in clear"),
            );
        }
        let port = match &raw.port {
            None => scheme.default_port(),
            Some(port) => {
                if port.value == 0 {
                    self.error(port.pos, "`port` must be between 1 and 65535");
                }
                port.value
            }
        };

        let tls = match &raw.tls {
            None => TlsConfig::default(),
            Some(tls) => self.tls(tls, scheme, &name, &hosts),
        };

        let username = match &raw.username {
            None => defaults::USERNAME.to_owned(),
            Some(username) => self.non_empty(username, "username"),
        };

        let credentials = match (&raw.password_file, &raw.password_env) {
            (Some(file), None) => Credentials::File(self.path(file, "password_file")),
            (None, Some(env)) => {
                if !valid_env_name(&env.value) {
                    self.error(
                        env.pos,
                        format!(
                            "`password_env` must be an environment variable name \
                             (letters, digits, `_`, not starting with a digit), got `{}`",
                            env.value
                        ),
                    );
                }
                Credentials::Env(env.value.clone())
            }
            (Some(file), Some(env)) => {
                let later = if env.pos > file.pos {
                    env.pos
                } else {
                    file.pos
                };
                self.error(
                    later,
                    format!("pool `{name}` sets both `password_file` and `password_env`; keep one"),
                );
                Credentials::File(file.value.clone())
            }
            (None, None) => {
                if !self.tainted(located) {
                    self.error(
                        located.pos,
                        format!(
                            "pool `{name}` needs `password_file` or `password_env` \
                             (passwords are never written in this file)"
                        ),
                    );
                }
                Credentials::Env(String::new())
            }
        };

        let timeouts = match &raw.timeouts {
            None => PoolTimeouts::default(),
            Some(timeouts) => {
                let t = &timeouts.value;
                PoolTimeouts {
                    connect: self.seconds(
                        t.connect_seconds.as_ref(),
                        "connect_seconds",
                        defaults::CONNECT_SECONDS,
                    ),
                    call: self.seconds(
                        t.call_seconds.as_ref(),
                        "call_seconds",
                        defaults::CALL_SECONDS,
                    ),
                    start_vm: self.seconds(
                        t.start_vm_seconds.as_ref(),
                        "start_vm_seconds",
                        defaults::START_VM_SECONDS,
                    ),
                }
            }
        };

        let resource_metrics = match &raw.resource_metrics {
            None => ResourceMetrics::default(),
            Some(r) => self.resource_metrics(&r.value),
        };

        PoolConfig {
            name,
            hosts,
            port,
            scheme,
            tls,
            username,
            credentials,
            timeouts,
            resource_metrics,
        }
    }

    /// `resource_metrics`: the patterns' spelling here; that each names a family the exporter
    /// publishes is checked when it starts (the family list is the exporter's).
    fn resource_metrics(&mut self, raw: &RawResourceMetrics) -> ResourceMetrics {
        let mut patterns = |list: &Option<Located<Vec<Located<String>>>>, key: &str| {
            let list = list.as_ref()?;
            if list.value.is_empty() && key == "allow" {
                self.warning(
                    list.pos,
                    "`allow` is empty: no resource metrics are published for this pool",
                );
            }
            Some(
                list.value
                    .iter()
                    .map(|p| {
                        let name = p.value.strip_suffix('*').unwrap_or(&p.value);
                        let valid = !name.is_empty()
                            && name
                                .bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                        if !valid {
                            self.error(
                                p.pos,
                                format!(
                                    "`{key}`: `{}` is not a metric family name (`a-z`, `0-9`, `_`) \
                                     or such a prefix followed by `*`",
                                    p.value
                                ),
                            );
                        }
                        p.value.clone()
                    })
                    .collect::<Vec<_>>(),
            )
        };
        let allow = patterns(&raw.allow, "allow");
        let deny = patterns(&raw.deny, "deny").unwrap_or_default();
        ResourceMetrics {
            allow,
            deny,
            unknown_sources: raw
                .unknown_sources
                .as_ref()
                .map(|u| u.value)
                .unwrap_or_default(),
        }
    }

    fn tls(
        &mut self,
        tls: &Located<RawTls>,
        scheme: Scheme,
        pool: &str,
        hosts: &[String],
    ) -> TlsConfig {
        let raw = &tls.value;
        if scheme == Scheme::Http {
            self.error(
                tls.pos,
                format!(
                    "pool `{pool}` uses `scheme: http`, so its `tls` settings would be ignored"
                ),
            );
        }
        let ca_file = raw
            .ca_file
            .as_ref()
            .map(|ca_file| self.path(ca_file, "ca_file"));
        let mut pins = BTreeMap::new();
        if let Some(raw_pins) = &raw.pins {
            for (address, fingerprint) in &raw_pins.value.0 {
                let Some(host) = hosts
                    .iter()
                    .find(|host| host_key(host) == host_key(&address.value))
                else {
                    self.error(
                        address.pos,
                        format!(
                            "pin for `{}`, which is not in pool `{pool}`'s `hosts`",
                            address.value
                        ),
                    );
                    continue;
                };
                match normalise_fingerprint(&fingerprint.value) {
                    Some(normalised) => {
                        pins.insert(host.clone(), normalised);
                    }
                    None => self.error(
                        fingerprint.pos,
                        format!(
                            "pin for `{}` is not a SHA-256 fingerprint (64 hex digits, \
                             optionally in colon-separated pairs)",
                            address.value
                        ),
                    ),
                }
            }
        }
        let insecure = raw.insecure_skip_verify.as_ref().is_some_and(|v| v.value);
        if let Some(flag) = raw.insecure_skip_verify.as_ref().filter(|v| v.value) {
            let has_pins = raw.pins.as_ref().is_some_and(|p| !p.value.0.is_empty());
            if raw.ca_file.is_some() || has_pins {
                self.error(
                    flag.pos,
                    "`insecure_skip_verify: true` contradicts `ca_file`/`pins`: remove one",
                );
            } else {
                self.warning(
                    flag.pos,
                    format!("pool `{pool}` skips TLS certificate verification"),
                );
            }
        }
        TlsConfig {
            ca_file,
            pins,
            insecure_skip_verify: insecure,
        }
    }
}

fn valid_pool_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// How two spellings of a host address are compared: IPs by value, names case-insensitively.
fn host_key(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// Accepts an IP address or a DNS name (RFC 1123); explains what is wrong otherwise.
fn check_address(host: &str) -> Result<(), String> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if host.contains("://") {
        return Err(
            "is a URL; give the host's address only (and `scheme`/`port` if needed)".into(),
        );
    }
    if host.parse::<SocketAddr>().is_ok()
        || host
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        return Err("must be an address without a port (set the pool's `port`)".into());
    }
    if host.starts_with('[') {
        return Err("must be written without brackets".into());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let numeric_tld = name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    if labels_ok && !numeric_tld {
        Ok(())
    } else {
        Err("is neither an IP address nor a valid DNS name".into())
    }
}

/// `ab:cd:..` or `abcd..` (64 hex digits, any case) -> `AB:CD:..`, as xapi prints it.
fn normalise_fingerprint(text: &str) -> Option<String> {
    let hex: String = if text.contains(':') {
        let pairs: Vec<&str> = text.split(':').collect();
        if pairs.len() != 32 || pairs.iter().any(|pair| pair.len() != 2) {
            return None;
        }
        pairs.concat()
    } else {
        text.to_owned()
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let upper = hex.to_ascii_uppercase();
    let mut out = String::with_capacity(95);
    for (index, digit) in upper.chars().enumerate() {
        if index > 0 && index % 2 == 0 {
            out.push(':');
        }
        out.push(digit);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_normalisation() {
        let upper = vec!["AB"; 32].join(":");
        assert_eq!(normalise_fingerprint(&"ab".repeat(32)), Some(upper.clone()));
        assert_eq!(normalise_fingerprint(&upper), Some(upper.clone()));
        assert_eq!(normalise_fingerprint(&"ab".repeat(31)), None);
        assert_eq!(normalise_fingerprint(&"zz".repeat(32)), None);
        assert_eq!(
            normalise_fingerprint(&format!("{}:", "ab".repeat(32))),
            None
        );
    }

    #[test]
    fn addresses() {
        for good in [
            "10.0.0.1",
            "fe80::1",
            "xen1",
            "xen-1.example.com",
            "xen1.example.com.",
        ] {
            assert_eq!(check_address(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "10.0.0.300",
            "[::1]",
            "h:80",
            "a..b",
            "-a",
            "a_b",
            "http://h",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}
