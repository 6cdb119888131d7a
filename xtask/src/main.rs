//! `cargo xtask demo|test|serve|bench|image|conformance|fuzz`: the project's commands. Orchestration only: the stack
//! itself lives in `local-stack`, the sample data in `testkit`.

mod bench;
mod conformance;
mod demo;
mod fuzz;
mod image;
mod key;
mod paths;
mod serve;
mod startup;
mod test;

use std::path::PathBuf;

use anyhow::{bail, Context};

/// Options shared by `serve` and `demo`.
#[derive(Debug)]
pub struct StackArgs {
    pub port: u16,
    pub data_dir: PathBuf,
    /// Run release builds of the functions (the ones `bench` measures) instead of the debug
    /// builds the tests use: minutes more to build once, imports 2–3× faster.
    pub release: bool,
}

fn parse_stack_args(args: &[String]) -> anyhow::Result<StackArgs> {
    let mut parsed = StackArgs { port: 8080, data_dir: PathBuf::from(".yds-data"), release: false };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = |name: &str| iter.next().cloned().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--port" => parsed.port = value("--port")?.parse().context("--port must be a port number")?,
            "--data-dir" => parsed.data_dir = PathBuf::from(value("--data-dir")?),
            "--release" => parsed.release = true,
            other => bail!("unknown option `{other}`\n\n{USAGE}"),
        }
    }
    Ok(parsed)
}

const USAGE: &str = "usage:
  cargo xtask demo  [--port P] [--data-dir D] [--release]
                                                start the stack, import a sample dataset, keep serving
  cargo xtask serve [--port P] [--data-dir D] [--release]
                                                start the stack and serve until Ctrl-C; --release runs
                                                release builds (slower to build, 2-3x faster imports)
  cargo xtask test                              install and start what tests need, run every test
  cargo xtask key create --tenant T [--label L] | key revoke --prefix P
                                                API keys, hashed in the MongoDB at $MONGODB_URI
  cargo xtask image [--debug] [--out DIR] [FUNCTION...]
                                                an OCI image layout per function (default: all, release)
  cargo xtask bench import [--images N] [--size-mix small|realistic] [--format tar.gz|zip|both]
        [--chunk-size C] [--concurrency Q] [--timeout-mins M] [--seed S] [--keep DIR] [--labels-first]
                                                time an import of a synthetic dataset against `tar -xzf`
  cargo xtask bench startup                     release binaries: size, exec to first 200, RSS
  cargo xtask conformance                       compare YDS' image verdicts with real Ultralytics (installs it)
  cargo xtask fuzz [--secs N] [TARGET...]       run the cargo-fuzz targets N seconds each (default 60; nightly;
                                                targets: labels data_yaml member_name image archive)";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        println!("{USAGE}");
        return Ok(());
    };
    let rest = &args[1..];
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match command.as_str() {
        "serve" => runtime.block_on(serve::run(parse_stack_args(rest)?)),
        "demo" => runtime.block_on(demo::run(parse_stack_args(rest)?)),
        "test" => {
            let code = runtime.block_on(test::run(rest))?;
            std::process::exit(code);
        }
        "bench" => {
            let code = runtime.block_on(bench::run(rest))?;
            std::process::exit(code);
        }
        "image" => image::run(rest),
        "key" => runtime.block_on(key::run(rest)),
        "conformance" => {
            let code = runtime.block_on(conformance::run(rest))?;
            std::process::exit(code);
        }
        "fuzz" => std::process::exit(fuzz::run(rest)?),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| arg.to_string()).collect()
    }

    #[test]
    fn stack_args_default_to_debug_builds_on_8080() {
        let parsed = parse_stack_args(&[]).unwrap();
        assert_eq!((parsed.port, parsed.data_dir, parsed.release), (8080, PathBuf::from(".yds-data"), false));
    }

    #[test]
    fn stack_args_take_port_data_dir_and_release_in_any_order() {
        let parsed = parse_stack_args(&args(&["--release", "--data-dir", "/tmp/d", "--port", "9000"])).unwrap();
        assert_eq!((parsed.port, parsed.data_dir, parsed.release), (9000, PathBuf::from("/tmp/d"), true));
        let unknown = parse_stack_args(&args(&["--fast"])).unwrap_err().to_string();
        assert!(unknown.contains("unknown option `--fast`"), "{unknown}");
        assert!(parse_stack_args(&args(&["--port"])).unwrap_err().to_string().contains("--port needs a value"));
    }
}
