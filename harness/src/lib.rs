//! faultline's harness: the deterministic world nodes run in, the contract
//! they are written against, client histories, and the checkers that judge
//! runs. See `ARCHITECTURE.md` at the repository root for the map.

pub mod check;
pub mod clock;
pub mod determinism;
pub mod disk;
pub mod fault;
pub mod history;
pub mod history_io;
pub mod host;
pub mod net;
pub mod node;
pub mod outcome;
pub mod panics;
pub mod ring;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod sim;
#[cfg(feature = "strategies")]
pub mod strategies;
pub mod system;
pub mod tap;
pub mod targets;
pub mod time;
pub mod trace;
pub mod trigger;

pub use check::{Invariant, Observed, Violation};
pub use disk::Disk;
pub use fault::{Fault, Shape, Target};
pub use history::{History, Op, OpType, Value};
pub use net::{Latency, LinkConfig, Ordering};
pub use node::{Ctx, Factory, Leadership, Message, Node, NodeId, Observation, TimerId};
pub use outcome::Outcome;
pub use rng::{Rng, Stream};
pub use sim::{Lifecycles, Status, View, World, WorldConfig};
pub use time::{MonoTime, SimTime, WallTime};
