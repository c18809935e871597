//! What the command-line tests share: running the built binary from the
//! repository root, and its output as text.

#![allow(dead_code)] // each test target uses its own share of these

use std::process::{Command, Output};

/// Runs the `faultline` binary with `args` from the repository root.
pub fn faultline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("faultline runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
