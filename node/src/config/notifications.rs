//! `[notifications]`: how long the event log is kept and the webhooks that follow it
//! (docs/notifications.md, docs/config.md). Loading refuses a webhook whose URL is not
//! http(s), whose secret file is missing or open to others, or whose name is taken.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[notifications]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Notifications {
    /// Events older than this are dropped by compaction (the newest is always kept).
    pub(crate) retention_hours: u64,
    /// At most this many events are kept.
    pub(crate) max_events: u64,
    /// Seconds between compactions.
    pub(crate) compact_seconds: u64,
    pub(crate) webhooks: Vec<Webhook>,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            retention_hours: 24 * 7,
            max_events: 1_000_000,
            compact_seconds: 300,
            webhooks: Vec::new(),
        }
    }
}

/// `[[notifications.webhooks]]`: one receiver of the event log, by POST.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Webhook {
    /// Names its cursor in the store and its metrics: letters, digits, `-`, `_`.
    pub(crate) name: String,
    /// `http://` or `https://` URL that receives the POSTs.
    pub(crate) url: String,
    /// The event kinds it receives (`message`, `change-set`, `trust-space`, …); empty or
    /// omitted: every kind.
    #[serde(default)]
    pub(crate) events: Vec<String>,
    /// A file holding the shared secret of the `X-Tereze-Signature` HMAC (owner-only; never
    /// logged).
    pub(crate) secret_file: PathBuf,
    /// Most events in one POST.
    #[serde(default = "default_batch")]
    pub(crate) max_batch: usize,
    /// Seconds to wait for the receiver's answer to one POST.
    #[serde(default = "default_timeout")]
    pub(crate) timeout_seconds: u64,
    /// A PEM file of CA certificates for an `https://` receiver, instead of the system's.
    #[serde(default)]
    pub(crate) ca_file: Option<PathBuf>,
}

fn default_batch() -> usize {
    10
}

fn default_timeout() -> u64 {
    10
}

impl Notifications {
    pub(crate) fn retention(&self) -> crate::store::Retention {
        crate::store::Retention {
            max_age_ms: i64::try_from(self.retention_hours.saturating_mul(3_600_000))
                .unwrap_or(i64::MAX),
            max_events: self.max_events,
        }
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        for w in &mut self.webhooks {
            for p in std::iter::once(&mut w.secret_file).chain(w.ca_file.iter_mut()) {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
    }

    /// The first refused value: (field, why).
    pub(crate) fn check(&self) -> Result<(), (String, String)> {
        let refuse = |field: String, why: String| Err((field, why));
        if self.retention_hours == 0 {
            return refuse(
                "notifications.retention_hours".into(),
                "must be at least 1".into(),
            );
        }
        if self.max_events == 0 {
            return refuse(
                "notifications.max_events".into(),
                "must be at least 1".into(),
            );
        }
        if !(1..=86_400).contains(&self.compact_seconds) {
            return refuse(
                "notifications.compact_seconds".into(),
                "must be between 1 and 86400".into(),
            );
        }
        let mut names = HashSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let field = |f: &str| format!("notifications.webhooks[{i}].{f}");
            if w.name.is_empty()
                || !w
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return refuse(
                    field("name"),
                    format!("{:?}: letters, digits, '-' and '_' only", w.name),
                );
            }
            if !names.insert(w.name.as_str()) {
                return refuse(
                    field("name"),
                    format!("{:?} is the name of another webhook", w.name),
                );
            }
            if let Err(e) = Target::parse(&w.url) {
                return refuse(field("url"), e);
            }
            if let Err(e) = tereze_support::fs::read_secret(&w.secret_file, "the webhook secret") {
                return refuse(
                    field("secret_file"),
                    format!("{}: {e}", w.secret_file.display()),
                );
            }
            if !(1..=1_000).contains(&w.max_batch) {
                return refuse(field("max_batch"), "must be between 1 and 1000".into());
            }
            if !(1..=300).contains(&w.timeout_seconds) {
                return refuse(field("timeout_seconds"), "must be between 1 and 300".into());
            }
            if let Some(ca) = &w.ca_file {
                if let Err(e) = std::fs::metadata(ca) {
                    return refuse(field("ca_file"), format!("{}: {e}", ca.display()));
                }
            }
        }
        Ok(())
    }
}

/// Where a webhook's POSTs go: its URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) tls: bool,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// With its query, as sent in the request line.
    pub(crate) path: String,
}

impl Target {
    /// An `http://` or `https://` URL with a host and no credentials.
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("{url:?}: not an http:// or https:// URL"));
        };
        // http:// with the same authority rules; only the default port differs.
        let plain = tereze_support::http::parse_url(&format!("http://{rest}"))
            .map_err(|e| e.replace("http://", if tls { "https://" } else { "http://" }))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(h, _)| !h.ends_with(']') || h.starts_with('['))
            && !authority.ends_with(']');
        Ok(Target {
            tls,
            port: if tls && !has_port { 443 } else { plain.port },
            host: plain.host,
            path: plain.path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notifications(dir: &Path, hook: &str) -> Notifications {
        let mut n: Notifications =
            toml::from_str(&format!("[[webhooks]]\nname = \"erp\"\n{hook}")).expect("parses");
        n.resolve_paths(dir);
        n
    }

    #[test]
    fn a_bad_webhook_url_or_secret_file_is_refused_by_field() {
        let dir = tempfile::tempdir().expect("dir");
        let secret = dir.path().join("hook.secret");
        std::fs::write(&secret, "s3cret-value").expect("secret");
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let ok = notifications(
            dir.path(),
            "url = \"https://erp.kz/h\"\nsecret_file = \"hook.secret\"",
        );
        assert_eq!(ok.check(), Ok(()));
        let (field, why) = notifications(
            dir.path(),
            "url = \"ftp://erp.kz/h\"\nsecret_file = \"hook.secret\"",
        )
        .check()
        .expect_err("ftp refused");
        assert_eq!(field, "notifications.webhooks[0].url");
        assert!(why.contains("not an http:// or https:// URL"), "{why}");
        let (field, why) = notifications(
            dir.path(),
            "url = \"http://erp.kz/h\"\nsecret_file = \"missing.secret\"",
        )
        .check()
        .expect_err("missing secret refused");
        assert_eq!(field, "notifications.webhooks[0].secret_file");
        assert!(why.contains("missing.secret"), "{why}");
        std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        let (field, why) = notifications(
            dir.path(),
            "url = \"http://erp.kz/h\"\nsecret_file = \"hook.secret\"",
        )
        .check()
        .expect_err("an open secret refused");
        assert_eq!(field, "notifications.webhooks[0].secret_file");
        assert!(!why.contains("s3cret-value"), "{why}");
    }

    #[test]
    fn a_webhook_url_is_http_or_https_with_a_host() {
        let t = Target::parse("https://erp.example.kz/hooks/tereze?x=1").expect("https");
        assert_eq!(
            (t.tls, t.port, t.path.as_str()),
            (true, 443, "/hooks/tereze?x=1")
        );
        let t = Target::parse("http://127.0.0.1:8080").expect("http");
        assert_eq!(
            (t.tls, t.host.as_str(), t.port, t.path.as_str()),
            (false, "127.0.0.1", 8080, "/")
        );
        assert_eq!(
            Target::parse("https://[::1]:8443/").map(|t| t.port),
            Ok(8443)
        );
        for bad in [
            "ftp://x/",
            "erp.example.kz",
            "https://",
            "http://u:p@x/",
            "https://x:99999/",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
