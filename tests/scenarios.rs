//! Every scenario file under `scenarios/` is its own test (see
//! `faultline::testing`): `cargo test --test scenarios -- NAME` runs one,
//! `FAULTLINE_SEED=N` reproduces a seed, `FAULTLINE_SEEDS=K` runs K seeds.

fn main() {
    faultline::testing::main(&faultline::registry::SYSTEMS, env!("CARGO_MANIFEST_DIR"));
}
