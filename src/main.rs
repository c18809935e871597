//! The `faultline` binary: the command over faultline's own systems.

use std::process::ExitCode;

fn main() -> ExitCode {
    faultline::command::main(&faultline::registry::SYSTEMS)
}
