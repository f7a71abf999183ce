//! Holds only the multi-process test in `tests/failover.rs`: two replicas each of web, webhook
//! and bot, run as real processes from their built binaries on one Appwrite emulator, with the
//! bot leader and a webhook replica killed (SIGKILL) mid-run. `scripts/test.sh` runs it after
//! `cargo build --bins` (it is ignored in the plain nextest run, which does not build binaries
//! of other packages).
