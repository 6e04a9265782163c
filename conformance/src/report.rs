//! Renderings of a run: a line per case for the terminal, the closing summary CI reads, JSON,
//! JUnit XML for CI systems, a self-contained HTML page, and the catalogue table of
//! `docs/conformance.md`.
//!
//! Everything the target answered (evidence, failure messages) is untrusted text: it is
//! escaped for the format it lands in, and characters the format cannot carry (terminal
//! control sequences, characters XML 1.0 forbids) are replaced, never passed through.

use std::fmt::Write as _;

use serde::Serialize;

use crate::{CaseInfo, CaseResult, Outcome, Report};

/// One line (more for a failure or a case not run) for a finished case, for a terminal or a
/// CI log: no colours, control characters shown as escapes.
///
/// ```text
/// [ 7/42] PASS  signature.tampered-body  Tampered body is not recognised  (12 ms)
/// [ 8/42] FAIL  signature.expired-signer  Expired signer is refused  (30 ms)
///         expected a refusal, got a receipt
/// ```
pub fn console_line(done: usize, total: usize, r: &CaseResult) -> String {
    let width = total.to_string().len();
    let counter = format!("[{done:>width$}/{total}]");
    let mut out = format!(
        "{counter} {}  {}  {}  ({} ms)",
        status_word(&r.outcome),
        terminal_safe(r.info.id),
        terminal_safe(r.info.title),
        r.millis
    );
    let detail = match &r.outcome {
        Outcome::Pass { .. } => None,
        Outcome::Fail { message } => Some(message.as_str()),
        Outcome::NotRun { reason } => Some(reason.as_str()),
    };
    if let Some(text) = detail {
        let indent = " ".repeat(counter.chars().count() + 1);
        let text = text.trim_end();
        if text.is_empty() {
            let _ = write!(out, "\n{indent}(no message)");
        }
        for line in text.lines() {
            let _ = write!(out, "\n{indent}{}", terminal_safe(line));
        }
    }
    out
}

/// The closing lines of a run: the cases that failed or were not run, then, last and alone on
/// its line, `conformance: N passed, M failed` (`, K not run` appended when K > 0), which CI
/// tooling reads.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    let failed: Vec<&CaseResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Fail { .. }))
        .collect();
    let not_run: Vec<&CaseResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::NotRun { .. }))
        .collect();
    for (heading, list) in [("failed:", &failed), ("not run:", &not_run)] {
        if list.is_empty() {
            continue;
        }
        out.push_str(heading);
        out.push('\n');
        for r in list {
            let _ = writeln!(
                out,
                "  {}  {}",
                terminal_safe(r.info.id),
                terminal_safe(r.info.title)
            );
        }
    }
    let _ = writeln!(
        out,
        "target {} (state {}), tester state {}, started {}, {} cases in {} s",
        terminal_safe(&report.target),
        terminal_safe(&report.target_state),
        terminal_safe(&report.tester_state),
        terminal_safe(&report.started_at),
        report.results.len(),
        seconds(total_millis(report))
    );
    out.push_str(&totals_line(report));
    out
}

/// `conformance: N passed, M failed[, K not run]`.
fn totals_line(report: &Report) -> String {
    let mut line = format!(
        "conformance: {} passed, {} failed",
        report.passed(),
        report.failed()
    );
    let not_run = report.not_run();
    if not_run > 0 {
        let _ = write!(line, ", {not_run} not run");
    }
    line
}

/// The report as pretty JSON, with the totals next to the run's details.
pub fn json(report: &Report) -> String {
    #[derive(Serialize)]
    struct Json<'a> {
        target: &'a str,
        target_state: &'a str,
        tester_state: &'a str,
        started_at: &'a str,
        passed: usize,
        failed: usize,
        not_run: usize,
        results: &'a [CaseResult],
    }
    let doc = Json {
        target: &report.target,
        target_state: &report.target_state,
        tester_state: &report.tester_state,
        started_at: &report.started_at,
        passed: report.passed(),
        failed: report.failed(),
        not_run: report.not_run(),
        results: &report.results,
    };
    serde_json::to_string_pretty(&doc).expect("a report always serialises to JSON")
}

