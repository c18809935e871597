//! The `faultline` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    println!("faultline: no scenarios to sweep yet (scenarios/ is empty)");
    ExitCode::SUCCESS
}
