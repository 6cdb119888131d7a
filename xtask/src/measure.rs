//! What the benches read off running processes: CPU time and memory from `/proc`, and whether a
//! function answers its health check.

use std::io::{Read, Write};

/// utime + stime of a `/proc/<pid>/stat` line (fields 14 and 15; the name in parentheses may
/// hold spaces, so fields are counted after its closing parenthesis).
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The kB figure of `key` (`VmRSS:`, `VmHWM:`...) in a `/proc/<pid>/status` text.
pub fn proc_status_kb(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// The status of `GET /healthz`, or `None` while nothing listens.
pub fn healthz(port: u16) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kilobytes_from_proc_status() {
        let stat = "4321 (process chunk) S 1 4321 4321 0 -1 4194304 900 0 0 0 250 40 0 0 20 0 9 0 100";
        assert_eq!(cpu_ticks(stat), Some(290));
        let text = "Name:\tmongod\nVmHWM:\t  123456 kB\nVmRSS:\t   65432 kB\n";
        assert_eq!(proc_status_kb(text, "VmHWM:"), Some(123_456));
        assert_eq!(proc_status_kb(text, "VmRSS:"), Some(65_432));
        assert_eq!(proc_status_kb(text, "VmSwap:"), None);
    }
}
