//! Every scenario file under `scenarios/` is a test:
//! `cargo test --test scenarios -- counter/no-dedup` runs one, and
//! `FAULTLINE_SEED=N` reproduces a seed.

mod system;

fn main() {
    faultline::testing::main(&system::SYSTEMS, env!("CARGO_MANIFEST_DIR"));
}
