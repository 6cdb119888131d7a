//! The one error type of the client: every way a command can fail, each with the sentence a
//! user reads. Never a Rust debug dump: the server's problem+json `title` and `detail` are shown
//! as they are, and a transport failure is named by its root cause (connection refused, host
//! not found, timed out).

use std::fmt;

/// What a command's failure is, with the text shown after `error: `.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither `YDS_URL` nor the config file names the API.
    #[error("no API URL configured: set YDS_URL, or run `yds login --url URL`")]
    NoUrl,
    /// Neither `YDS_API_KEY` nor the config file holds a key.
    #[error("no API key configured: set YDS_API_KEY, or run `yds login --api-key KEY`")]
    NoKey,
    /// The request never got an answer.
    #[error("cannot reach {origin}: {reason}")]
    Unreachable { origin: String, reason: String },
    /// The server answered with an error status (its problem+json, or what could be read).
    #[error("{0}")]
    Api(Problem),
    /// A DATASET argument that is neither an id nor any dataset's name.
    #[error("no dataset has the id or the name `{0}` (see `yds ls`)")]
    NoSuchDataset(String),
    /// The command cannot go on, for a reason the message gives (bad argument, ambiguous
    /// name, unexpected answer, a refused file name...).
    #[error("{0}")]
    Message(String),
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

/// A shorthand for the client's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Message`].
    pub fn msg(text: impl Into<String>) -> Self {
        Error::Message(text.into())
    }

    /// An [`Error::Io`] saying what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    /// The HTTP status of an [`Error::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(problem) => Some(problem.status),
            _ => None,
        }
    }
}

/// An error answer of the API: RFC 9457 problem+json, or the status and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub title: String,
    pub detail: String,
    /// What the user can do about it, when the client knows better than the server.
    pub hint: Option<String>,
}

impl Problem {
    /// Reads an error answer's body: problem+json when it is JSON with a `title` or `detail`,
    /// else the first line of the text (bounded), else the status' reason phrase.
    pub fn from_body(status: u16, body: &[u8]) -> Problem {
        let reason =
            reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("error").to_owned();
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| json.as_ref().and_then(|j| j.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
        let (title, detail) = match (field("title"), field("detail")) {
            (None, None) => {
                let text = String::from_utf8_lossy(body);
                let first_line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
                (reason, printable(&first_line.chars().take(300).collect::<String>()))
            }
            (title, detail) => (title.unwrap_or(reason), detail.unwrap_or_default()),
        };
        let hint = match status {
            401 => Some("check YDS_API_KEY, or run `yds login`".to_owned()),
            _ => None,
        };
        Problem { status, title, detail, hint }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {})", printable(&self.title), self.status)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", printable(&self.detail))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Names a transport failure by its root cause: "connection refused (is the server running?)",
/// not a chain of wrapped errors.
pub fn transport(origin: &str, err: &reqwest::Error) -> Error {
    let mut cause: &dyn std::error::Error = err;
    let mut io_kind = None;
    while let Some(next) = cause.source() {
        if let Some(io) = next.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        cause = next;
    }
    let reason = if err.is_timeout() {
        "timed out".to_owned()
    } else {
        match io_kind {
            Some(std::io::ErrorKind::ConnectionRefused) => "connection refused (is the server running?)".to_owned(),
            Some(std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) => {
                "the connection was dropped".to_owned()
            }
            _ if err.is_connect() && cause.to_string().contains("dns") => format!("host not found ({cause})"),
            _ => cause.to_string(),
        }
    };
    Error::Unreachable { origin: origin.to_owned(), reason }
}

/// Text from the server or a file name, safe to print on a terminal: control characters
/// (escape sequences, carriage returns) are shown escaped, not interpreted.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_shows_title_status_detail_and_for_401_a_hint() {
        let body = br#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"missing API key: send it in the `x-api-key` header"}"#;
        let problem = Problem::from_body(401, body);
        assert_eq!(
            Error::Api(problem).to_string(),
            "Unauthorized (HTTP 401): missing API key: send it in the `x-api-key` header\n  hint: check YDS_API_KEY, or run `yds login`"
        );
    }

    #[test]
    fn a_body_that_is_not_a_problem_shows_its_first_line_and_the_reason_phrase() {
        let problem = Problem::from_body(502, b"\n  upstream down\nmore");
        assert_eq!(problem.to_string(), "Bad Gateway (HTTP 502): upstream down");
        assert_eq!(Problem::from_body(404, b"").to_string(), "Not Found (HTTP 404)");
    }

    #[test]
    fn control_characters_are_escaped_for_the_terminal() {
        assert_eq!(printable("a\u{1b}[31mred\r"), "a\\u{1b}[31mred\\r");
        assert_eq!(printable("plain é"), "plain é");
    }
}
