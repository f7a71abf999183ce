//! The Prometheus text exposition format (0.0.4), written by hand: every service's `/metrics`
//! has a handful of families, which do not justify a metrics framework. [`Writer`] owns the
//! `# HELP`/`# TYPE` lines, label escaping and the histogram layout; services keep the values.

use std::fmt::{self, Display, Write as _};

/// What a metric family is, as its `# TYPE` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Builds one scrape's worth of text.
///
/// ```
/// use g3_service::prometheus::Writer;
/// let mut w = Writer::new();
/// w.gauge("g3_up", "1 while running.", 1);
/// let mut requests = w.counter_family("g3_requests_total", "Requests by route.");
/// requests.sample(&[("route", "/feed")], 2);
/// let text = w.finish();
/// let lines: Vec<&str> = text.lines().collect();
/// assert_eq!(
///     lines,
///     [
///         "# HELP g3_up 1 while running.",
///         "# TYPE g3_up gauge",
///         "g3_up 1",
///         "# HELP g3_requests_total Requests by route.",
///         "# TYPE g3_requests_total counter",
///         "g3_requests_total{route=\"/feed\"} 2",
///     ]
/// );
/// ```
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a family: writes its `# HELP` and `# TYPE` lines; samples follow on the handle.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) -> Family<'_> {
        let _ = writeln!(self.out, "# HELP {name} {}", EscapedHelp(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        Family {
            out: &mut self.out,
            name: name.to_owned(),
        }
    }

    /// A counter family whose samples carry labels.
    pub fn counter_family(&mut self, name: &str, help: &str) -> Family<'_> {
        self.family(name, Kind::Counter, help)
    }

    /// A gauge family whose samples carry labels.
    pub fn gauge_family(&mut self, name: &str, help: &str) -> Family<'_> {
        self.family(name, Kind::Gauge, help)
    }

    /// A counter with one unlabelled sample.
    pub fn counter(&mut self, name: &str, help: &str, value: impl Display) {
        self.counter_family(name, help).sample(&[], value);
    }

    /// A gauge with one unlabelled sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.gauge_family(name, help).sample(&[], value);
    }

    /// An unlabelled histogram. `cumulative[i]` counts observations `<= bounds[i]` (so it never
    /// decreases); `count` is every observation (the `+Inf` bucket) and `sum` their total.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        bounds: &[f64],
        cumulative: &[u64],
        count: u64,
        sum: f64,
    ) {
        debug_assert_eq!(bounds.len(), cumulative.len());
        let mut family = self.family(name, Kind::Histogram, help);
        for (bound, n) in bounds.iter().zip(cumulative) {
            family.sample_named("_bucket", &[("le", &bound.to_string())], n);
        }
        family.sample_named("_bucket", &[("le", "+Inf")], count);
        family.sample_named("_sum", &[], sum);
        family.sample_named("_count", &[], count);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The samples of one family, written right after its `# HELP`/`# TYPE` lines.
pub struct Family<'w> {
    out: &'w mut String,
    name: String,
}

impl Family<'_> {
    /// One sample line: `name{label="value",...} value` (no braces without labels).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Display) {
        self.sample_named("", labels, value);
    }

    fn sample_named(&mut self, suffix: &str, labels: &[(&str, &str)], value: impl Display) {
        let _ = write!(self.out, "{}{suffix}", self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", EscapedLabel(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A label value as the format requires: `\`, `"` and line feeds escaped.
struct EscapedLabel<'a>(&'a str);

impl Display for EscapedLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Help text as the format requires: `\` and line feeds escaped (quotes stay as they are).
struct EscapedHelp<'a>(&'a str);

impl Display for EscapedHelp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut w = Writer::new();
        w.counter_family("m_total", "a \\ b\nc \"q\"")
            .sample(&[("a", "x\"y\\z\nw"), ("b", "plain")], 3);
        assert_eq!(
            w.finish(),
            "# HELP m_total a \\\\ b\\nc \"q\"\n# TYPE m_total counter\n\
             m_total{a=\"x\\\"y\\\\z\\nw\",b=\"plain\"} 3\n"
        );
    }

    #[test]
    fn histograms_end_with_inf_sum_and_count() {
        let mut w = Writer::new();
        w.histogram(
            "h_seconds",
            "Latency.",
            &[0.005, 1.0, 10.0],
            &[1, 2, 2],
            3,
            20.033,
        );
        assert_eq!(
            w.finish(),
            "# HELP h_seconds Latency.\n# TYPE h_seconds histogram\n\
             h_seconds_bucket{le=\"0.005\"} 1\n\
             h_seconds_bucket{le=\"1\"} 2\n\
             h_seconds_bucket{le=\"10\"} 2\n\
             h_seconds_bucket{le=\"+Inf\"} 3\n\
             h_seconds_sum 20.033\n\
             h_seconds_count 3\n"
        );
    }

    #[test]
    fn a_family_without_samples_keeps_its_header() {
        let mut w = Writer::new();
        w.counter_family("empty_total", "Nothing yet.");
        w.gauge("g", "A gauge.", -1);
        assert_eq!(
            w.finish(),
            "# HELP empty_total Nothing yet.\n# TYPE empty_total counter\n\
             # HELP g A gauge.\n# TYPE g gauge\ng -1\n"
        );
    }
}
