//! The benchmark table: one row per scenario, with its goal and whether it was met.

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
}

impl Row {
    pub fn verdict(&self) -> &'static str {
        let met = match &self.goal {
            Goal::None => return "-",
            Goal::MinOpsPerSec(min) => self.ops_per_sec >= *min,
            Goal::MaxP99(max) => self.p99 <= *max,
            Goal::Both { min_ops, max_p99 } => self.ops_per_sec >= *min_ops && self.p99 <= *max_p99,
            Goal::MaxP99And {
                max_p99, other_met, ..
            } => *other_met && self.p99 <= *max_p99,
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
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub fn render(rows: &[Row]) -> String {
    let header = [
        "scenario", "ops", "conc", "ops/s", "p50", "p99", "errors", "goal", "result",
    ];
    let body: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                r.ops.to_string(),
                r.concurrency.to_string(),
                format!("{:.0}", r.ops_per_sec),
                ms(r.p50),
                ms(r.p99),
                r.errors.to_string(),
                r.goal_text(),
                r.verdict().to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &body {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
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
    out
}
