#![doc = include_str!("../../README.md")]
//!
//! # This crate
//!
//! `yds-config`: the configuration, read from the environment once at start-up.
//!
//! Nothing else in the workspace reads the environment: `main` builds a [`Config`] with
//! [`Config::from_env`] and passes the parts down to the layers that use them. A bad variable
//! is named in the error so a misconfigured deployment fails at boot, not on the first
//! request. Plain data only: this crate depends on no other of ours, so every layer may read
//! its settings here.
//!
//! [`breaker`]: the circuit breaker both `yds-store` and
//! `yds-storage` put in front of their dependency (neither may use the other), `std` only.

#![forbid(unsafe_code)]

pub mod breaker;
pub mod trace;

use std::path::PathBuf;
use std::time::Duration;

/// Which URLs an import may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlPolicy {
    /// Local stack: loopback hosts and `file://` allowed, so local files can be served.
    Local,
    /// Production: only public `https`/`http`/`gs` hosts.
    Strict,
}

/// Where objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// A directory on the local filesystem.
    Local { root: PathBuf },
    /// A Cloud Storage bucket; `endpoint` overrides Google's (emulators).
    Gcs { bucket: String, endpoint: Option<String> },
}

/// Where tasks go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueConfig {
    /// The durable local queue: a directory the local dispatcher drains.
    Local { dir: PathBuf },
    /// Cloud Tasks: HTTP tasks to process-chunk, with an OIDC token of `service_account`.
    CloudTasks { queue: String, target_url: String, service_account: String },
}

/// The API keys of `YDS_API_KEYS` and the tenant each belongs to.
///
/// The edge keeps only their hashes once it has them (`yds_edge::access::KeyLookup`); until
/// then, `Debug` shows the tenants, never a key, so a logged configuration leaks none.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConfiguredKeys {
    /// `(key, tenant)`, in the variable's order.
    entries: Vec<(String, String)>,
}

impl ConfiguredKeys {
    /// Parses `key` or `key:tenant` entries separated by commas; a bare key belongs to `default`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut entries = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (key, tenant) = match entry.split_once(':') {
                Some((key, tenant)) => (key.trim(), tenant.trim()),
                None => (entry, "default"),
            };
            if key.is_empty() || tenant.is_empty() {
                return Err(ConfigError::invalid("YDS_API_KEYS", "empty key or tenant"));
            }
            entries.push((key.to_owned(), tenant.to_owned()));
        }
        Ok(Self { entries })
    }

    /// `(key, tenant)` pairs.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(key, tenant)| (key.as_str(), tenant.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl std::fmt::Debug for ConfiguredKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenants: Vec<&str> = self.entries.iter().map(|(_, tenant)| tenant.as_str()).collect();
        f.debug_struct("ConfiguredKeys").field("tenants", &tenants).finish_non_exhaustive()
    }
}

/// Fault injection for the local stack; always off in production.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Chaos {
    /// Probability that process-chunk stops half-way through a chunk, or loses the answer of
    /// a planning pass it completed, and answers 500.
    pub crash: f64,
    /// Probability that any object storage call fails (`YDS_CHAOS_STORAGE_FAIL`).
    pub storage_failure: f64,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub mongodb_uri: String,
    pub db_name: String,
    /// How long a database call waits for a reachable server before it fails
    /// (`YDS_MONGODB_TIMEOUT_MS`, default 1000): a dead database answers a request within about
    /// this, then the breaker (`breaker`) answers at once until it is back.
    pub mongodb_timeout: Duration,
    pub storage: StorageConfig,
    pub queue: QueueConfig,
    pub api_keys: ConfiguredKeys,
    pub url_policy: UrlPolicy,
    /// Files per chunk when the import request names none.
    pub default_chunk_size: u32,
    /// Attempts the queue makes before giving a task up; process-chunk records a dead letter
    /// on the last one.
    pub task_max_attempts: u32,
    /// Local scratch space for downloads (never the object store).
    pub scratch_dir: PathBuf,
    /// Longest a source download may stall before it is abandoned.
    pub fetch_timeout: Duration,
    /// How the import work is cut and paced.
    pub pacing: Pacing,
    pub chaos: Chaos,
    /// The local dispatcher's secret (`YDS_TASK_TOKEN`), which process-chunk requires of every
    /// delivery on the local queue; the local stack generates it at start-up.
    pub task_token: Option<String>,
    /// The key that signs pagination cursors (`YDS_CURSOR_SECRET`, at least 32 characters), the
    /// same in every function that pages (list, images, status). Required there under the strict URL
    /// policy ([`Config::required_cursor_secret`]); the local stack generates one at start-up.
    pub cursor_secret: Option<String>,
    /// The key that signs the expiring image URLs (`YDS_URL_SIGNING_KEY`, at least 32
    /// characters): `file_url` and `thumbnail_url`, which a browser fetches without an API key.
    /// Only the function that signs and checks them (images) needs it, and there it is required
    /// under the strict URL policy ([`Config::required_url_signing_key`]); the local stack
    /// generates one at start-up.
    pub url_signing_key: Option<String>,
    /// Imports each API key may start per minute (`YDS_IMPORTS_PER_MINUTE`, default 30; 0: no limit).
    pub imports_per_minute: u32,
    /// The largest upload `POST /uploads` accepts (`YDS_UPLOAD_MAX_BYTES`, default 100 GiB):
    /// a declared size above it is refused with 413, and so is any byte past it.
    pub upload_max_bytes: u64,
}

