//! `cargo xtask serve`: build the functions, start the local stack, serve until a signal.

use std::path::PathBuf;

use anyhow::{bail, Context};
use local_stack::stack::{Stack, StackOptions};

use crate::{binaries, paths};

/// Options shared by `serve` and `demo`.
#[derive(Debug, clap::Args)]
pub struct StackArgs {
    /// The port the gateway listens on.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Where the stack keeps its data and logs.
    #[arg(long, default_value = ".yds-data")]
    pub data_dir: PathBuf,
    /// Run release builds of the functions (the ones `bench` measures) instead of the debug
    /// builds the tests use: minutes more to build once, imports 2–3× faster.
    #[arg(long)]
    pub release: bool,
}

fn env_probability(name: &str) -> anyhow::Result<f64> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            let p: f64 = v.trim().parse().with_context(|| format!("{name} must be a number"))?;
            anyhow::ensure!((0.0..=1.0).contains(&p), "{name} must be between 0 and 1");
            Ok(p)
        }
        _ => Ok(0.0),
    }
}

/// Starts the stack as the contract describes; returns it with an API key the caller can use.
pub async fn start_stack(args: &StackArgs) -> anyhow::Result<(Stack, String)> {
    let bin_dir = if args.release {
        binaries::build_release_functions()?
    } else {
        binaries::build_functions()?;
        paths::bin_dir()
    };
    let mut options = StackOptions::new(args.data_dir.clone(), bin_dir, paths::tools_dir());
    options.port = args.port;
    options.mongodb_uri = std::env::var("MONGODB_URI").ok().filter(|v| !v.is_empty());
    options.url_policy = std::env::var("YDS_URL_POLICY").unwrap_or_else(|_| "local".into());
    options.chaos_duplicate = env_probability("YDS_CHAOS_DUPLICATE")?;
    options.chaos_crash = env_probability("YDS_CHAOS_CRASH")?;
    options.chaos_storage = env_probability("YDS_CHAOS_STORAGE_FAIL")?;
    if let Ok(attempts) = std::env::var("YDS_TASK_MAX_ATTEMPTS") {
        options.task_max_attempts = match attempts.trim().parse() {
            Ok(n) if n >= 2 => n,
            _ => bail!("YDS_TASK_MAX_ATTEMPTS must be a whole number >= 2, got {attempts:?}"),
        };
    }
    let key = match std::env::var("YDS_API_KEYS").ok().filter(|v| !v.trim().is_empty()) {
        Some(keys) => {
            options.api_keys = keys.clone();
            let first = keys.split(',').next().unwrap_or_default();
            first.split(':').next().unwrap_or_default().trim().to_owned()
        }
        None => {
            let key = format!("yds_{}", uuid::Uuid::new_v4().simple());
            options.api_keys = key.clone();
            println!("Generated API key (YDS_API_KEYS was not set): {key}");
            key
        }
    };
    let stack = Stack::start(options).await?;
    Ok((stack, key))
}

pub async fn run(args: StackArgs) -> anyhow::Result<()> {
    let (stack, _key) = start_stack(&args).await?;
    println!("YDS listening on http://127.0.0.1:{}", stack.port);
    // Where `cargo xtask key create` finds the stack's database.
    println!("MongoDB at {} (database yds)", stack.mongodb_uri);
    print_log_files(&stack);
    wait_for_signal().await;
    println!("stopping");
    stack.shutdown().await;
    Ok(())
}

/// Where each process of the stack logs, and how to read them together.
pub fn print_log_files(stack: &Stack) {
    println!("logs (JSON lines, one file per process; `cargo xtask logs [--follow] [JOB]` merges them):");
    for (name, path) in stack.log_files() {
        println!("  {name:<15} {}", path.display());
    }
}

/// SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
