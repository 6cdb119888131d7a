//! The `yds` binary: everything is in the library (`lib.rs`).

fn main() -> std::process::ExitCode {
    yds_cli::main()
}
