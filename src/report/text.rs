//! The report's text: the scenario's story, step by step.

use std::fmt::Write;

use super::{Report, ReportProbe, TruthTable};
use crate::run::{fmt_duration, PullResult};

/// Lists of at most this many entries are shown in full.
const SHOW_ENTRIES: usize = 10;

pub(super) fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario {}", r.scenario);
    if let Some(d) = &r.description {
        for line in wrap(d.trim(), 86) {
            let _ = writeln!(out, "  {line}");
        }
    }
    for st in &r.steps {
        let _ = writeln!(out);
        let _ = writeln!(out, "step {} (line {}): {}", st.number, st.line, st.title);
        for p in &st.pulls {
            let _ = writeln!(
                out,
                "  feed {} pulled {} at {}: {}",
                p.feed,
                p.url,
                fmt_duration(p.at),
                match &p.result {
                    PullResult::Ok {
                        entries,
                        added,
                        removed,
                        ..
                    } => format!("{} (+{added} -{removed})", entries_n(*entries)),
                    PullResult::Failed { message, kept } => format!(
                        "FAILED: {message}; {}",
                        match kept {
                            Some(n) => format!("keeping the last good list ({})", entries_n(*n)),
                            None => "no list yet".to_string(),
                        }
                    ),
                }
            );
            if let PullResult::Ok { problems, .. } = &p.result {
                for pr in problems {
                    let _ = writeln!(out, "    {pr}");
                }
            }
        }
        if let Some(t) = &st.matrix {
            matrix(&mut out, t, &st.probes);
        } else {
            for p in &st.probes {
                probe(&mut out, p);
            }
        }
    }
    let _ = writeln!(out);
    if !r.feeds.is_empty() {
        let _ = writeln!(out, "threat feeds at the end of the run:");
        for f in &r.feeds {
            if !f.enabled {
                let _ = writeln!(out, "  {}: disabled", f.name);
                continue;
            }
            let set = match &f.network_set {
                Some(s) => format!(" in GlobalNetworkSet {s}"),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "  {}: {}{set}; {}; next pull at {}",
                f.name,
                entries_n(f.nets.len()),
                f.last_successful_sync
                    .map(|t| format!("last successful sync at {}", fmt_duration(t)))
                    .unwrap_or_else(|| "never synced successfully".into()),
                f.next_pull
                    .map(fmt_duration)
                    .unwrap_or_else(|| "never".into())
            );
            if let Some(e) = &f.error {
                let _ = writeln!(out, "    error: {e}");
            }
            if f.nets.len() <= SHOW_ENTRIES {
                for n in &f.nets {
                    let _ = writeln!(out, "    {n}");
                }
            }
        }
    }
    if !r.alerts.is_empty() {
        let _ = writeln!(out, "threat-feed alerts:");
        for a in &r.alerts {
            let _ = writeln!(
                out,
                "  step {}: {} -> {} ({} -> {}), {}: on feed {}",
                a.step, a.source, a.target, a.src_ip, a.dst_ip, a.outcome, a.feed
            );
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(out, "notes:");
        for n in &r.notes {
            let _ = writeln!(out, "  {n}");
        }
    }
    if !r.log_lines.is_empty() {
        let _ = writeln!(out, "Log rule lines:");
        for l in &r.log_lines {
            let _ = writeln!(out, "  step {} {}: {}", l.step, l.probe, l.line);
        }
    }
    if !r.flow_logs.is_empty() {
        let _ = writeln!(
            out,
            "flow logs (reporter, source -> destination, action, policies):"
        );
        for f in &r.flow_logs {
            let rec = &f.record;
            // No source port: the kernel's is the probe's real one (decision
            // `kernel-flow-logs`), and the text must not depend on it.
            let ports = match rec.dst_port {
                Some(d) => format!("{} -> {}:{d}", rec.src_ip, rec.dst_ip),
                None => format!("{} -> {}", rec.src_ip, rec.dst_ip),
            };
            let svc = rec
                .destination_service
                .as_ref()
                .map(|s| format!(" via service {s}"))
                .unwrap_or_default();
            // Decision `staged-preview`: the pending trace, where it differs.
            let pending = if rec.pending_policies == rec.policies {
                String::new()
            } else {
                format!(", pending [{}]", rec.pending_policies.join(", "))
            };
            let _ = writeln!(
                out,
                "  step {} {}: {} -> {}{svc}, {ports} {}, {}, [{}]{pending}",
                f.step,
                match rec.reporter {
                    crate::run::Reporter::Src => "src",
                    crate::run::Reporter::Dst => "dst",
                },
                rec.source,
                rec.destination,
                rec.proto,
                rec.action,
                rec.policies.join(", ")
            );
        }
    }
    let s = &r.summary;
    let verdict = if s.failed_checks == 0 {
        "every expectation held".to_string()
    } else {
        format!(
            "{} of {} expectations FAILED in {} probes",
            s.failed_checks, s.checks, s.failed_probes
        )
    };
    let _ = write!(
        out,
        "summary: {} probes, {} expectations: {verdict}",
        s.probes, s.checks
    );
    if s.not_run > 0 {
        let _ = write!(out, "; {} probes not run", s.not_run);
    }
    if s.disagreements > 0 {
        let _ = write!(
            out,
            "; {} disagreements with the reference model (a bug in policylab)",
            s.disagreements
        );
    }
    let _ = writeln!(out);
    out
}

