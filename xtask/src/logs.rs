//! `cargo xtask logs [--follow] [--data-dir D] [JOB]`: the local stack's logs, one JSON line per
//! event in one file per process (`<data_dir>/logs/<name>.log`), merged in time order and
//! printed readably. With JOB, only the lines of that job: those carrying its `job_id`, and
//! those of the traces such lines belong to (the import request itself, which logs before the
//! job has an id in its span). `--follow` keeps printing lines as they are written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value};

const TRACE_KEY: &str = "logging.googleapis.com/trace";

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// Keep printing lines as the processes write them.
    #[arg(long)]
    pub follow: bool,
    /// The stack's data directory (as given to `serve`).
    #[arg(long, default_value = ".yds-data")]
    pub data_dir: PathBuf,
    /// Only the lines of this job (its `job_id`, or its trace).
    pub job: Option<String>,
}

/// One log line of one process.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub process: String,
    /// RFC 3339 UTC, as the functions write it (sorts as text); a line that is not JSON (a
    /// panic's message) takes the time of the line before it in its file.
    pub timestamp: String,
    /// The parsed line; `None` for a line that is not a JSON object.
    pub fields: Option<Map<String, Value>>,
    pub raw: String,
}

impl Entry {
    fn str(&self, key: &str) -> Option<&str> {
        self.fields.as_ref()?.get(key)?.as_str()
    }
}

pub fn run(args: LogsArgs) -> anyhow::Result<()> {
    let dir = args.data_dir.join("logs");
    let mut files = log_files(&dir)?;
    let mut filter = args.job.as_deref().map(JobFilter::new);
    let mut offsets: BTreeMap<PathBuf, (u64, String)> = BTreeMap::new();
    loop {
        let mut entries = Vec::new();
        for (process, path) in &files {
            let (offset, last_time) = offsets.entry(path.clone()).or_default();
            entries.extend(read_new(process, path, offset, last_time)?);
        }
        for entry in select(entries, filter.as_mut()) {
            println!("{}", render(&entry));
        }
        if !args.follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
        // A process started since (or restarted) gets its file picked up.
        files = log_files(&dir)?;
    }
}

/// The `*.log` files of `dir`, by process name.
pub fn log_files(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let read =
        std::fs::read_dir(dir).with_context(|| format!("no logs at {} (is that the data dir?)", dir.display()))?;
    let mut files: Vec<_> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.to_owned(), p)))
        .collect();
    files.sort();
    Ok(files)
}

/// The complete lines of `path` after `offset`, which moves past them; `last_time` carries the
/// time of the file's latest JSON line to the lines that have none.
fn read_new(process: &str, path: &Path, offset: &mut u64, last_time: &mut String) -> anyhow::Result<Vec<Entry>> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    if file.metadata()?.len() < *offset {
        *offset = 0; // truncated: start over
    }
    file.seek(SeekFrom::Start(*offset))?;
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break; // end, or a line still being written
        }
        *offset += n as u64;
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        if text.is_empty() {
            continue;
        }
        entries.push(parse_line(process, &text, last_time));
    }
    Ok(entries)
}

/// One line of `process`'s file.
pub fn parse_line(process: &str, text: &str, last_time: &mut String) -> Entry {
    let fields = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    if let Some(time) = fields.as_ref().and_then(|f| f.get("timestamp")).and_then(Value::as_str) {
        *last_time = time.to_owned();
    }
    Entry { process: process.to_owned(), timestamp: last_time.clone(), fields, raw: text.to_owned() }
}

/// Which lines belong to a job: its `job_id`, or a trace one of its lines is under.
pub struct JobFilter {
    job: String,
    traces: BTreeSet<String>,
}

impl JobFilter {
    pub fn new(job: &str) -> Self {
        Self { job: job.to_owned(), traces: BTreeSet::new() }
    }
}

/// `entries` in time order (stable: one file's lines keep their order), only the job's when
/// `filter` is given.
pub fn select(mut entries: Vec<Entry>, filter: Option<&mut JobFilter>) -> Vec<Entry> {
    entries.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    let Some(filter) = filter else { return entries };
    for entry in &entries {
        if entry.str("job_id") == Some(filter.job.as_str()) {
            if let Some(trace) = entry.str(TRACE_KEY) {
                filter.traces.insert(trace.to_owned());
            }
        }
    }
    entries
        .into_iter()
        .filter(|e| {
            e.str("job_id") == Some(filter.job.as_str()) || e.str(TRACE_KEY).is_some_and(|t| filter.traces.contains(t))
        })
        .collect()
}

