//! The upper bound of every count, size and duration a scenario file or
//! the command line may give, so that any accepted input builds its plan
//! in bounded memory and runs in bounded time. Each is checked where the
//! value is parsed, with the file's line and column; README lists them.

use std::time::Duration;

/// Servers and clients, each.
pub const MAX_NODES: u32 = 99;
/// Keys a generated workload spreads over.
pub const MAX_KEYS: u32 = 1000;
/// Seeds of one scenario in a sweep (`seeds`, `--seeds`).
pub const MAX_SEEDS: u64 = 1_000_000;
/// Client operations of one run, generated or scripted: a plan holds them
/// all before the run starts.
pub const MAX_OPS: u32 = 500_000;
/// `duration` and `liveness`: far beyond any useful run (the event limit
/// ends busy runs much sooner), and far below the clock's range.
pub const MAX_DURATION: Duration = Duration::from_secs(10_000 * 3600);
/// Faults the nemesis may plan for one run: `duration` over a quarter of
/// `every` (its busiest draw) must stay below this.
pub const MAX_PLANNED_FAULTS: u64 = 100_000;
/// The events one run may take unless its file says otherwise.
pub const DEFAULT_MAX_EVENTS: u64 = 20_000_000;
/// The largest event budget a file may give: at the costliest measured
/// rate (a 99-node replication run, about 2 us an event on one core of
/// this project's 2-core CI machine) a run ends within a minute.
pub const MAX_EVENTS: u64 = 25_000_000;
/// Worker threads of a sweep (`--jobs`).
pub const MAX_JOBS: usize = 256;