/// The report as JUnit XML: one `testsuite` per suite (in order of first appearance), a
/// `failure` for a failed case, `skipped` for a case not run, and the evidence with the
/// requirement in `system-out` for a passed one.
pub fn junit(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"tereze-conformance\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\">",
        report.results.len(),
        report.failed(),
        report.not_run(),
        seconds(total_millis(report))
    );
    for (suite, results) in by_suite(report) {
        let counts = Counts::of(&results);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\">",
            xml_escape(suite),
            results.len(),
            counts.failed,
            counts.not_run,
            seconds(counts.millis)
        );
        out.push_str("    <properties>\n");
        for (name, value) in [
            ("target", report.target.as_str()),
            ("target_state", report.target_state.as_str()),
            ("tester_state", report.tester_state.as_str()),
            ("started_at", report.started_at.as_str()),
        ] {
            let _ = writeln!(
                out,
                "      <property name=\"{name}\" value=\"{}\"/>",
                xml_escape(value)
            );
        }
        out.push_str("    </properties>\n");
        for r in results {
            let _ = write!(
                out,
                "    <testcase classname=\"tereze.conformance.{}\" name=\"{}: {}\" time=\"{}\">",
                xml_escape(r.info.suite),
                xml_escape(r.info.id),
                xml_escape(r.info.title),
                seconds(r.millis)
            );
            let requirement = format!("requirement: {}", r.info.requirement);
            match &r.outcome {
                Outcome::Pass { evidence } => {
                    let _ = write!(
                        out,
                        "\n      <system-out>{}</system-out>\n    ",
                        xml_text(&join_lines(evidence, &requirement))
                    );
                }
                Outcome::Fail { message } => {
                    let _ = write!(
                        out,
                        "\n      <failure message=\"{}\" type=\"conformance\">{}</failure>\n    ",
                        xml_escape(message),
                        xml_text(&join_lines(message, &requirement))
                    );
                }
                Outcome::NotRun { reason } => {
                    let _ = write!(
                        out,
                        "\n      <skipped message=\"{}\"/>\n    ",
                        xml_escape(reason)
                    );
                }
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

const CSS: &str = "
:root { --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #b3261e; --fail-bg: #ffebe9;
  --notrun: #6b5900; --notrun-bg: #fff8c5; --line: #d0d7de; --muted: #57606a; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1f2328;
  margin: 0 auto; max-width: 78rem; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .25rem; border-bottom: 1px solid var(--line); }
dl.run { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; margin: 0 0 1rem; }
dl.run dt { color: var(--muted); }
dl.run dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.verdict { font-size: 1.1rem; font-weight: 600; padding: .6rem .9rem; border-radius: 6px;
  border-left: 6px solid; margin: 1rem 0 .5rem; }
.verdict.pass { background: var(--pass-bg); border-color: var(--pass); }
.verdict.fail { background: var(--fail-bg); border-color: var(--fail); }
.counts { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0; }
.bar { display: flex; height: .6rem; border-radius: 3px; overflow: hidden; background: var(--line);
  margin: .25rem 0 1rem; }
.bar span { display: block; height: 100%; }
.bar .pass { background: var(--pass); } .bar .fail { background: var(--fail); }
.bar .notrun { background: #bf8700; }
.badge { display: inline-block; font-weight: 700; font-size: .8rem; letter-spacing: .03em;
  padding: .1rem .5rem; border-radius: 999px; border: 1px solid; white-space: nowrap; }
.badge.pass { color: var(--pass); background: var(--pass-bg); }
.badge.fail { color: #fff; background: var(--fail); border-color: var(--fail); }
.badge.notrun { color: var(--notrun); background: var(--notrun-bg); }
.badge.total { color: #1f2328; background: #f6f8fa; }
p.suite-counts { color: var(--muted); margin: .25rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .4rem .5rem; border-bottom: 1px solid var(--line); }
th { font-size: .85rem; color: var(--muted); font-weight: 600; }
td.time { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
tr.fail td { background: var(--fail-bg); }
tr.fail td:first-child { box-shadow: inset 4px 0 0 var(--fail); }
tr.notrun td { background: #fffdf0; }
pre { margin: 0; white-space: pre-wrap; word-break: break-word; font-size: .8rem;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
ul.failed a { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
footer { color: var(--muted); margin-top: 2rem; font-size: .85rem; }
@media print { body { max-width: none; padding: 0; } tr { break-inside: avoid; } }
";

/// The report as one self-contained HTML5 page: inline CSS, no scripts, nothing fetched.
/// Apart from the doctype it is also well-formed XML.
pub fn html(report: &Report) -> String {
    let total = report.results.len();
    let (passed, failed, not_run) = (report.passed(), report.failed(), report.not_run());
    let mut out = String::with_capacity(4096 + 512 * total);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    let _ = writeln!(
        out,
        "<title>Tereze conformance: {} ({})</title>",
        html_escape(&report.target),
        html_escape(&totals_line(report))
    );
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>");
    out.push_str("<header>\n<h1>Tereze conformance report</h1>\n<dl class=\"run\">\n");
    for (label, value) in [
        (
            "Target",
            format!("{} (state {})", report.target, report.target_state),
        ),
        ("Tester state", report.tester_state.clone()),
        ("Started at", report.started_at.clone()),
        (
            "Duration",
            format!("{} s for {total} cases", seconds(total_millis(report))),
        ),
    ] {
        let _ = writeln!(out, "<dt>{label}</dt><dd>{}</dd>", html_escape(&value));
    }
    out.push_str("</dl>\n</header>\n<main>\n");

    // The summary: a verdict in words, the counts as badges, and a proportional bar.
    let verdict = if failed > 0 {
        format!(
            "<div class=\"verdict fail\"><span class=\"badge fail\">FAIL</span> {failed} of {total} {} failed</div>",
            plural(total, "case", "cases")
        )
    } else if total == 0 {
        "<div class=\"verdict fail\">No case was run</div>".to_owned()
    } else {
        let caveat = if not_run > 0 {
            format!(", {not_run} not run")
        } else {
            String::new()
        };
        format!(
            "<div class=\"verdict pass\"><span class=\"badge pass\">PASS</span> No case failed ({passed} passed{caveat})</div>"
        )
    };
    let _ = writeln!(out, "<section class=\"summary\">\n{verdict}");
    let _ = writeln!(
        out,
        "<div class=\"counts\"><span class=\"badge pass\">{passed} PASSED</span> \
         <span class=\"badge fail\">{failed} FAILED</span> \
         <span class=\"badge notrun\">{not_run} NOT RUN</span> \
         <span class=\"badge total\">{total} TOTAL</span></div>"
    );
    out.push_str("<div class=\"bar\" role=\"img\" aria-label=\"");
    out.push_str(&html_escape(&totals_line(report)));
    out.push_str("\">");
    for (class, count) in [("pass", passed), ("fail", failed), ("notrun", not_run)] {
        if count > 0 && total > 0 {
            let _ = write!(
                out,
                "<span class=\"{class}\" style=\"width: {:.3}%\"></span>",
                count as f64 * 100.0 / total as f64
            );
        }
    }
    out.push_str("</div>\n");
    if failed > 0 {
        out.push_str("<p>Failed cases:</p>\n<ul class=\"failed\">\n");
        for r in report
            .results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Fail { .. }))
        {
            let _ = writeln!(
                out,
                "<li><a href=\"#{}\">{}</a> {}</li>",
                html_escape(&case_anchor(r.info.id)),
                html_escape(r.info.id),
                html_escape(r.info.title)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");

    for (suite, results) in by_suite(report) {
        let counts = Counts::of(&results);
        let _ = writeln!(
            out,
            "<section class=\"suite\">\n<h2 id=\"{}\">{}</h2>",
            html_escape(&format!("suite-{suite}")),
            html_escape(suite)
        );
        let mut line = format!(
            "{} {}: {} passed, {} failed",
            results.len(),
            plural(results.len(), "case", "cases"),
            counts.passed,
            counts.failed
        );
        if counts.not_run > 0 {
            let _ = write!(line, ", {} not run", counts.not_run);
        }
        let _ = write!(line, "; {} s", seconds(counts.millis));
        let _ = writeln!(out, "<p class=\"suite-counts\">{}</p>", html_escape(&line));
        out.push_str(
            "<table>\n<thead><tr><th>Status</th><th>Id</th><th>Title</th><th>Requirement</th>\
             <th>Time</th><th>Evidence or message</th></tr></thead>\n<tbody>\n",
        );
        for r in results {
            let (class, badge, text) = match &r.outcome {
                Outcome::Pass { evidence } => ("pass", "PASS", evidence),
                Outcome::Fail { message } => ("fail", "FAIL", message),
                Outcome::NotRun { reason } => ("notrun", "NOT RUN", reason),
            };
            let _ = writeln!(
                out,
                "<tr class=\"{class}\" id=\"{}\"><td><span class=\"badge {class}\">{badge}</span></td>\
                 <td class=\"id\">{}</td><td>{}</td><td>{}</td><td class=\"time\">{} ms</td>\
                 <td><pre>{}</pre></td></tr>",
                html_escape(&case_anchor(r.info.id)),
                html_escape(r.info.id),
                html_escape(r.info.title),
                requirement_link(r.info.requirement),
                r.millis,
                html_escape(text.trim_end())
            );
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }
    let _ = writeln!(
        out,
        "</main>\n<footer>{}</footer>\n</body>\n</html>",
        html_escape(&totals_line(report))
    );
    out
}

/// The catalogue section of `docs/conformance.md`: a count, then per suite a table of its
/// cases with links to the requirements (relative to `docs/`).
pub fn catalogue_markdown(cases: &[CaseInfo]) -> String {
    let mut suites: Vec<(&str, Vec<&CaseInfo>)> = Vec::new();
    for case in cases {
        match suites.iter_mut().find(|(s, _)| *s == case.suite) {
            Some((_, list)) => list.push(case),
            None => suites.push((case.suite, vec![case])),
        }
    }
    let mut out = String::from("## Catalogue\n\n");
    let _ = writeln!(
        out,
        "The suite has {} {} in {} {}.",
        cases.len(),
        plural(cases.len(), "case", "cases"),
        suites.len(),
        plural(suites.len(), "suite", "suites")
    );
    for (suite, list) in suites {
        let _ = writeln!(out, "\n### {}\n", md_cell(suite));
        out.push_str("| id | what it checks | requirement |\n|---|---|---|\n");
        for case in list {
            let target = docs_relative(case.requirement);
            let _ = writeln!(
                out,
                "| `{}` | {} | [{}]({}) |",
                md_cell(case.id).replace('`', "'"),
                md_cell(case.title),
                md_link_text(&target),
                md_link_destination(&target)
            );
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn status_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Pass { .. } => "PASS",
        Outcome::Fail { .. } => "FAIL",
        Outcome::NotRun { .. } => "NOT RUN",
    }
}

/// Results grouped by suite, suites in order of first appearance, cases in run order.
fn by_suite(report: &Report) -> Vec<(&'static str, Vec<&CaseResult>)> {
    let mut suites: Vec<(&'static str, Vec<&CaseResult>)> = Vec::new();
    for r in &report.results {
        match suites.iter_mut().find(|(s, _)| *s == r.info.suite) {
            Some((_, list)) => list.push(r),
            None => suites.push((r.info.suite, vec![r])),
        }
    }
    suites
}

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    not_run: usize,
    millis: u128,
}

impl Counts {
    fn of(results: &[&CaseResult]) -> Self {
        let mut c = Counts::default();
        for r in results {
            match r.outcome {
                Outcome::Pass { .. } => c.passed += 1,
                Outcome::Fail { .. } => c.failed += 1,
                Outcome::NotRun { .. } => c.not_run += 1,
            }
            c.millis += r.millis;
        }
        c
    }
}

fn total_millis(report: &Report) -> u128 {
    report.results.iter().map(|r| r.millis).sum()
}

/// Milliseconds as seconds with three decimals, exactly (no floating point).
fn seconds(millis: u128) -> String {
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `text`, then `extra` on a line of its own.
fn join_lines(text: &str, extra: &str) -> String {
    let text = text.trim_end();
    if text.is_empty() {
        extra.to_owned()
    } else {
        format!("{text}\n{extra}")
    }
}

/// Text safe to print to a terminal: control characters (escape sequences included) are shown
/// as `\u{..}` escapes instead of being interpreted. Tabs stay.
fn terminal_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\t' {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether XML 1.0 allows the character at all (the `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Escapes for XML attribute values (double-quoted): tab, line feed and carriage return become
/// character references, so attribute-value normalisation keeps them. See [`xml_text`].
fn xml_escape(s: &str) -> String {
    xml_escape_with(s, true)
}

/// Escapes for XML character data: line feeds and tabs stay as they are.
fn xml_text(s: &str) -> String {
    xml_escape_with(s, false)
}

/// `&`, `<`, `>`, `"` and `'` become references, a carriage return becomes `&#13;` (a parser
/// would otherwise fold it into a line feed), and characters XML 1.0 forbids (most C0
/// controls, U+FFFE, U+FFFF) become U+FFFD.
fn xml_escape_with(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// Escapes for HTML text and quoted attribute values. Control characters other than tab, line
/// feed and carriage return (which HTML forbids, as XML does) become U+FFFD; a CR LF pair is
/// kept as a line feed.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => out.push('\n'),
            '\t' | '\n' => out.push(c),
            c if c.is_control() || !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The HTML `id` of a case's row.
fn case_anchor(id: &str) -> String {
    let cleaned: String = id
        .chars()
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .collect();
    format!("case-{cleaned}")
}

/// A requirement as a link with its relative `href` as given; only relative references and
/// http(s) URLs become links, anything else (`javascript:` and the like) stays text.
fn requirement_link(requirement: &str) -> String {
    let scheme_end = requirement.find(':');
    let path_start = requirement.find(['/', '#', '?']);
    let has_scheme = match (scheme_end, path_start) {
        (Some(c), Some(p)) => c < p,
        (Some(_), None) => true,
        _ => false,
    };
    let lower = requirement.to_ascii_lowercase();
    let linkable = !requirement.is_empty()
        && (!has_scheme || lower.starts_with("http://") || lower.starts_with("https://"));
    let text = html_escape(requirement);
    if linkable {
        format!("<a href=\"{text}\">{text}</a>")
    } else {
        text
    }
}

/// A requirement link (relative to the repository) as seen from a page in `docs/`.
fn docs_relative(requirement: &str) -> String {
    let r = requirement.trim();
    if r.contains("://") || r.starts_with('#') || r.starts_with('/') {
        return r.to_owned();
    }
    let r = r.strip_prefix("./").unwrap_or(r);
    match r.strip_prefix("docs/") {
        Some(rest) => rest.to_owned(),
        None => format!("../{r}"),
    }
}

/// Text safe in a markdown table cell: pipes escaped, line breaks folded.
fn md_cell(s: &str) -> String {
    s.replace(['\r', '\n'], " ").replace('|', "\\|")
}

fn md_link_text(s: &str) -> String {
    md_cell(s).replace('[', "\\[").replace(']', "\\]")
}

fn md_link_destination(s: &str) -> String {
    md_cell(s)
        .replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tereze_codecs::xml::{self, Document, NodeId};

    const NASTY: &str = "expected <Refusal> & \"code\" 'X'\u{1} got\na receipt";

    fn sample() -> Report {
        Report {
            target: "node.at.example:7443".into(),
            target_state: "AT".into(),
            tester_state: "DE".into(),
            started_at: "2025-01-02T03:04:05Z".into(),
            results: vec![
                CaseResult {
                    info: CaseInfo {
                        id: "signature.tampered-body",
                        suite: "signature",
                        title: "Tampered body is not recognised",
                        requirement: "docs/recognition.md#tampered-documents",
                    },
                    outcome: Outcome::pass("refused with SIGNATURE_INVALID"),
                    millis: 12,
                },
                CaseResult {
                    info: CaseInfo {
                        id: "signature.expired-signer",
                        suite: "signature",
                        title: "Expired signer | refused",
                        requirement: "docs/recognition.md#validity",
                    },
                    outcome: Outcome::fail(NASTY),
                    millis: 1234,
                },
                CaseResult {
                    info: CaseInfo {
                        id: "protocol.backdated",
                        suite: "protocol",
                        title: "Backdated signer is refused",
                        requirement: "docs/protocol.md",
                    },
                    outcome: Outcome::NotRun {
                        reason: "no issuer given (--issuer)".into(),
                    },
                    millis: 0,
                },
            ],
        }
    }

    fn elements(doc: &Document, parent: NodeId, local: &str) -> Vec<NodeId> {
        doc.child_elements(parent)
            .filter(|&n| doc.element(n).is_some_and(|e| e.name.local == local))
            .collect()
    }

    fn attr<'a>(doc: &'a Document, n: NodeId, name: &str) -> &'a str {
        doc.element(n).and_then(|e| e.attribute(name)).unwrap()
    }

    #[test]
    fn summary_line_is_exact() {
        let report = sample();
        let s = summary(&report);
        assert_eq!(
            s.lines().last(),
            Some("conformance: 1 passed, 1 failed, 1 not run")
        );
        assert!(s.contains("signature.expired-signer"));

        let mut all_pass = sample();
        all_pass.results.retain(|r| r.outcome.is_pass());
        let s = summary(&all_pass);
        assert_eq!(s.lines().last(), Some("conformance: 1 passed, 0 failed"));
        assert!(s.lines().any(|l| l == "conformance: 1 passed, 0 failed"));
    }

    #[test]
    fn console_lines() {
        let report = sample();
        assert_eq!(
            console_line(7, 42, &report.results[0]),
            "[ 7/42] PASS  signature.tampered-body  Tampered body is not recognised  (12 ms)"
        );
        let fail = console_line(8, 42, &report.results[1]);
        let lines: Vec<&str> = fail.lines().collect();
        assert!(lines[0].starts_with("[ 8/42] FAIL  signature.expired-signer"));
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            "        expected <Refusal> & \"code\" 'X'\\u{1} got"
        );
        assert_eq!(lines[2], "        a receipt");
        assert!(!fail.contains('\u{1}'));
        let not_run = console_line(9, 42, &report.results[2]);
        assert!(not_run.starts_with("[ 9/42] NOT RUN  protocol.backdated"));
        assert!(not_run.ends_with("\n        no issuer given (--issuer)"));
    }

    #[test]
    fn json_has_results_and_totals() {
        let v: serde_json::Value = serde_json::from_str(&json(&sample())).unwrap();
        assert_eq!(v["passed"], 1);
        assert_eq!(v["failed"], 1);
        assert_eq!(v["not_run"], 1);
        assert_eq!(v["target_state"], "AT");
        assert_eq!(v["results"][1]["result"], "fail");
        assert_eq!(v["results"][1]["message"], NASTY);
        assert_eq!(v["results"][2]["result"], "not-run");
        assert_eq!(v["results"][0]["id"], "signature.tampered-body");
    }

    #[test]
    fn junit_is_well_formed_with_right_counts() {
        let text = junit(&sample());
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        assert!(!text.contains('\u{1}'));
        let doc = xml::parse(text.as_bytes()).expect("JUnit output parses");
        let root = doc.root();
        assert_eq!(doc.element(root).unwrap().name.local, "testsuites");
        assert_eq!(attr(&doc, root, "name"), "tereze-conformance");
        assert_eq!(attr(&doc, root, "tests"), "3");
        assert_eq!(attr(&doc, root, "failures"), "1");
        assert_eq!(attr(&doc, root, "skipped"), "1");
        assert_eq!(attr(&doc, root, "time"), "1.246");

        let suites = elements(&doc, root, "testsuite");
        assert_eq!(suites.len(), 2);
        let (sig, proto) = (suites[0], suites[1]);
        assert_eq!(attr(&doc, sig, "name"), "signature");
        assert_eq!(attr(&doc, sig, "tests"), "2");
        assert_eq!(attr(&doc, sig, "failures"), "1");
        assert_eq!(attr(&doc, sig, "skipped"), "0");
        assert_eq!(attr(&doc, sig, "time"), "1.246");
        assert_eq!(attr(&doc, proto, "name"), "protocol");
        assert_eq!(attr(&doc, proto, "tests"), "1");
        assert_eq!(attr(&doc, proto, "failures"), "0");
        assert_eq!(attr(&doc, proto, "skipped"), "1");

        let cases = elements(&doc, sig, "testcase");
        assert_eq!(cases.len(), 2);
        assert_eq!(
            attr(&doc, cases[0], "classname"),
            "tereze.conformance.signature"
        );
        assert_eq!(
            attr(&doc, cases[0], "name"),
            "signature.tampered-body: Tampered body is not recognised"
        );
        assert_eq!(attr(&doc, cases[0], "time"), "0.012");
        let out = elements(&doc, cases[0], "system-out");
        assert_eq!(
            doc.text_content(out[0]),
            "refused with SIGNATURE_INVALID\nrequirement: docs/recognition.md#tampered-documents"
        );

        let failure = elements(&doc, cases[1], "failure");
        assert_eq!(failure.len(), 1);
        let expected = NASTY.replace('\u{1}', "\u{FFFD}");
        assert_eq!(attr(&doc, failure[0], "message"), expected);
        assert!(doc.text_content(failure[0]).starts_with(&expected));

        let skipped = elements(&doc, elements(&doc, proto, "testcase")[0], "skipped");
        assert_eq!(
            attr(&doc, skipped[0], "message"),
            "no issuer given (--issuer)"
        );
    }

    #[test]
    fn html_escapes_and_is_well_formed() {
        let page = html(&sample());
        assert!(page.starts_with("<!DOCTYPE html>"));
        for r in &sample().results {
            assert!(page.contains(r.info.id), "{} missing", r.info.id);
        }
        assert!(page.contains("expected &lt;Refusal&gt; &amp; &quot;code&quot; &#39;X&#39;"));
        assert!(!page.contains("<Refusal>"));
        assert!(!page.contains('\u{1}'));
        assert!(page.contains("<span class=\"badge fail\">FAIL</span>"));
        assert!(page.contains("<a href=\"docs/protocol.md\">docs/protocol.md</a>"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("src="));
        // Without the doctype, the page is well-formed XML.
        let body = page.strip_prefix("<!DOCTYPE html>\n").unwrap();
        let doc = xml::parse(body.as_bytes()).expect("HTML is well-formed");
        assert_eq!(doc.element(doc.root()).unwrap().name.local, "html");
    }

    #[test]
    fn requirement_links_refuse_other_schemes() {
        assert_eq!(
            requirement_link("javascript:alert(1)"),
            "javascript:alert(1)"
        );
        assert!(requirement_link("https://example.org/x").starts_with("<a href="));
        assert!(requirement_link("docs/a.md#b:c").starts_with("<a href="));
    }

    #[test]
    fn catalogue_has_a_row_per_case() {
        let infos: Vec<CaseInfo> = sample().results.into_iter().map(|r| r.info).collect();
        let md = catalogue_markdown(&infos);
        assert!(md.starts_with("## Catalogue\n\nThe suite has 3 cases in 2 suites.\n"));
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| `")).collect();
        assert_eq!(rows.len(), infos.len());
        assert!(md.contains("### signature\n"));
        assert!(md.contains("### protocol\n"));
        assert!(md.contains(
            "| `signature.tampered-body` | Tampered body is not recognised | \
             [recognition.md#tampered-documents](recognition.md#tampered-documents) |"
        ));
        assert!(md.contains("| Expired signer \\| refused |"));
        assert!(md.contains("[protocol.md](protocol.md)"));
        assert!(!md.contains("docs/"));
        assert_eq!(docs_relative("node/proto/x.proto"), "../node/proto/x.proto");
    }
}