/// The default of `YDS_UPLOAD_MAX_BYTES`: 100 GiB, an archive of the largest datasets imported.
pub const DEFAULT_UPLOAD_MAX_BYTES: u64 = 100 << 30;

/// How the import work is cut into tasks and paced, so every task ends far inside its
/// deadline (Cloud Tasks allows an HTTP task 30 minutes at most).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Most bytes of images and label files in one chunk (`YDS_CHUNK_MAX_BYTES`, default 64 MiB).
    pub chunk_max_bytes: u64,
    /// Time a planning pass may spend staging a tar before it continues in a new task
    /// (`YDS_PLAN_BUDGET_SECS`, default 300: half the tasks' 10-minute dispatch deadline).
    pub plan_budget: Duration,
    /// A chunk not finished this long after its delivery started, or a planning pass that long
    /// after it started, is presumed lost and sent again by the watchdog (`YDS_CHUNK_LEASE_SECS`,
    /// default 900: beyond the dispatch deadline, so a delivery still running is never presumed
    /// lost; at least twice the planning budget).
    pub chunk_lease: Duration,
    /// Image documents, objects or import records one batch of a delete job deletes
    /// (`YDS_DELETE_BATCH`, default 1000): the unit of work between two looks at the clock.
    pub delete_batch: u32,
    /// Time one step of a delete job keeps deleting batches before it hands over to the next
    /// step (`YDS_DELETE_BUDGET_SECS`, default 60: a tenth of the tasks' dispatch deadline, so a
    /// dataset of any size is deleted by many short tasks; 0: one batch a step).
    pub delete_budget: Duration,
    /// How long after a dataset's deletion began its last sweep waits (`YDS_DELETE_SETTLE_SECS`,
    /// default 5): a margin for writes already under way when the dataset was marked. The one
    /// such writer, a thumbnail being made, looks at the dataset again after its write and
    /// removes what it wrote when the dataset is being deleted, so no long wait is needed.
    /// The dataset's import is waited for longer when it may still have writers: until a
    /// `chunk_lease` after it ended, if it was cancelled or failed, or one of its chunk attempts
    /// is still in flight (a duplicate delivery, or an attempt whose process died).
    pub delete_settle: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            chunk_max_bytes: 64 << 20,
            plan_budget: Duration::from_secs(300),
            chunk_lease: Duration::from_secs(900),
            delete_batch: 1000,
            delete_budget: Duration::from_secs(60),
            delete_settle: Duration::from_secs(5),
        }
    }
}

