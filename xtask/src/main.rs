//! `cargo xtask demo|test|serve|logs|bench|image|key|conformance|fuzz`: the project's commands.
//! Orchestration only: the stack itself lives in `local-stack`, the sample data in `testkit`.

mod bench;
mod binaries;
mod browser;
mod conformance;
mod demo;
mod fuzz;
mod image;
mod key;
mod logs;
mod measure;
mod paths;
mod serve;
mod startup;
mod test;
mod thumbnail_bench;
mod ui_bench;

use clap::{Parser, Subcommand};

/// The project's commands.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", disable_help_subcommand = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the stack, import a sample dataset, keep serving.
    Demo(serve::StackArgs),
    /// Start the stack and serve until Ctrl-C.
    Serve(serve::StackArgs),
    /// The local stack's logs merged in time order, readably; with JOB only that job's lines.
    Logs(logs::LogsArgs),
    /// Install and start what tests need, run every test; further arguments go to `cargo test`.
    Test {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_test_args: Vec<String>,
    },
    /// API keys, hashed in the MongoDB at $MONGODB_URI.
    Key {
        #[command(subcommand)]
        action: key::KeyCommand,
    },
    /// An OCI image layout per function (default: all, release).
    Image(image::ImageArgs),
    /// Measure an import against `tar -xzf`, the functions' start-up, the web app's pages, or
    /// thumbnails.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
    /// Compare YDS' image verdicts with real Ultralytics (installs it).
    Conformance,
    /// Run the cargo-fuzz targets N seconds each (nightly).
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let code = match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)).map(|()| 0)?,
        Command::Logs(args) => logs::run(args).map(|()| 0)?,
        Command::Demo(args) => runtime.block_on(demo::run(args)).map(|()| 0)?,
        Command::Test { cargo_test_args } => runtime.block_on(test::run(&cargo_test_args))?,
        Command::Key { action } => runtime.block_on(key::run(action)).map(|()| 0)?,
        Command::Image(args) => image::run(args).map(|()| 0)?,
        Command::Bench { what } => runtime.block_on(bench::run(what))?,
        Command::Conformance => runtime.block_on(conformance::run())?,
        Command::Fuzz(args) => fuzz::run(args)?,
    };
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cargo xtask").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn stack_args_default_to_debug_builds_on_8080() {
        let Command::Serve(args) = parse(&["serve"]).unwrap().command else { panic!("serve") };
        assert_eq!((args.port, args.data_dir, args.release), (8080, PathBuf::from(".yds-data"), false));
    }

    #[test]
    fn stack_args_take_port_data_dir_and_release_in_any_order() {
        let parsed = parse(&["demo", "--release", "--data-dir", "/tmp/d", "--port", "9000"]).unwrap();
        let Command::Demo(args) = parsed.command else { panic!("demo") };
        assert_eq!((args.port, args.data_dir, args.release), (9000, PathBuf::from("/tmp/d"), true));
        let unknown = parse(&["serve", "--fast"]).unwrap_err().to_string();
        assert!(unknown.contains("--fast"), "{unknown}");
        let missing = parse(&["serve", "--port"]).unwrap_err().to_string();
        assert!(missing.contains("--port"), "{missing}");
        assert!(parse(&["serve", "--port", "eighty"]).is_err());
    }

    #[test]
    fn test_passes_its_arguments_to_cargo_test() {
        let Command::Test { cargo_test_args } =
            parse(&["test", "--test", "schemathesis", "--", "--nocapture"]).unwrap().command
        else {
            panic!("test")
        };
        assert_eq!(cargo_test_args, ["--test", "schemathesis", "--", "--nocapture"]);
    }

    #[test]
    fn bench_import_options_are_checked() {
        let parsed = parse(&["bench", "import", "--images", "500", "--format", "all", "--labels-first"]).unwrap();
        let Command::Bench { what: bench::BenchCommand::Import(args) } = parsed.command else { panic!("bench") };
        assert_eq!((args.images, args.format.formats().len(), args.labels_first), (500, 3, true));
        assert!(parse(&["bench", "import", "--images", "0"]).is_err(), "at least one image");
        assert!(parse(&["bench", "import", "--format", "rar"]).is_err());
        assert!(parse(&["bench", "import", "--size-mix", "huge"]).is_err());
    }
}
