//! Known issues a run may look past while they are open: `G3_FUZZ_KNOWN` holds their names,
//! comma-separated (each target documents the names it checks). With it unset, every check
//! is strict, so a run fails until the issue is fixed.

pub fn known(issue: &str) -> bool {
    static KNOWN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KNOWN
        .get_or_init(|| std::env::var("G3_FUZZ_KNOWN").unwrap_or_default())
        .split(',')
        .any(|k| k.trim() == issue)
}