impl Pacing {
    fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let default = Pacing::default();
        let pacing = Pacing {
            chunk_max_bytes: parse_number(get, "YDS_CHUNK_MAX_BYTES", default.chunk_max_bytes)?,
            plan_budget: Duration::from_secs(parse_number(get, "YDS_PLAN_BUDGET_SECS", default.plan_budget.as_secs())?),
            chunk_lease: Duration::from_secs(parse_number(get, "YDS_CHUNK_LEASE_SECS", default.chunk_lease.as_secs())?),
            delete_batch: parse_number(get, "YDS_DELETE_BATCH", default.delete_batch)?,
            delete_budget: Duration::from_secs(parse_number(
                get,
                "YDS_DELETE_BUDGET_SECS",
                default.delete_budget.as_secs(),
            )?),
            delete_settle: Duration::from_secs(parse_number(
                get,
                "YDS_DELETE_SETTLE_SECS",
                default.delete_settle.as_secs(),
            )?),
        };
        if pacing.delete_batch == 0 {
            return Err(ConfigError::invalid("YDS_DELETE_BATCH", "must be at least 1"));
        }
        // A step heartbeats after every batch; one that works past half a lease without handing
        // over could be taken for lost.
        if pacing.delete_budget * 2 > pacing.chunk_lease {
            return Err(ConfigError::invalid("YDS_DELETE_BUDGET_SECS", "must be at most half of YDS_CHUNK_LEASE_SECS"));
        }
        // A planning pass may run its whole budget (and then plan chunks): a lease shorter than
        // that would have the watchdog take live passes for lost ones.
        if pacing.chunk_lease < pacing.plan_budget * 2 {
            return Err(ConfigError::invalid("YDS_CHUNK_LEASE_SECS", "must be at least twice YDS_PLAN_BUDGET_SECS"));
        }
        Ok(pacing)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration variable {name}: {problem}")]
pub struct ConfigError {
    pub name: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub fn invalid(name: &'static str, problem: impl Into<String>) -> Self {
        Self { name, problem: problem.into() }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests can pass a map instead of the environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let data_dir = PathBuf::from(get("YDS_DATA_DIR").unwrap_or_else(|| ".yds-data".into()));
        let url_policy = match get("YDS_URL_POLICY").as_deref() {
            None | Some("local") => UrlPolicy::Local,
            Some("strict") => UrlPolicy::Strict,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "YDS_URL_POLICY",
                    format!("expected `local` or `strict`, got `{other}`"),
                ))
            }
        };
        let chaos = Chaos {
            crash: parse_probability(&get, "YDS_CHAOS_CRASH")?,
            storage_failure: parse_probability(&get, "YDS_CHAOS_STORAGE_FAIL")?,
        };
        if url_policy == UrlPolicy::Strict {
            for (name, probability) in
                [("YDS_CHAOS_CRASH", chaos.crash), ("YDS_CHAOS_STORAGE_FAIL", chaos.storage_failure)]
            {
                if probability > 0.0 {
                    return Err(ConfigError::invalid(name, "fault injection is only allowed in local mode"));
                }
            }
        }
        Ok(Self {
            port: parse_number(&get, "PORT", 8080)?,
            mongodb_uri: get("MONGODB_URI").unwrap_or_else(|| "mongodb://127.0.0.1:27017".into()),
            db_name: get("YDS_DB_NAME").unwrap_or_else(|| "yds".into()),
            mongodb_timeout: Duration::from_millis(parse_number(&get, "YDS_MONGODB_TIMEOUT_MS", 1000)?.max(1)),
            storage: match get("YDS_STORAGE_BACKEND").as_deref() {
                None | Some("local") => StorageConfig::Local {
                    root: get("YDS_STORAGE_DIR").map(PathBuf::from).unwrap_or_else(|| data_dir.join("storage")),
                },
                Some("gcs") => StorageConfig::Gcs {
                    bucket: get("YDS_GCS_BUCKET").ok_or_else(|| {
                        ConfigError::invalid("YDS_GCS_BUCKET", "required when YDS_STORAGE_BACKEND=gcs")
                    })?,
                    endpoint: get("YDS_GCS_ENDPOINT"),
                },
                Some(other) => {
                    return Err(ConfigError::invalid(
                        "YDS_STORAGE_BACKEND",
                        format!("expected `local` or `gcs`, got `{other}`"),
                    ))
                }
            },
            queue: match get("YDS_QUEUE_BACKEND").as_deref() {
                None | Some("local") => QueueConfig::Local {
                    dir: get("YDS_QUEUE_DIR").map(PathBuf::from).unwrap_or_else(|| data_dir.join("queue")),
                },
                Some("cloud_tasks") => {
                    let required = |name: &'static str| {
                        get(name)
                            .ok_or_else(|| ConfigError::invalid(name, "required when YDS_QUEUE_BACKEND=cloud_tasks"))
                    };
                    QueueConfig::CloudTasks {
                        queue: required("YDS_TASKS_QUEUE")?,
                        target_url: required("YDS_PROCESS_CHUNK_URL")?,
                        service_account: required("YDS_TASKS_SERVICE_ACCOUNT")?,
                    }
                }
                Some(other) => {
                    return Err(ConfigError::invalid(
                        "YDS_QUEUE_BACKEND",
                        format!("expected `local` or `cloud_tasks`, got `{other}`"),
                    ))
                }
            },
            api_keys: ConfiguredKeys::parse(&get("YDS_API_KEYS").unwrap_or_default())?,
            url_policy,
            default_chunk_size: parse_number(&get, "YDS_CHUNK_SIZE", 500)?,
            task_max_attempts: parse_number(&get, "YDS_TASK_MAX_ATTEMPTS", 8)?,
            scratch_dir: get("YDS_SCRATCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir),
            fetch_timeout: Duration::from_secs(parse_number(&get, "YDS_FETCH_TIMEOUT_SECS", 60)?),
            pacing: Pacing::parse(&get)?,
            chaos,
            task_token: get("YDS_TASK_TOKEN").filter(|t| !t.is_empty()),
            imports_per_minute: parse_number(&get, "YDS_IMPORTS_PER_MINUTE", 30)?,
            upload_max_bytes: match parse_number(&get, "YDS_UPLOAD_MAX_BYTES", DEFAULT_UPLOAD_MAX_BYTES)? {
                0 => return Err(ConfigError::invalid("YDS_UPLOAD_MAX_BYTES", "must be at least 1")),
                bytes => bytes,
            },
            url_signing_key: parse_secret(&get, "YDS_URL_SIGNING_KEY")?,
            cursor_secret: parse_secret(&get, "YDS_CURSOR_SECRET")?,
        })
    }
}