/// `HH:MM:SS.mmm process SEVERITY message key=value…`.
pub fn render(entry: &Entry) -> String {
    let Some(fields) = &entry.fields else {
        return format!("{:<12} {:<14} {:<7} {}", short_time(&entry.timestamp), entry.process, "-", entry.raw);
    };
    let severity = fields.get("severity").and_then(Value::as_str).unwrap_or("-");
    let message = fields.get("message").and_then(Value::as_str).unwrap_or("");
    let mut line = format!("{:<12} {:<14} {:<7} {message}", short_time(&entry.timestamp), entry.process, severity);
    if let Some(Value::Object(http)) = fields.get("httpRequest") {
        let get =
            |k: &str| http.get(k).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).unwrap_or_default();
        line.push_str(&format!(" {} {} {} {}", get("requestMethod"), get("requestUrl"), get("status"), get("latency")));
    }
    // The ids that find a line first, then the rest as written.
    const FIRST: [&str; 3] = ["job_id", "dataset_id", "request_id"];
    let first = FIRST.iter().filter_map(|k| fields.get_key_value(*k));
    let rest = fields.iter().filter(|(key, _)| !FIRST.contains(&key.as_str()));
    for (key, value) in first.chain(rest) {
        if matches!(key.as_str(), "timestamp" | "severity" | "message" | "target" | "httpRequest")
            || key.starts_with("logging.googleapis.com/")
        {
            continue;
        }
        match value {
            Value::String(s) => line.push_str(&format!(" {key}={s}")),
            other => line.push_str(&format!(" {key}={other}")),
        }
    }
    line
}

/// `2026-12-07T16:30:00.123456Z` → `16:30:00.123`.
fn short_time(timestamp: &str) -> &str {
    timestamp.get(11..23).unwrap_or(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "job1";
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(
            logs.join("import-trigger.log"),
            format!(
                concat!(
                    r#"{{"severity":"INFO","timestamp":"2026-12-07T16:30:00.100000Z","message":"listening","port":1}}"#,
                    "\n",
                    r#"{{"severity":"INFO","timestamp":"2026-12-07T16:30:01.000000Z","message":"served","logging.googleapis.com/trace":"{t}","httpRequest":{{"requestMethod":"POST","requestUrl":"/datasets/import","status":202,"latency":"0.012s"}},"request_id":"r1"}}"#,
                    "\n",
                    r#"{{"severity":"INFO","timestamp":"2026-12-07T16:30:03.000000Z","message":"other","job_id":"job2"}}"#,
                    "\n",
                    r#"{{"severity":"INFO","timestamp":"2026-12-07T16:30:04.0"#,
                ),
                t = TRACE
            ),
        )
        .unwrap();
        std::fs::write(
            logs.join("process-chunk.log"),
            format!(
                concat!(
                    r#"{{"severity":"INFO","timestamp":"2026-12-07T16:30:00.500000Z","message":"job queued","job_id":"job1","logging.googleapis.com/trace":"{t}"}}"#,
                    "\n",
                    "thread 'main' panicked at somewhere\n",
                    r#"{{"severity":"ERROR","timestamp":"2026-12-07T16:30:02.000000Z","message":"chunk done","job_id":"job1","dataset_id":"d1","index":3}}"#,
                    "\n",
                ),
                t = TRACE
            ),
        )
        .unwrap();
        dir
    }

    fn read_all(dir: &Path) -> Vec<Entry> {
        let mut entries = Vec::new();
        for (process, path) in log_files(&dir.join("logs")).unwrap() {
            let (mut offset, mut last) = (0, String::new());
            entries.extend(read_new(&process, &path, &mut offset, &mut last).unwrap());
        }
        entries
    }

    #[test]
    fn the_files_merge_in_time_order_and_a_half_written_line_waits() {
        let dir = fixture();
        let merged = select(read_all(dir.path()), None);
        let messages: Vec<_> = merged.iter().map(|e| e.str("message").unwrap_or(&e.raw).to_owned()).collect();
        assert_eq!(
            messages,
            ["listening", "job queued", "thread 'main' panicked at somewhere", "served", "chunk done", "other"]
        );
        assert_eq!(merged[2].process, "process-chunk");
    }

    #[test]
    fn a_job_keeps_its_own_lines_and_those_of_its_trace() {
        let dir = fixture();
        let mut filter = JobFilter::new(JOB);
        let lines: Vec<_> = select(read_all(dir.path()), Some(&mut filter)).iter().map(render).collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert_eq!(lines[0], "16:30:00.500 process-chunk  INFO    job queued job_id=job1");
        assert_eq!(
            lines[1],
            "16:30:01.000 import-trigger INFO    served POST /datasets/import 202 0.012s request_id=r1"
        );
        assert_eq!(lines[2], "16:30:02.000 process-chunk  ERROR   chunk done job_id=job1 dataset_id=d1 index=3");
    }

    #[test]
    fn following_reads_only_lines_completed_since() {
        let dir = fixture();
        let path = dir.path().join("logs/import-trigger.log");
        let (mut offset, mut last) = (0, String::new());
        assert_eq!(read_new("t", &path, &mut offset, &mut last).unwrap().len(), 3);
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut file, b"00000Z\",\"message\":\"late\"}\n").unwrap();
        let new = read_new("t", &path, &mut offset, &mut last).unwrap();
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].str("message"), Some("late"));
        assert_eq!(new[0].timestamp, "2026-12-07T16:30:04.000000Z");
    }
}
