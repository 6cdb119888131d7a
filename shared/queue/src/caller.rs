//! Who may deliver a task to process-chunk.
//!
//! process-chunk is not public. On Cloud Run, IAM admits only principals holding `run.invoker`
//! on it: the tasks service account alone (see `terraform/`). Cloud Run verifies the OIDC token
//! and hands it on with its signature removed (`SIGNATURE_REMOVED_BY_GOOGLE`), so this module does
//! not verify signatures: it reads the claims to check a second time that the caller is the
//! queue's identity with our audience, and that Cloud Tasks' headers name our queue. A loosened
//! IAM binding then still lets nobody else run tasks. Locally, the dispatcher proves itself with
//! a secret the stack generates at start-up.

use base64::Engine as _;
use http::HeaderMap;
use serde::Deserialize;

use super::cloud_tasks::CloudTasksConfig;
use super::headers;
use yds_config::{Config, ConfigError, QueueConfig};

/// The header the local dispatcher carries its secret in.
pub const LOCAL_TOKEN_HEADER: &str = "x-yds-task-token";

/// Who process-chunk accepts tasks from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskCallers {
    /// Cloud Tasks deliveries of one queue, with an OIDC token of one service account.
    CloudTasks { queue_id: String, service_account: String, audience: String },
    /// The local stack's dispatcher, which sends [`LOCAL_TOKEN_HEADER`].
    LocalDispatcher { token: String },
    /// Anyone: only for tests that call the handler in-process.
    Anyone,
}

/// Why a delivery was refused (logged; the caller only gets 403).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("task delivery refused: {0}")]
pub struct Refused(pub &'static str);

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    email: String,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    aud: String,
}

impl TaskCallers {
    /// Who process-chunk accepts tasks from under `config`: Cloud Tasks' identity for the
    /// configured queue, or the local dispatcher (then `YDS_TASK_TOKEN` is required: nobody
    /// else may run tasks).
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        match &config.queue {
            QueueConfig::CloudTasks { queue, target_url, service_account } => {
                let tasks = CloudTasksConfig::new(queue.clone(), target_url.clone(), service_account.clone());
                Ok(TaskCallers::CloudTasks {
                    queue_id: tasks.queue_id().to_owned(),
                    service_account: service_account.clone(),
                    audience: tasks.audience(),
                })
            }
            QueueConfig::Local { .. } => match &config.task_token {
                Some(token) => Ok(TaskCallers::LocalDispatcher { token: token.clone() }),
                None => Err(ConfigError::invalid("YDS_TASK_TOKEN", "required by process-chunk on the local queue")),
            },
        }
    }

    pub fn check(&self, request_headers: &HeaderMap) -> Result<(), Refused> {
        let header = |name: &str| request_headers.get(name).and_then(|v| v.to_str().ok());
        match self {
            TaskCallers::Anyone => Ok(()),
            TaskCallers::LocalDispatcher { token } => match header(LOCAL_TOKEN_HEADER) {
                Some(sent) if constant_time_eq(sent.as_bytes(), token.as_bytes()) => Ok(()),
                _ => Err(Refused("missing or wrong local task token")),
            },
            TaskCallers::CloudTasks { queue_id, service_account, audience } => {
                if header(headers::QUEUE_NAME) != Some(queue_id.as_str()) {
                    return Err(Refused("not from this Cloud Tasks queue"));
                }
                if header(headers::TASK_NAME).is_none_or(str::is_empty) {
                    return Err(Refused("no Cloud Tasks task name"));
                }
                let claims = header("authorization")
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .and_then(token_claims)
                    .ok_or(Refused("no readable OIDC token"))?;
                if !claims.email_verified || claims.email != *service_account {
                    return Err(Refused("OIDC token of another identity"));
                }
                if claims.aud != *audience {
                    return Err(Refused("OIDC token for another audience"));
                }
                Ok(())
            }
        }
    }
}

/// The claims of a JWT, without verifying its signature (Cloud Run did; see the module docs).
fn token_claims(jwt: &str) -> Option<Claims> {
    let payload = jwt.split('.').nth(1)?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&json).ok()
}

