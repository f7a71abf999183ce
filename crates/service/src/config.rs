//! Settings at start: `.env` loading, and a checker that collects every missing or bad setting
//! so an operator fixes them all in one go instead of one per restart.
//!
//! Order of precedence: command-line flags, then the process environment, then `.env` (which
//! never overrides a variable that is already set). Nothing below `main` reads the environment.

use std::{fmt, path::PathBuf, process::ExitCode};

/// Loads `.env` from the working directory (or the file `ENV_FILE` names) into the process
/// environment, without overriding variables that are already set. Returns the file loaded.
///
/// Call before parsing arguments and before any thread starts: it sets environment variables.
pub fn load_dotenv() -> Result<Option<PathBuf>, ConfigError> {
    let (path, required) = match std::env::var_os("ENV_FILE") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), true),
        _ => (PathBuf::from(".env"), false),
    };
    if !path.exists() {
        if required {
            return Err(ConfigError::one(
                "ENV_FILE",
                format!("{} does not exist", path.display()),
            ));
        }
        return Ok(None);
    }
    match dotenvy::from_path(&path) {
        Ok(()) => Ok(Some(path)),
        Err(e) => Err(ConfigError::one(
            "ENV_FILE",
            format!("{} could not be read: {e}", path.display()),
        )),
    }
}

/// Loads `.env` (see [`load_dotenv`]) then parses the command line with its environment
/// fallbacks. A bad `.env` or bad flags print the problem and `--help` hint, and exit 2.
pub fn parse_args<A: clap::Parser>() -> A {
    if let Err(e) = load_dotenv() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    A::parse()
}

/// Every problem found in the settings, each naming its variable.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<(String, String)>,
}

impl ConfigError {
    pub fn one(name: &str, problem: impl fmt::Display) -> Self {
        Self {
            problems: vec![(name.to_owned(), problem.to_string())],
        }
    }
    pub fn problems(&self) -> &[(String, String)] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [(name, problem)] => write!(f, "{name}: {problem}"),
            all => {
                write!(f, "{} settings need fixing:", all.len())?;
                for (name, problem) in all {
                    write!(f, "\n  - {name}: {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Collects problems while settings are checked; [`Checks::finish`] reports them all.
#[derive(Debug, Default)]
pub struct Checks {
    error: ConfigError,
}

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with `name`.
    pub fn fail(&mut self, name: &str, problem: impl fmt::Display) {
        self.error
            .problems
            .push((name.to_owned(), problem.to_string()));
    }

    /// The value of a check, or `None` with its error recorded under `name`.
    pub fn check<T, E: fmt::Display>(&mut self, name: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(name, e);
                None
            }
        }
    }

    /// The text of the file the setting `name` points at: `Some(None)` when the setting is not
    /// given, `None` with "cannot read …" recorded when the file cannot be read.
    pub fn file(&mut self, name: &str, path: Option<&str>) -> Option<Option<String>> {
        let Some(path) = given(path) else {
            return Some(None);
        };
        self.check(
            name,
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}")),
        )
        .map(Some)
    }

    /// A setting that must be given: trimmed, `None` with "is not set" recorded when it is
    /// missing or blank.
    pub fn required(&mut self, name: &str, value: Option<&str>) -> Option<String> {
        match given(value) {
            Some(v) => Some(v),
            None => {
                self.fail(name, "is not set");
                None
            }
        }
    }

    /// `Ok(())` when nothing was recorded.
    pub fn finish(self) -> Result<(), ConfigError> {
        if self.error.problems.is_empty() {
            Ok(())
        } else {
            Err(self.error)
        }
    }

    /// [`Checks::finish`], then `value` (which is `Some` whenever nothing was recorded).
    pub fn done<T>(self, value: Option<T>) -> Result<T, ConfigError> {
        self.finish()?;
        value.ok_or_else(|| ConfigError::one("settings", "incomplete"))
    }
}

/// A trimmed, non-blank value: unset and blank mean the same.
pub fn given(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The process exit for `main`: prints the error chain on one line per cause (no backtrace)
/// and fails, or succeeds. Settings problems exit 2, like a usage error.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line on stderr, which container logs and journald keep; no backtrace.
            eprintln!("error: {e:#}");
            if e.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_named_at_once() {
        let mut checks = Checks::new();
        assert_eq!(checks.required("A", Some("  x ")), Some("x".into()));
        assert_eq!(checks.required("B", Some("   ")), None);
        assert_eq!(checks.required("C", None), None);
        let n: Option<u32> = checks.check("D", "nope".parse::<u32>());
        assert!(n.is_none());
        let err = checks.finish().unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("3 settings need fixing:"), "{text}");
        assert!(text.contains("- B: is not set"));
        assert!(text.contains("- C: is not set"));
        assert!(text.contains("- D: invalid digit"));
    }

    #[test]
    fn a_file_setting_is_read_absent_or_named_when_unreadable() {
        let path = std::env::temp_dir().join(format!("g3-checks-{}.toml", std::process::id()));
        std::fs::write(&path, "x = 1").unwrap();
        let mut checks = Checks::new();
        assert_eq!(checks.file("F", None), Some(None));
        assert_eq!(checks.file("F", Some("  ")), Some(None));
        assert_eq!(
            checks.file("F", path.to_str()),
            Some(Some("x = 1".to_owned()))
        );
        assert_eq!(checks.file("G", Some("/nowhere/plans.toml")), None);
        std::fs::remove_file(&path).unwrap();
        let text = checks.finish().unwrap_err().to_string();
        assert!(
            text.contains("G: cannot read /nowhere/plans.toml"),
            "{text}"
        );
    }

    #[test]
    fn one_problem_reads_as_one_line() {
        let err = ConfigError::one("X", "bad");
        assert_eq!(err.to_string(), "X: bad");
        assert_eq!(Checks::new().done(Some(1)), Ok(1));
    }

    #[test]
    fn settings_errors_exit_2() {
        let code = exit(Err(ConfigError::one("X", "bad").into()));
        assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::from(2)));
        let code = exit(Err(anyhow::anyhow!("down")));
        assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::FAILURE));
    }
}
