//! What the customer wrote, without what they quoted: quoted history (Gmail's
//! and Apple Mail's "On ... wrote:", Outlook's "-----Original Message-----"
//! and "From: ... Sent: ..." header block, `>` lines) and signatures (`-- `,
//! "Sent from my ...") cut from a reply's text; HTML read as text first.

/// Markers after which an HTML body holds only quoted history (cut there):
/// Gmail's quote div, any blockquote (Apple Mail, Thunderbird), Outlook's
/// reply header div and separator. Lower-case, matched case-insensitively.
const HTML_QUOTE_STARTS: [&str; 5] = [
    "<div class=\"gmail_quote",
    "<blockquote",
    "<div id=\"appendonsend\"",
    "<div id=\"divrplyfwdmsg\"",
    "<hr id=\"stopspelling\"",
];

/// Block-level tags that start a new line of text.
const HTML_LINE_BREAKS: [&str; 8] = ["<div", "</div", "<p", "</p", "<li", "</tr", "<hr", "<h"];

/// An HTML body as plain text: quoted history cut, one line per block, entities decoded.
pub fn html_to_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let cut = HTML_QUOTE_STARTS
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
        .unwrap_or(html.len());
    // `to_ascii_lowercase` keeps byte offsets, so `cut` is a boundary of `html` too.
    let (html, lower) = (&html[..cut], &lower[..cut]);
    let mut marked = String::with_capacity(html.len() + 64);
    let mut last = 0;
    for (i, _) in lower.match_indices('<') {
        if HTML_LINE_BREAKS.iter().any(|t| {
            lower[i..].starts_with(t)
                && lower[i + t.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == '>' || c == ' ' || c == '/' || c.is_ascii_digit())
        }) {
            marked.push_str(&html[last..i]);
            marked.push_str("<br>");
            last = i;
        }
    }
    marked.push_str(&html[last..]);
    mail_parser::decoders::html::html_to_text(&marked)
}

/// `text` without quoted history and signature, blank lines at either end
/// trimmed and runs of blank lines folded to one.
pub fn strip_quoted(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let end = (0..lines.len())
        .find(|&i| starts_history(&lines, i))
        .unwrap_or(lines.len());
    let mut kept: Vec<&str> = Vec::new();
    for line in &lines[..end] {
        if line.trim_start().starts_with('>') {
            continue;
        }
        if kept.last().is_some_and(|l| l.trim().is_empty()) && line.trim().is_empty() {
            continue;
        }
        kept.push(line.trim_end());
    }
    kept.join("\n").trim_matches('\n').trim().to_owned()
}

/// Whether line `i` starts what is not the customer's new text.
fn starts_history(lines: &[&str], i: usize) -> bool {
    let line = lines[i].trim();
    let lower = line.to_ascii_lowercase();
    // A signature: "-- " by convention (many clients trim it to "--").
    if lines[i] == "-- " || line == "--" {
        return true;
    }
    if lower.starts_with("sent from my ") || lower.starts_with("get outlook for ") {
        return true;
    }
    if lower.starts_with("-----original message-----") || lower.starts_with("-----ursprüngliche nachricht-----") {
        return true;
    }
    // Outlook's underscore rule before its header block.
    if line.len() >= 20 && line.chars().all(|c| c == '_') && next_starts_with(lines, i + 1, "from:") {
        return true;
    }
    // Outlook's header block: "From: ..." then, within two lines, "Sent: " or "Date: ".
    if lower.starts_with("from:")
        && (1..=2).any(|d| {
            lines
                .get(i + d)
                .map(|l| l.trim().to_ascii_lowercase())
                .is_some_and(|l| l.starts_with("sent:") || l.starts_with("date:"))
        })
    {
        return true;
    }
    // Gmail, Apple Mail, Thunderbird: "On <date>, <who> wrote:", wrapped over up to three lines.
    if lower.starts_with("on ") {
        let mut joined = String::new();
        for (k, l) in lines.iter().enumerate().skip(i).take(3) {
            // A later "On ..." line is the attribution, not this one ("On it now.").
            if k > i && l.trim().to_ascii_lowercase().starts_with("on ") {
                return false;
            }
            joined.push_str(l.trim());
            joined.push(' ');
            if joined.trim_end().to_ascii_lowercase().ends_with("wrote:") {
                return true;
            }
        }
    }
    false
}

/// Whether the first non-blank line from `i` on starts with `prefix` (lower-case).
fn next_starts_with(lines: &[&str], i: usize, prefix: &str) -> bool {
    lines
        .iter()
        .skip(i)
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.to_ascii_lowercase().starts_with(prefix))
}