/// Equal without an early exit, so response timing does not reveal a prefix of the secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SA: &str = "yds-tasks@p.iam.gserviceaccount.com";
    const AUD: &str = "https://process-chunk-x.a.run.app";

    fn jwt(claims: serde_json::Value) -> String {
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!("{}.{}.SIGNATURE_REMOVED_BY_GOOGLE", b64(br#"{"alg":"RS256"}"#), b64(claims.to_string().as_bytes()))
    }

    fn cloud_tasks() -> TaskCallers {
        TaskCallers::CloudTasks { queue_id: "yds-import".into(), service_account: SA.into(), audience: AUD.into() }
    }

    fn delivery(queue: &str, token: Option<String>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(headers::QUEUE_NAME, queue.parse().unwrap());
        h.insert(headers::TASK_NAME, "job-chunk-0000001".parse().unwrap());
        if let Some(token) = token {
            h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        h
    }

    #[test]
    fn cloud_tasks_deliveries_need_our_queue_identity_and_audience() {
        let good = jwt(serde_json::json!({"email": SA, "email_verified": true, "aud": AUD}));
        assert_eq!(cloud_tasks().check(&delivery("yds-import", Some(good.clone()))), Ok(()));
        let refused = |h: HeaderMap| cloud_tasks().check(&h).unwrap_err().0;
        assert_eq!(refused(delivery("other-queue", Some(good.clone()))), "not from this Cloud Tasks queue");
        assert_eq!(refused(delivery("yds-import", None)), "no readable OIDC token");
        assert_eq!(refused(delivery("yds-import", Some("garbage".into()))), "no readable OIDC token");
        let other = jwt(serde_json::json!({"email": "x@evil.example", "email_verified": true, "aud": AUD}));
        assert_eq!(refused(delivery("yds-import", Some(other))), "OIDC token of another identity");
        let unverified = jwt(serde_json::json!({"email": SA, "aud": AUD}));
        assert_eq!(refused(delivery("yds-import", Some(unverified))), "OIDC token of another identity");
        let elsewhere = jwt(serde_json::json!({"email": SA, "email_verified": true, "aud": "https://other.run.app"}));
        assert_eq!(refused(delivery("yds-import", Some(elsewhere))), "OIDC token for another audience");
        let mut no_name = delivery("yds-import", Some(good));
        no_name.remove(headers::TASK_NAME);
        assert_eq!(refused(no_name), "no Cloud Tasks task name");
    }

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: std::collections::HashMap<&str, &str> = vars.iter().copied().collect();
        Config::from_lookup(|name| vars.get(name).map(|v| v.to_string()))
    }

    #[test]
    fn callers_come_from_the_configured_queue() {
        let err = TaskCallers::from_config(&config(&[]).unwrap()).unwrap_err();
        assert_eq!(err.name, "YDS_TASK_TOKEN", "the local queue needs its secret");
        let with_token = config(&[("YDS_TASK_TOKEN", "t")]).unwrap();
        assert_eq!(TaskCallers::from_config(&with_token).unwrap(), TaskCallers::LocalDispatcher { token: "t".into() });
        let cloud_tasks = config(&[
            ("YDS_QUEUE_BACKEND", "cloud_tasks"),
            ("YDS_TASKS_QUEUE", "projects/p/locations/l/queues/q"),
            ("YDS_PROCESS_CHUNK_URL", "https://pc.run.app/tasks"),
            ("YDS_TASKS_SERVICE_ACCOUNT", "tasks@p.iam.gserviceaccount.com"),
        ])
        .unwrap();
        assert_eq!(
            TaskCallers::from_config(&cloud_tasks).unwrap(),
            TaskCallers::CloudTasks {
                queue_id: "q".into(),
                service_account: "tasks@p.iam.gserviceaccount.com".into(),
                audience: "https://pc.run.app".into(),
            }
        );
    }

    #[test]
    fn the_local_dispatcher_proves_itself_with_the_stack_secret() {
        let callers = TaskCallers::LocalDispatcher { token: "s3cret-token".into() };
        let mut h = HeaderMap::new();
        assert!(callers.check(&h).is_err());
        h.insert(LOCAL_TOKEN_HEADER, "s3cret-tokeX".parse().unwrap());
        assert!(callers.check(&h).is_err());
        h.insert(LOCAL_TOKEN_HEADER, "s3cret-token".parse().unwrap());
        assert_eq!(callers.check(&h), Ok(()));
        assert_eq!(TaskCallers::Anyone.check(&HeaderMap::new()), Ok(()));
    }
}
