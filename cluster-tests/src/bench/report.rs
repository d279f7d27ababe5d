//! Aggregation (medians over runs) and table rendering (plain text and
//! markdown).

use super::scenario::{RunResult, Scenario};

/// All runs of one scenario on one side.
#[derive(Clone, Debug, Default)]
pub struct SideStats {
    /// Successful runs.
    pub runs: Vec<RunResult>,
    /// Failed runs' errors.
    pub errors: Vec<String>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl SideStats {
    /// Median of a per-run metric (None if no successful run / no value).
    pub fn median_of(&self, f: impl Fn(&RunResult) -> Option<f64>) -> Option<f64> {
        median(self.runs.iter().filter_map(f).collect())
    }

    /// Median headline rate.
    pub fn rate(&self) -> Option<f64> {
        self.median_of(|r| Some(r.rate))
    }

    /// Median server CPU s per million messages.
    pub fn cpu(&self) -> Option<f64> {
        self.median_of(|r| Some(r.cpu_per_m))
    }

    /// Median peak RSS, bytes.
    pub fn rss(&self) -> Option<f64> {
        self.median_of(|r| Some(r.peak_rss as f64))
    }

    /// (min, max) of the headline rate over runs.
    pub fn rate_range(&self) -> Option<(f64, f64)> {
        let it = self.runs.iter().map(|r| r.rate);
        let min = it.clone().reduce(f64::min)?;
        let max = it.reduce(f64::max)?;
        Some((min, max))
    }
}

/// Results of a whole bench invocation.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Side labels; index 0 is the baseline (`nats`), 1 the candidate.
    pub sides: Vec<String>,
    /// Per scenario, per side (same order as `sides`).
    pub rows: Vec<(Scenario, Vec<SideStats>)>,
}

/// `12.3M`, `456.7k`, `89`.
pub fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => format!("{:.2}x", b / a),
        _ => "-".into(),
    }
}

impl Report {
    fn side(&self, stats: &[SideStats], i: usize) -> Option<SideStats> {
        stats.get(i).filter(|s| !s.runs.is_empty()).cloned()
    }

    /// Header + rows as cells (all scenarios).
    pub fn cells(&self) -> (Vec<String>, Vec<Vec<String>>) {
        self.cells_where(|_| true)
    }

    /// Header + rows as cells for the scenarios `keep` selects.
    pub fn cells_where(&self, keep: impl Fn(Scenario) -> bool) -> (Vec<String>, Vec<Vec<String>>) {
        let a = self.sides.first().cloned().unwrap_or_else(|| "nats".into());
        let b = self.sides.get(1).cloned().unwrap_or_else(|| "tern".into());
        let header = vec![
            "scenario".to_string(),
            format!("{a} msgs/s"),
            format!("{b} msgs/s"),
            "ratio".into(),
            format!("{a} CPU s/M"),
            format!("{b} CPU s/M"),
            "ratio".into(),
            format!("{a} RSS MiB"),
            format!("{b} RSS MiB"),
            format!("{a} p50/p99 µs"),
            format!("{b} p50/p99 µs"),
        ];
        let mut rows = Vec::new();
        for (sc, stats) in self.rows.iter().filter(|(sc, _)| keep(*sc)) {
            let sa = self.side(stats, 0);
            let sb = self.side(stats, 1);
            let get = |s: &Option<SideStats>, f: &dyn Fn(&SideStats) -> Option<f64>| {
                s.as_ref().and_then(f)
            };
            let (ra, rb) = (get(&sa, &|s| s.rate()), get(&sb, &|s| s.rate()));
            let (ca, cb) = (get(&sa, &|s| s.cpu()), get(&sb, &|s| s.cpu()));
            let (ma, mb) = (get(&sa, &|s| s.rss()), get(&sb, &|s| s.rss()));
            let lat = |s: &Option<SideStats>| {
                let p50 = get(s, &|s| s.median_of(|r| r.p50_us));
                let p99 = get(s, &|s| s.median_of(|r| r.p99_us));
                match (p50, p99) {
                    (Some(a), Some(b)) => format!("{a:.1}/{b:.1}"),
                    _ => "-".into(),
                }
            };
            let err = |s: Option<&SideStats>| -> Option<String> {
                s.filter(|s| s.runs.is_empty() && !s.errors.is_empty())
                    .map(|_| "FAILED".to_string())
            };
            rows.push(vec![
                sc.name().to_string(),
                err(stats.first()).unwrap_or_else(|| fmt_opt(ra, fmt_rate)),
                err(stats.get(1)).unwrap_or_else(|| fmt_opt(rb, fmt_rate)),
                ratio(ra, rb),
                fmt_opt(ca, |v| format!("{v:.3}")),
                fmt_opt(cb, |v| format!("{v:.3}")),
                // For CPU, lower is better; ratio is still candidate/baseline.
                ratio(ca, cb),
                fmt_opt(ma, |v| format!("{:.1}", v / 1048576.0)),
                fmt_opt(mb, |v| format!("{:.1}", v / 1048576.0)),
                lat(&sa),
                lat(&sb),
            ]);
        }
        (header, rows)
    }

    /// Plain-text tables: single-server scenarios, then (if any were run)
    /// the 3-node cluster scenarios under [`CLUSTER_CAPTION`].
    pub fn to_text(&self) -> String {
        self.sections(text_table, "")
    }

    /// Markdown tables, laid out like [`Report::to_text`].
    pub fn to_markdown(&self) -> String {
        self.sections(markdown_table, "**")
    }

    fn sections(&self, render: fn(&[String], &[Vec<String>]) -> String, emph: &str) -> String {
        let mut out = String::new();
        let (header, single) = self.cells_where(|sc| !sc.is_cluster());
        if !single.is_empty() {
            out.push_str(&render(&header, &single));
        }
        let (header, cluster) = self.cells_where(Scenario::is_cluster);
        if !cluster.is_empty() {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("{emph}{CLUSTER_CAPTION}{emph}\n\n"));
            out.push_str(&render(&header, &cluster));
        }
        out
    }
}

/// Says how the cluster table's columns differ from the single-server ones.
pub const CLUSTER_CAPTION: &str = "3-node cluster (full mesh A-B-C; publisher/requester on A, \
    subscriber/responder on B, C idle): msgs/s = delivered at B (x16, x1k) or requests/s \
    (xreqrep); CPU s/M = CPU summed over the 3 nodes; RSS = peak of the largest node.";

/// Aligned plain-text table.
fn text_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if i == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str("  ");
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header);
    out.push_str(&"-".repeat(w.iter().sum::<usize>() + 2 * (w.len() - 1)));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// Markdown table.
fn markdown_table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    out.push('|');
    for i in 0..header.len() {
        out.push_str(if i == 0 { "---|" } else { "---:|" });
    }
    out.push('\n');
    for r in rows {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    out
}
