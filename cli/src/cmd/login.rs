//! `yds login [--url U] [--api-key K]`: checks the URL and key against the API and keeps them
//! in the config file, so later commands need no variables.

use std::io::IsTerminal;

use super::{ask, Outcome};
use crate::args::LoginArgs;
use crate::client::Api;
use crate::config::{self, Settings};
use crate::error::{Error, Result};

pub async fn run(args: LoginArgs) -> Result<Outcome> {
    let path = config::config_path()
        .ok_or_else(|| Error::msg("neither XDG_CONFIG_HOME nor HOME is set: there is nowhere to keep the settings"))?;
    let known =
        Settings::merge(std::env::var("YDS_URL").ok(), std::env::var("YDS_API_KEY").ok(), config::read_file(&path)?);
    let url = match args.url.or(known.url) {
        Some(url) => url,
        None => ask("API URL (e.g. http://127.0.0.1:8080): ", "--url")?,
    };
    let api_key = match args.api_key.or(known.api_key) {
        Some(key) => key,
        None if std::io::stdin().is_terminal() => {
            eprint!("API key: ");
            console::Term::stderr().read_secure_line().map_err(|e| Error::io("reading the key", e))?
        }
        None => return Err(Error::msg("--api-key is missing, and stdin is not a terminal to ask for it")),
    };
    let settings = Settings { url: Some(url.trim().to_owned()), api_key: Some(api_key.trim().to_owned()) };
    let api = Api::new(&settings)?;
    // Any route with the key would do; this one is cheap and every deployment has it.
    api.get(&["datasets"], &[("limit", Some("1".into()))]).await?;
    config::write_file(&path, &settings)?;
    eprintln!("logged in to {}; settings kept in {}", api.base(), path.display());
    for (variable, value) in [("YDS_URL", &settings.url), ("YDS_API_KEY", &settings.api_key)] {
        if std::env::var(variable).is_ok_and(|v| !v.trim().is_empty() && Some(v.trim()) != value.as_deref()) {
            eprintln!("note: {variable} is set in the environment and wins over the file");
        }
    }
    Ok(Outcome::Done)
}
