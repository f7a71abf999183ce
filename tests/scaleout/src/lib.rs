//! Holds only the multi-process test in `tests/failover.rs`: two replicas each of web, webhook
//! and bot, run as real processes from their built binaries on one Appwrite emulator, with the
//! bot leader and a webhook replica killed (SIGKILL) mid-run. `scripts/test.sh` builds them
//! (`cargo build --workspace --all-targets`) and runs it with `--run-ignored`; it is ignored
//! in a plain nextest run, where `cargo nextest run -p scaleout` alone would not rebuild the
//! services and would test stale binaries.
