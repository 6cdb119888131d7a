//! Where the client finds the API and its key: `YDS_URL` and `YDS_API_KEY`, else the file
//! `yds login` writes (`$XDG_CONFIG_HOME/yds/config.toml`, or `~/.config/yds/config.toml`).
//! The environment wins over the file, so a script can point one command elsewhere.
//!
//! The file is two TOML string keys, `url` and `api_key`; it holds a secret, so it is written
//! with mode 0600 (its folder 0700), through a temporary file renamed into place.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The API and key a command uses, and where each came from (for `yds login`'s messages).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub url: Option<String>,
    pub api_key: Option<String>,
}

impl Settings {
    /// The environment's values over the file's: a variable set and non-empty wins.
    pub fn merge(env_url: Option<String>, env_key: Option<String>, file: Settings) -> Settings {
        let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        Settings { url: set(env_url).or(file.url), api_key: set(env_key).or(file.api_key) }
    }

    /// What this process is configured with: the environment, then the config file.
    pub fn load() -> Result<Settings> {
        let file = match config_path() {
            Some(path) => read_file(&path)?,
            None => Settings::default(),
        };
        Ok(Settings::merge(std::env::var("YDS_URL").ok(), std::env::var("YDS_API_KEY").ok(), file))
    }
}

/// The config file's path from `$XDG_CONFIG_HOME` (when absolute, as the XDG spec says) or
/// `$HOME`; `None` when neither is usable.
pub fn path_from(xdg_config_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let xdg = xdg_config_home.map(PathBuf::from).filter(|p| p.is_absolute());
    let base = xdg.or_else(|| home.filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("yds").join("config.toml"))
}

/// This process' config file path.
pub fn config_path() -> Option<PathBuf> {
    path_from(std::env::var_os("XDG_CONFIG_HOME"), std::env::var_os("HOME"))
}

/// The settings in the file at `path`; none when there is no file.
pub fn read_file(path: &Path) -> Result<Settings> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map_err(|e| Error::msg(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// Writes `settings` to `path`, readable by its owner only.
pub fn write_file(path: &Path, settings: &Settings) -> Result<()> {
    let dir = path.parent().ok_or_else(|| Error::msg(format!("{} has no parent folder", path.display())))?;
    create_private_dir(dir)?;
    let temp = dir.join(".config.toml.tmp");
    let text = render(settings);
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        // An existing temp file keeps its old mode through `open`: set it explicitly.
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        std::io::Write::write_all(&mut file, text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    write().map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

/// The file's text: a comment and the keys that are set.
pub fn render(settings: &Settings) -> String {
    let mut text = String::from("# The YDS command-line client's settings, written by `yds login`.\n");
    text.push_str("# YDS_URL and YDS_API_KEY, when set, win over these.\n");
    for (key, value) in [("url", &settings.url), ("api_key", &settings.api_key)] {
        if let Some(value) = value {
            text.push_str(&format!("{key} = {}\n", toml_string(value)));
        }
    }
    text
}

/// A TOML basic string: JSON's escapes are TOML's, but for `\/` and `\u` beyond the BMP,
/// neither of which serde_json writes.
fn toml_string(value: &str) -> String {
    serde_json::to_string(value).expect("a string serializes")
}

/// Reads the subset of TOML the file uses: comments, blank lines and `key = "string"` lines.
/// Unknown keys are ignored (a newer client may add some); anything else is an error naming
/// its line.
pub fn parse(text: &str) -> std::result::Result<Settings, String> {
    let mut settings = Settings::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| format!("line {}: expected `key = \"value\"`", n + 1))?;
        let value = value.trim();
        let value = if value.starts_with('\'') && value.ends_with('\'') && value.len() >= 2 {
            // A TOML literal string: no escapes.
            value[1..value.len() - 1].to_owned()
        } else {
            serde_json::from_str::<String>(value)
                .map_err(|_| format!("line {}: the value of `{}` is not a quoted string", n + 1, key.trim()))?
        };
        match key.trim() {
            "url" => settings.url = Some(value),
            "api_key" => settings.api_key = Some(value),
            _ => {}
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, key: &str) -> Settings {
        Settings { url: Some(url.into()), api_key: Some(key.into()) }
    }

    #[test]
    fn the_environment_wins_over_the_file_and_empty_variables_do_not_count() {
        let file = settings("http://file", "file-key");
        assert_eq!(Settings::merge(Some("http://env".into()), None, file.clone()), settings("http://env", "file-key"));
        assert_eq!(
            Settings::merge(Some(" ".into()), Some("env-key".into()), file.clone()),
            settings("http://file", "env-key")
        );
        assert_eq!(Settings::merge(None, None, Settings::default()), Settings::default());
    }

    #[test]
    fn the_path_follows_xdg_then_home() {
        assert_eq!(
            path_from(Some("/x/conf".into()), Some("/home/u".into())),
            Some(PathBuf::from("/x/conf/yds/config.toml"))
        );
        // A relative XDG_CONFIG_HOME is invalid per the spec: ignored.
        assert_eq!(
            path_from(Some("rel".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.config/yds/config.toml"))
        );
        assert_eq!(path_from(None, None), None);
    }

    #[test]
    fn the_file_round_trips_with_awkward_values_and_ignores_unknown_keys() {
        let original = settings("https://api.example.com/yds", "k\"e\\y=#1");
        let text = render(&original);
        assert_eq!(parse(&text).unwrap(), original);
        let text = format!("{text}\ncolour = \"blue\"\n# comment\n");
        assert_eq!(parse(&text).unwrap(), original);
        assert_eq!(parse("url = 'http://lit'").unwrap().url.as_deref(), Some("http://lit"));
        assert_eq!(parse("url = http://bare").unwrap_err(), "line 1: the value of `url` is not a quoted string");
        assert_eq!(parse("junk").unwrap_err(), "line 1: expected `key = \"value\"`");
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf/yds/config.toml");
        write_file(&path, &settings("http://a", "k1")).unwrap();
        write_file(&path, &settings("http://b", "k2")).unwrap();
        assert_eq!(read_file(&path).unwrap(), settings("http://b", "k2"));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(read_file(&dir.path().join("none.toml")).unwrap(), Settings::default());
    }
}
