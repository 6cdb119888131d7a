//! A test that needs a process of its own to kill (a stack, a mongod's owner, a supervisor)
//! runs this same test binary again for one ignored helper test, which does its part when the
//! variables it is given are set, and reports on stdout.

use std::io::BufRead;
use std::process::{Child, ChildStdout, Command, Stdio};

/// This test binary run again for the ignored test `helper` alone, its stdout piped.
pub fn run_helper(helper: &str, env: &[(&str, &std::ffi::OsStr)]) -> Child {
    let mut command = Command::new(std::env::current_exe().expect("the test binary's path"));
    // Not `--test-threads=1`: then libtest writes the test's name first, on the line its output
    // continues, and a report would not start a line.
    command.args(["--exact", helper, "--ignored", "--nocapture"]).stdout(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command.spawn().expect("the test binary runs again")
}

/// What follows `prefix` on the first line of `output` that starts with it (blocking);
/// `None` if the output ends first.
pub fn line_after(output: ChildStdout, prefix: &str) -> Option<String> {
    std::io::BufReader::new(output)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix(prefix).map(str::to_owned))
}