impl Config {
    /// The cursor key of a function that issues or reads page cursors: required under the strict
    /// URL policy (a missing one fails the function at start-up, naming `YDS_CURSOR_SECRET`);
    /// `None` in local mode without one. Functions that page nothing (process-chunk,
    /// import-trigger, lifecycle, web) never ask, so they need not be given the secret.
    pub fn required_cursor_secret(&self) -> Result<Option<&str>, ConfigError> {
        self.required_under_strict(&self.cursor_secret, "YDS_CURSOR_SECRET")
    }

    /// The URL signing key of a function that signs or checks image URLs: required under the
    /// strict URL policy (a missing one fails the function at start-up, naming
    /// `YDS_URL_SIGNING_KEY`); `None` in local mode without one (the function then makes a random
    /// key, and its URLs live as long as the process). Functions that sign nothing never ask, so
    /// they need not be given the secret.
    pub fn required_url_signing_key(&self) -> Result<Option<&str>, ConfigError> {
        self.required_under_strict(&self.url_signing_key, "YDS_URL_SIGNING_KEY")
    }

    /// `secret` (the variable `name`), which the strict URL policy (production) requires.
    fn required_under_strict<'a>(
        &self,
        secret: &'a Option<String>,
        name: &'static str,
    ) -> Result<Option<&'a str>, ConfigError> {
        match (secret, self.url_policy) {
            (Some(secret), _) => Ok(Some(secret)),
            (None, UrlPolicy::Strict) => Err(ConfigError::invalid(name, "required under the strict URL policy")),
            (None, UrlPolicy::Local) => Ok(None),
        }
    }
}

/// A signing key from `name`: unset or empty is `None`; a set one has at least 32 characters.
fn parse_secret(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<Option<String>, ConfigError> {
    match get(name).filter(|s| !s.is_empty()) {
        Some(secret) if secret.len() < 32 => Err(ConfigError::invalid(name, "must be at least 32 characters")),
        secret => Ok(secret),
    }
}

fn parse_number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(text) => {
            text.trim().parse().map_err(|_| ConfigError::invalid(name, format!("`{text}` is not a valid number")))
        }
    }
}