fn entries_n(n: usize) -> String {
    if n == 1 {
        "1 entry".into()
    } else {
        format!("{n} entries")
    }
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut cur = String::new();
        for w in para.split_whitespace() {
            if !cur.is_empty() && cur.len() + 1 + w.len() > width {
                lines.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(w);
        }
        if !cur.is_empty() {
            lines.push(cur);
        }
    }
    lines
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "ok      "
    } else {
        "MISMATCH"
    }
}

fn probe(out: &mut String, p: &ReportProbe) {
    let o = &p.observed;
    if let Some(why) = &o.not_run {
        let _ = writeln!(
            out,
            "  {} ({}) -> {} ({}): not run: {why}",
            p.source, p.src_ip, p.target, p.dst_ip
        );
        return;
    }
    let _ = writeln!(
        out,
        "  {} ({}) -> {} ({}): {}",
        p.source, p.src_ip, p.target, p.dst_ip, o.outcome
    );
    let _ = writeln!(out, "    decided by {}", p.decided_by);
    if p.allowed_by.len() > 1 {
        let _ = writeln!(
            out,
            "    allowed along the path by {}",
            p.allowed_by.join("; then ")
        );
    }
    if let Some(n) = &p.note {
        let _ = writeln!(out, "    note: {n}");
    }
    if let Some(s) = &p.staged {
        let _ = writeln!(out, "    staged: {s}");
    }
    if let (Some(ip), false) = (
        o.client_ip_seen,
        p.checks.iter().any(|c| c.what == "clientIP"),
    ) {
        if ip != p.src_ip {
            let _ = writeln!(out, "    the server sees the client as {ip}");
        }
    }
    for c in &p.checks {
        let detail = if c.ok {
            match c.what {
                "by" => format!("by {} ({})", c.expected, c.observed),
                "expect" => format!("expect {}", c.expected),
                w => format!("{w} {}", c.expected),
            }
        } else {
            format!("{} {}: observed {}", c.what, c.expected, c.observed)
        };
        let _ = writeln!(out, "    {} {detail}", mark(c.ok));
    }
    let unexpected: Vec<&String> = p
        .alerts
        .iter()
        .filter(|a| {
            !p.checks
                .iter()
                .any(|c| c.what == "alert" && c.expected == **a)
        })
        .collect();
    for a in unexpected {
        let _ = writeln!(out, "    alert: on threat feed {a}");
    }
    for l in &o.log_lines {
        let _ = writeln!(out, "    logged: {l}");
    }
    for d in &p.disagreements {
        let _ = writeln!(out, "    DISAGREEMENT {d}");
    }
}

fn matrix(out: &mut String, t: &TruthTable, probes: &[ReportProbe]) {
    let _ = writeln!(out, "  targets:");
    for (i, tg) in t.targets.iter().enumerate() {
        let _ = writeln!(out, "    {} {tg}", i + 1);
    }
    let w = t.sources.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut header = format!("  {:w$} ", "");
    for i in 0..t.targets.len() {
        let _ = write!(header, " {:<3}", i + 1);
    }
    let _ = writeln!(out, "{}", header.trim_end());
    let mut bad = Vec::new();
    for (r, src) in t.sources.iter().enumerate() {
        let mut line = format!("  {src:w$} ");
        for c in 0..t.targets.len() {
            let got = t.rows[r][c];
            let want = t.expected.as_ref().map(|e| e[r][c]).filter(|x| *x != '?');
            let wrong = got != super::NOT_RUN_CELL && want.is_some_and(|x| x != got);
            if wrong {
                bad.push((r, c, want.unwrap_or('?'), got));
            }
            let _ = write!(line, " {got}{:<2}", if wrong { "!" } else { "" });
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    match (&t.expected, bad.is_empty()) {
        (None, _) => {
            let _ = writeln!(out, "  (no expected table: recorded only)");
        }
        (Some(_), true) => {
            let _ = writeln!(out, "  ok       every cell as expected");
        }
        (Some(_), false) => {
            let _ = writeln!(out, "  MISMATCH {} cells differ (marked !):", bad.len());
            for (r, c, want, got) in &bad {
                let _ = writeln!(
                    out,
                    "    {} -> {}: expected {want}, observed {got}",
                    t.sources[*r], t.targets[*c]
                );
            }
        }
    }
    let _ = writeln!(out, "  cells:");
    for p in probes {
        if let Some(why) = &p.observed.not_run {
            let _ = writeln!(out, "    {} -> {}: not run: {why}", p.source, p.target);
            continue;
        }
        let _ = writeln!(
            out,
            "    {} -> {}: {}, decided by {}{}",
            p.source,
            p.target,
            p.observed.outcome,
            p.decided_by,
            p.note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
        for d in &p.disagreements {
            let _ = writeln!(out, "      DISAGREEMENT {d}");
        }
    }
}
