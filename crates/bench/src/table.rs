//! The benchmark table: one row per scenario, with its goal, whether it was met, and how it
//! was measured (a footnote per distinct method, printed under the table).

use std::time::Duration;

pub struct Row {
    pub scenario: String,
    pub ops: usize,
    pub concurrency: usize,
    pub ops_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub errors: u64,
    pub goal: Goal,
    /// How the row is measured (what is timed, from where to where); empty: said by the
    /// scenario alone.
    pub how: String,
    /// A single measured value (memory, a ratio) rather than timed operations: the ops and
    /// latency columns print `-`, the value is in the scenario.
    pub measured_only: bool,
}

/// What a row must reach; `None` for rows that are informative only.
pub enum Goal {
    None,
    MinOpsPerSec(f64),
    MaxP99(Duration),
    Both {
        min_ops: f64,
        max_p99: Duration,
    },
    /// A p99 bound plus a goal measured outside the samples (p50, memory), named in the row
    /// and judged by the caller.
    MaxP99And {
        max_p99: Duration,
        other: String,
        other_met: bool,
    },
    /// A goal measured outside any samples (a ratio, resident memory), judged by the caller.
    Judged {
        goal: String,
        met: bool,
    },
}

impl Row {
    /// A row holding one measured value, no timed operations.
    pub fn measured(scenario: String, goal: String, met: bool) -> Self {
        Row {
            scenario,
            ops: 0,
            concurrency: 0,
            ops_per_sec: 0.0,
            p50: Duration::ZERO,
            p99: Duration::ZERO,
            errors: 0,
            goal: Goal::Judged { goal, met },
            how: String::new(),
            measured_only: true,
        }
    }

    /// Says how the row is measured (a footnote under the table).
    pub fn how(mut self, how: impl Into<String>) -> Self {
        self.how = how.into();
        self
    }

    pub fn verdict(&self) -> &'static str {
        let met = match &self.goal {
            Goal::None => return "-",
            Goal::MinOpsPerSec(min) => self.ops_per_sec >= *min,
            Goal::MaxP99(max) => self.p99 <= *max,
            Goal::Both { min_ops, max_p99 } => self.ops_per_sec >= *min_ops && self.p99 <= *max_p99,
            Goal::MaxP99And {
                max_p99, other_met, ..
            } => *other_met && self.p99 <= *max_p99,
            Goal::Judged { met, .. } => *met,
        };
        if met && self.errors == 0 {
            "met"
        } else {
            "MISSED"
        }
    }

    fn goal_text(&self) -> String {
        match &self.goal {
            Goal::None => "-".into(),
            Goal::MinOpsPerSec(min) => format!(">= {min:.0}/s"),
            Goal::MaxP99(max) => format!("p99 <= {}", ms(*max)),
            Goal::Both { min_ops, max_p99 } => {
                format!(">= {min_ops:.0}/s, p99 <= {}", ms(*max_p99))
            }
            Goal::MaxP99And { max_p99, other, .. } => format!("p99 <= {}, {other}", ms(*max_p99)),
            Goal::Judged { goal, .. } => goal.clone(),
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub fn render(rows: &[Row]) -> String {
    let header = [
        "scenario", "ops", "conc", "ops/s", "p50", "p99", "errors", "goal", "result", "how",
    ];
    // One footnote per distinct method, numbered in order of first use.
    let mut notes: Vec<&str> = Vec::new();
    let body: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            let note = if r.how.is_empty() {
                String::new()
            } else {
                let at = notes.iter().position(|n| *n == r.how).unwrap_or_else(|| {
                    notes.push(&r.how);
                    notes.len() - 1
                });
                format!("[{}]", at + 1)
            };
            let timed = |text: String| if r.measured_only { "-".into() } else { text };
            [
                r.scenario.clone(),
                timed(r.ops.to_string()),
                timed(r.concurrency.to_string()),
                timed(format!("{:.0}", r.ops_per_sec)),
                timed(ms(r.p50)),
                timed(ms(r.p99)),
                r.errors.to_string(),
                r.goal_text(),
                r.verdict().to_owned(),
                note,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::from("|");
        for (cell, w) in cells.iter().zip(widths) {
            out.push_str(&format!(" {cell:<w$} |"));
        }
        out.push('\n');
        out
    };
    let mut out = line(&header.map(String::from));
    out.push('|');
    for w in widths {
        out.push_str(&format!("{}|", "-".repeat(w + 2)));
    }
    out.push('\n');
    for row in &body {
        out.push_str(&line(row));
    }
    if !notes.is_empty() {
        out.push('\n');
        for (i, note) in notes.iter().enumerate() {
            out.push_str(&format!("[{}] {note}\n", i + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_footnotes_shared_by_rows_that_use_them() {
        let timed = |name: &str, how: &str| Row {
            scenario: name.into(),
            ops: 10,
            concurrency: 1,
            ops_per_sec: 100.0,
            p50: Duration::from_millis(1),
            p99: Duration::from_millis(2),
            errors: 0,
            goal: Goal::MaxP99(Duration::from_millis(5)),
            how: how.into(),
            measured_only: false,
        };
        let rows = [
            timed("a", "client to response"),
            timed("b", ""),
            timed("c", "client to response"),
            Row::measured("rss 5 MB".into(), "<= 20 MB".into(), false).how("VmRSS"),
        ];
        let out = render(&rows);
        assert!(out.contains("[1] client to response\n[2] VmRSS\n"), "{out}");
        assert_eq!(out.matches("| [1] |").count(), 2, "{out}");
        let rss = out
            .lines()
            .find(|l| l.starts_with("| rss"))
            .unwrap_or_default();
        assert!(rss.contains("| -") && rss.contains("MISSED"), "{rss}");
        assert_eq!(rows[0].verdict(), "met");
    }
}
