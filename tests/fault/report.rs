//! The numbers a set of runs adds up to: the four counts the proof rests on (lost, duplicated, falsely
//! confirmed, stuck) and the other checks, then the time from the last fault to the alert stored at the
//! office and to everything confirmed, overall and by the kind of the last fault.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::plan::FaultKind;
use crate::run::RunResult;

/// The brief's target for an alert once the office is reachable again.
pub const ALERT_TARGET: Duration = Duration::from_secs(2);
/// Issue 9's target for ordinary steps once the signal is back.
pub const CONFIRM_TARGET: Duration = Duration::from_secs(10);

/// The nearest-rank percentile `p` (0-100) of `sorted`.
pub fn percentile(sorted: &[Duration], p: u32) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * p as usize).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn seconds(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn line(label: &str, samples: &mut [Duration]) -> String {
    samples.sort();
    format!(
        "{label:<40} n={:<5} p50 {:>8}  p99 {:>8}  max {:>8}",
        samples.len(),
        seconds(percentile(samples, 50)),
        seconds(percentile(samples, 99)),
        seconds(samples.last().copied())
    )
}

/// The whole report, as printed.
pub fn summary(results: &[RunResult], elapsed: Duration) -> String {
    let mut out = String::new();
    let sum = |f: &dyn Fn(&RunResult) -> usize| results.iter().map(f).sum::<usize>();
    let failed: Vec<&RunResult> = results.iter().filter(|r| r.failed()).collect();
    let _ = writeln!(
        out,
        "doorstep fault harness: {} run(s) in {:.0} s, {} event(s) recorded by the phones",
        results.len(),
        elapsed.as_secs_f64(),
        sum(&|r| r.findings.recorded)
    );
    let _ = writeln!(out, "lost:               {}", sum(&|r| r.findings.lost));
    let _ = writeln!(
        out,
        "duplicated:         {}",
        sum(&|r| r.findings.duplicated)
    );
    let _ = writeln!(
        out,
        "falsely confirmed:  {}",
        sum(&|r| r.findings.falsely_confirmed)
    );
    let _ = writeln!(out, "stuck:              {}", sum(&|r| r.findings.stuck));
    let _ = writeln!(
        out,
        "also: unrecorded at the office {}, altered {}, refused {}, visits disagreeing {}, integrity failures {}, office 5xx {}, crashes {}, harness errors {}",
        sum(&|r| r.findings.unrecorded),
        sum(&|r| r.findings.altered),
        sum(&|r| r.findings.refused),
        sum(&|r| r.findings.disagreeing_visits),
        sum(&|r| r.findings.integrity_failures),
        sum(&|r| r.server_errors),
        sum(&|r| r.crashes),
        results.iter().filter(|r| r.harness_error.is_some()).count(),
    );
    let _ = writeln!(
        out,
        "\nfrom the end of the last fault (runs where it was still waiting then):"
    );
    let mut alerts: Vec<Duration> = results.iter().filter_map(|r| r.alert_latency).collect();
    let mut confirms: Vec<Duration> = results.iter().filter_map(|r| r.confirm_latency).collect();
    let _ = writeln!(out, "{}", line("alert stored at the office", &mut alerts));
    let _ = writeln!(out, "{}", line("everything confirmed", &mut confirms));
    let mut by_kind: BTreeMap<FaultKind, (Vec<Duration>, Vec<Duration>)> = BTreeMap::new();
    for result in results {
        let entry = by_kind.entry(result.last_kind).or_default();
        entry.0.extend(result.alert_latency);
        entry.1.extend(result.confirm_latency);
    }
    let _ = writeln!(out, "\nby the last fault:");
    for (kind, (mut alerts, mut confirms)) in by_kind {
        let _ = writeln!(
            out,
            "  {}",
            line(&format!("{}: alert", kind.label()), &mut alerts)
        );
        let _ = writeln!(
            out,
            "  {}",
            line(&format!("{}: all confirmed", kind.label()), &mut confirms)
        );
    }
    let _ = writeln!(
        out,
        "\ntargets: alert within {} s p99 ({}), everything confirmed within {} s p99 ({})",
        ALERT_TARGET.as_secs(),
        verdict(percentile(&alerts, 99), ALERT_TARGET),
        CONFIRM_TARGET.as_secs(),
        verdict(percentile(&confirms, 99), CONFIRM_TARGET),
    );
    if failed.is_empty() {
        let _ = writeln!(out, "every run passed every check");
    } else {
        let _ = writeln!(out, "\n{} run(s) FAILED:", failed.len());
        for result in failed {
            let _ = writeln!(out, "- {}", result.plan);
            if let Some(error) = &result.harness_error {
                let _ = writeln!(out, "    harness: {error}");
            }
            for problem in &result.findings.problems {
                let _ = writeln!(out, "    {problem}");
            }
            if result.server_errors + result.crashes > 0 {
                let _ = writeln!(
                    out,
                    "    office 5xx {}, crashes {}",
                    result.server_errors, result.crashes
                );
            }
            if let Some(kept) = &result.kept {
                let _ = writeln!(out, "    files: {}", kept.display());
            }
        }
    }
    out
}

fn verdict(p99: Option<Duration>, target: Duration) -> &'static str {
    match p99 {
        Some(p99) if p99 <= target => "met",
        Some(_) => "MISSED",
        None => "no samples",
    }
}
