//! The web app's pure modules (filters, formatting, geometry, palette, routes, rate estimates)
//! checked by `tests/smoke.mjs` under Node, which this machine has; the pages themselves are
//! tested in a real browser (`tests/tests/web.rs` of the workspace).

use std::process::Command;

#[test]
fn the_pure_modules_pass_their_node_checks() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smoke.mjs");
    let output = match Command::new("node").arg(script).output() {
        Ok(output) => output,
        Err(_) => {
            eprintln!("skipped the_pure_modules_pass_their_node_checks: no `node` on PATH");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "node {script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("0 failed"), "{stdout}");
}
