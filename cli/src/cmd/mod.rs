//! One file per subcommand; this one dispatches and holds what they share.

mod images;
mod import;
mod jobs;
mod login;
mod ls;
mod pull;
mod rename;
mod rm;
mod show;
mod status;

use std::io::{IsTerminal, Write};

use crate::args::{Cli, Command};
use crate::client::Api;
use crate::config::Settings;
use crate::error::{Error, Result};

/// How a command ended, when it did not fail itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The job the command followed (an import, a delete) failed.
    JobFailed,
}

/// Runs one command line.
pub async fn run(cli: Cli) -> Result<Outcome> {
    if let Command::Login(args) = cli.command {
        return login::run(args).await;
    }
    let api = Api::new(&Settings::load()?)?;
    match cli.command {
        Command::Login(_) => unreachable!("handled above"),
        Command::Import(args) => import::run(&api, args).await,
        Command::Ls(args) => ls::run(&api, args).await,
        Command::Show(args) => show::run(&api, args).await,
        Command::Images(args) => images::run(&api, args).await,
        Command::Jobs(args) => jobs::run(&api, args).await,
        Command::Status(args) => status::run(&api, args).await,
        Command::Rm(args) => rm::run(&api, args).await,
        Command::Rename(args) => rename::run(&api, args).await,
        Command::Pull(args) => pull::run(&api, args).await,
    }
}

/// Writes a command's result to stdout; a closed pipe (`yds ls | head`) is not an error.
pub fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("writing to stdout", e)),
        _ => Ok(()),
    }
}

/// A JSON value, pretty, on stdout.
pub fn print_json(value: &serde_json::Value) -> Result<()> {
    print(&format!("{}\n", serde_json::to_string_pretty(value).expect("JSON serializes")))
}

/// A line of the user's typing on stdin, after `prompt` on stderr; an error when stdin is not
/// a terminal (`what` names the option that would have avoided the question).
pub fn ask(prompt: &str, what: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::msg(format!("{what} is missing, and stdin is not a terminal to ask for it")));
    }
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| Error::io("reading stdin", e))?;
    Ok(line.trim().to_owned())
}
