//! Panics the harness catches and turns into outcomes: a node's panic is
//! its run's `crash`, a checker's is a crash with the checker named. They
//! are expected, and their messages are in the reports; Rust's default
//! hook would also print each one raw on stderr, once per seed of a sweep.
//! [`catch`] marks the panics it catches, and the hook [`quiet_caught`]
//! installs keeps those (and only those) off stderr, so a test's own
//! failure still prints as usual.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many [`catch`] calls this thread is inside.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

/// `catch_unwind` for code whose panic the caller reports: nothing observed
/// inside is used after a panic but what the caller rebuilds.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Box<dyn Any + Send>> {
    CATCHING.with(|c| c.set(c.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    result
}

/// Installs, once per process, a hook that is silent for panics inside
/// [`catch`] and hands every other panic to the hook it replaced.
pub fn quiet_caught() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
}

/// A panic's message, for a report.
pub fn message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_gives_its_message_and_the_count_unwinds() {
        let caught = catch(|| panic!("boom {}", 7)).expect_err("it panicked");
        assert_eq!(message(caught.as_ref()), "boom 7");
        assert_eq!(CATCHING.with(Cell::get), 0);
        assert_eq!(catch(|| 3).ok(), Some(3));
    }
}