fn parse_probability(get: &impl Fn(&str) -> Option<String>, name: &'static str) -> Result<f64, ConfigError> {
    let p: f64 = parse_number(get, name, 0.0)?;
    if !(0.0..=1.0).contains(&p) {
        return Err(ConfigError::invalid(name, "must be a probability between 0 and 1"));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn api_keys_bare_and_with_tenant() {
        let keys = ConfiguredKeys::parse("k1, k2:acme ,").unwrap();
        assert_eq!(keys.entries().collect::<Vec<_>>(), [("k1", "default"), ("k2", "acme")]);
        assert!(ConfiguredKeys::parse("k1:").is_err());
        assert!(!format!("{keys:?}").contains("k1"), "Debug shows no key: {keys:?}");
    }

    #[test]
    fn bad_variables_are_named() {
        let err = config(&[("PORT", "eighty")]).unwrap_err();
        assert_eq!(err.name, "PORT");
        let err = config(&[("YDS_URL_POLICY", "lax")]).unwrap_err();
        assert_eq!(err.name, "YDS_URL_POLICY");
        let err = config(&[("YDS_PLAN_BUDGET_SECS", "600")]).unwrap_err();
        assert_eq!(err.name, "YDS_CHUNK_LEASE_SECS", "the default lease is shorter than two such budgets");
        let pacing = config(&[("YDS_PLAN_BUDGET_SECS", "600"), ("YDS_CHUNK_LEASE_SECS", "1200")]).unwrap().pacing;
        assert_eq!(pacing.chunk_lease, std::time::Duration::from_secs(1200));
        let err = config(&[("YDS_CHAOS_CRASH", "1.5")]).unwrap_err();
        assert_eq!(err.name, "YDS_CHAOS_CRASH");
        let err = config(&[("YDS_URL_POLICY", "strict"), ("YDS_CHAOS_CRASH", "0.1")]).unwrap_err();
        assert_eq!(err.name, "YDS_CHAOS_CRASH");
        let err = config(&[("YDS_URL_POLICY", "strict"), ("YDS_CHAOS_STORAGE_FAIL", "0.1")]).unwrap_err();
        assert_eq!(err.name, "YDS_CHAOS_STORAGE_FAIL");
        // Only the functions that page ask for the cursor key: the rest start without it.
        let strict = config(&[("YDS_URL_POLICY", "strict")]).unwrap();
        let err = strict.required_cursor_secret().unwrap_err();
        assert_eq!(err.name, "YDS_CURSOR_SECRET", "production signs cursors with a configured key");
        let key = "k".repeat(32);
        let keyed = config(&[("YDS_URL_POLICY", "strict"), ("YDS_CURSOR_SECRET", &key)]).unwrap();
        assert_eq!(keyed.required_cursor_secret().unwrap(), Some(key.as_str()));
        assert_eq!(config(&[]).unwrap().required_cursor_secret().unwrap(), None);
        let err = config(&[("YDS_CURSOR_SECRET", "short")]).unwrap_err();
        assert_eq!(err.name, "YDS_CURSOR_SECRET");
    }

    #[test]
    fn deletion_pacing_is_read_and_checked_against_the_lease() {
        let pacing = config(&[]).unwrap().pacing;
        assert_eq!(
            (pacing.delete_batch, pacing.delete_budget.as_secs(), pacing.delete_settle.as_secs()),
            (1000, 60, 5)
        );
        let small = [
            ("YDS_DELETE_BATCH", "3"),
            ("YDS_DELETE_BUDGET_SECS", "0"),
            ("YDS_DELETE_SETTLE_SECS", "1"),
            ("YDS_PLAN_BUDGET_SECS", "2"),
            ("YDS_CHUNK_LEASE_SECS", "4"),
        ];
        let pacing = config(&small).unwrap().pacing;
        assert_eq!((pacing.delete_batch, pacing.delete_budget.as_secs(), pacing.delete_settle.as_secs()), (3, 0, 1));
        assert_eq!(config(&[("YDS_DELETE_BATCH", "0")]).unwrap_err().name, "YDS_DELETE_BATCH");
        // A step working past half a lease could be taken for lost.
        let long_step = [("YDS_PLAN_BUDGET_SECS", "2"), ("YDS_CHUNK_LEASE_SECS", "4"), ("YDS_DELETE_BUDGET_SECS", "3")];
        assert_eq!(config(&long_step).unwrap_err().name, "YDS_DELETE_BUDGET_SECS");
    }

    #[test]
    fn url_signing_key_is_long_and_required_under_strict_by_the_functions_that_sign() {
        let key = "k".repeat(32);
        let err = config(&[("YDS_URL_SIGNING_KEY", "short")]).unwrap_err();
        assert_eq!(err.name, "YDS_URL_SIGNING_KEY");
        assert_eq!(config(&[("YDS_URL_SIGNING_KEY", &key[1..])]).unwrap_err().name, "YDS_URL_SIGNING_KEY");
        let local = config(&[]).unwrap();
        assert_eq!((local.url_signing_key.as_deref(), local.required_url_signing_key().unwrap()), (None, None));
        let secret = "c".repeat(32);
        let strict = [("YDS_URL_POLICY", "strict"), ("YDS_CURSOR_SECRET", secret.as_str())];
        // A strict configuration without it loads (list and status sign nothing) ...
        let without = config(&strict).unwrap();
        // ... but a function that signs URLs refuses to start, naming it.
        let err = without.required_url_signing_key().unwrap_err();
        assert_eq!(err.name, "YDS_URL_SIGNING_KEY", "production signs image URLs with a configured key");
        let with = config(&[strict[0], strict[1], ("YDS_URL_SIGNING_KEY", &key)]).unwrap();
        assert_eq!(with.required_url_signing_key().unwrap(), Some(key.as_str()));
    }

    #[test]
    fn defaults_derive_from_data_dir() {
        let c = config(&[("YDS_DATA_DIR", "/d")]).unwrap();
        assert_eq!(c.port, 8080);
        assert_eq!(c.url_policy, UrlPolicy::Local);
        assert_eq!(c.storage, StorageConfig::Local { root: "/d/storage".into() });
        assert_eq!(c.queue, QueueConfig::Local { dir: "/d/queue".into() });
        assert_eq!(c.upload_max_bytes, 100 * 1024 * 1024 * 1024);
    }

    #[test]
    fn the_upload_limit_is_a_positive_byte_count() {
        assert_eq!(config(&[("YDS_UPLOAD_MAX_BYTES", "1048576")]).unwrap().upload_max_bytes, 1 << 20);
        assert_eq!(config(&[("YDS_UPLOAD_MAX_BYTES", "0")]).unwrap_err().name, "YDS_UPLOAD_MAX_BYTES");
        assert_eq!(config(&[("YDS_UPLOAD_MAX_BYTES", "1 GB")]).unwrap_err().name, "YDS_UPLOAD_MAX_BYTES");
    }

    #[test]
    fn cloud_tasks_needs_its_queue_target_and_identity() {
        let err =
            config(&[("YDS_QUEUE_BACKEND", "cloud_tasks"), ("YDS_TASKS_QUEUE", "projects/p/locations/l/queues/q")])
                .unwrap_err();
        assert_eq!(err.name, "YDS_PROCESS_CHUNK_URL");
        let c = config(&[
            ("YDS_QUEUE_BACKEND", "cloud_tasks"),
            ("YDS_TASKS_QUEUE", "projects/p/locations/l/queues/q"),
            ("YDS_PROCESS_CHUNK_URL", "https://pc.run.app/tasks"),
            ("YDS_TASKS_SERVICE_ACCOUNT", "tasks@p.iam.gserviceaccount.com"),
        ])
        .unwrap();
        assert_eq!(
            c.queue,
            QueueConfig::CloudTasks {
                queue: "projects/p/locations/l/queues/q".into(),
                target_url: "https://pc.run.app/tasks".into(),
                service_account: "tasks@p.iam.gserviceaccount.com".into(),
            }
        );
    }

    #[test]
    fn gcs_storage_needs_a_bucket() {
        assert_eq!(config(&[("YDS_STORAGE_BACKEND", "gcs")]).unwrap_err().name, "YDS_GCS_BUCKET");
        let c = config(&[("YDS_STORAGE_BACKEND", "gcs"), ("YDS_GCS_BUCKET", "b")]).unwrap();
        assert_eq!(c.storage, StorageConfig::Gcs { bucket: "b".into(), endpoint: None });
        assert_eq!(config(&[("YDS_STORAGE_BACKEND", "s3")]).unwrap_err().name, "YDS_STORAGE_BACKEND");
    }
}
