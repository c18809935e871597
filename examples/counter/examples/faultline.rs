//! The faultline command over this crate's systems:
//! `cargo run --example faultline -- sweep`, `-- run FILE --seed N`,
//! `-- shrink FILE --seed N`.

#[path = "../tests/system/mod.rs"]
mod system;

fn main() -> std::process::ExitCode {
    faultline::command::main(&system::SYSTEMS)
}
