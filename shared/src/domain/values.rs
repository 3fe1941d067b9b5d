//! Values parsed at the edge: once built, they are valid.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An email address, trimmed and lower-cased so uniqueness is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        let s = raw.trim().to_ascii_lowercase();
        let bad = |why: &str| Error::invalid(field, format!("must be an email address ({why})"));
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.len() > 254 {
            return Err(bad("longer than 254 characters"));
        }
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_format(c) || c == '<' || c == '>' || c == ',')
        {
            return Err(bad("contains a space or forbidden character"));
        }
        let (local, domain) = s.split_once('@').ok_or_else(|| bad("missing @"))?;
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(bad("bad local part"));
        }
        // RFC 5321 dot-atom: a dot only between other characters.
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(bad("misplaced dot in the local part"));
        }
        // Atoms only: no RFC 5322 special (quoted local parts are not taken),
        // so an address can never break out of a mail header it lands in.
        if local.chars().any(is_special) {
            return Err(bad("the local part holds a character such as ; : \" ( ) [ ] \\"));
        }
        if !is_hostname(domain) {
            return Err(bad("bad domain"));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For values read back from our own storage, which only ever holds parsed emails.
    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An org's internet domain, e.g. `growfin.ai`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Domain(String);

impl Domain {
    pub fn parse(field: &str, raw: &str) -> Result<Self, Error> {
        let s = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if !is_hostname(&s) {
            return Err(Error::invalid(field, "must be a domain name such as example.com"));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_trusted(s: String) -> Self {
        Self(s)
    }
}

/// A DNS name with at least two labels whose last label could be a top-level
/// domain: two or more characters, not all digits. That last rule keeps out IP
/// addresses (`127.0.0.1`) and names like `x.123` or `x.a`, which no public
/// TLD looks like (IDN TLDs are `xn--...`, so digits and hyphens stay allowed).
fn is_hostname(s: &str) -> bool {
    let labels_ok = s.len() <= 253
        && s.contains('.')
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    let tld = s.rsplit('.').next().unwrap_or("");
    labels_ok && tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit())
}

/// Unicode bidi embeddings, overrides and isolates (U+202A..U+202E,
/// U+2066..U+2069): they reorder how the text around them is displayed, the
/// "Trojan Source" trick, so a name or title could show one thing and be another.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Invisible format characters (Unicode category Cf, the ones that occur in
/// practice): bidi marks and controls, zero-width spaces and joiners, the
/// soft hyphen, the byte-order mark, interlinear annotation and tag characters.
/// None belongs in an email address, where they make look-alikes.
/// RFC 5322 `specials` but the dot (and `<`, `>`, `,`, `@`, refused before).
fn is_special(c: char) -> bool {
    matches!(c, '(' | ')' | '[' | ']' | ':' | ';' | '"' | '\\')
}

fn is_format(c: char) -> bool {
    is_bidi_control(c)
        || matches!(
            c,
            '\u{AD}'
                | '\u{600}'..='\u{605}'
                | '\u{61C}'
                | '\u{6DD}'
                | '\u{70F}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202F}'
                | '\u{2060}'..='\u{2064}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0001}'
                | '\u{E0020}'..='\u{E007F}'
        )
}

/// Breaks a line where it lands (a log line, a mail header): every control
/// character (C0, DEL, C1: CR and LF among them) and the Unicode line and
/// paragraph separators.
fn breaks_a_line(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Required multi-line free text (a description, a message): trimmed,
/// non-empty, at most `max` characters; newlines and tabs are kept, a CRLF line
/// end becomes LF, and any other control character is refused.
pub fn text(field: &str, raw: &str, max: usize) -> Result<String, Error> {
    let s = raw.trim().replace("\r\n", "\n");
    bounded(field, &s, max)?;
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid(
            field,
            "must not contain control characters other than newlines and tabs",
        ));
    }
    Ok(s)
}

/// Required single-line text (a title, a name): trimmed, non-empty, at most
/// `max` characters, and free of anything that breaks a line or reorders the
/// display (control characters, CR and LF included; line separators; bidi
/// overrides). These values go into mail subjects and logs, one line each.
pub fn line(field: &str, raw: &str, max: usize) -> Result<String, Error> {
    let s = raw.trim();
    bounded(field, s, max)?;
    if s.chars().any(|c| breaks_a_line(c) || is_bidi_control(c)) {
        return Err(Error::invalid(
            field,
            "must be one line without control characters or bidi overrides",
        ));
    }
    Ok(s.to_owned())
}

fn bounded(field: &str, s: &str, max: usize) -> Result<(), Error> {
    if s.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(())
}

/// `s` made safe for one mail header line, whatever it holds: each run of
/// line-breaking characters or bidi controls becomes one space. Titles are
/// checked by [`line`] on the way in; this also covers values stored before
/// that check existed.
pub fn header_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_break = false;
    for c in s.chars() {
        if breaks_a_line(c) || is_bidi_control(c) {
            if !in_break {
                out.push(' ');
            }
            in_break = true;
        } else {
            out.push(c);
            in_break = false;
        }
    }
    out
}

pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 10_000;
pub const MAX_MESSAGE: usize = 10_000;
pub const MAX_NAME: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("email", "  Ana@Growfin.AI ").unwrap().as_str(),
            "ana@growfin.ai"
        );
    }

    #[test]
    fn bad_emails_name_the_field() {
        for bad in [
            "",
            "ana",
            "@x.io",
            "ana@",
            "ana@x",
            "a b@x.io",
            "a@b@x.io",
            "ana@-x.io",
            "<a@x.io>",
        ] {
            match Email::parse("addedBy", bad) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, "addedBy"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn email_local_part_dots_and_invisible_characters_are_refused() {
        for bad in [
            ".a@x.example",
            "a.@x.example",
            "a..b@x.example",
            "a\u{202E}b@x.example",
            "a\u{2066}b@x.example",
            "a\u{200B}b@x.example",
            "a\u{FEFF}b@x.example",
            "a\u{AD}b@x.example",
            "a\u{85}b@x.example",
            "a\u{E0041}b@x.example",
            "a@x.example\u{200F}",
            "a@127.0.0.1",
            "a;b@x.example",
            "a:b@x.example",
            "a(b)@x.example",
            "a[b]@x.example",
            "\"a;b\"@x.example",
            "a\\b@x.example",
            "to:victim@x.example",
            "a;victim@y.example@x.example",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?} was accepted");
        }
        for good in [
            "a.b@x.example",
            "a+tag@x.example",
            "jos\u{E9}@x.example",
            "a_b-c@sub.x.example",
            "o'brien@x.example",
            "a!#$%&*/=?^`{|}~@x.example",
        ] {
            assert!(Email::parse("email", good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn domain_is_normalised_and_checked() {
        assert_eq!(Domain::parse("domain", "Growfin.AI.").unwrap().as_str(), "growfin.ai");
        assert!(Domain::parse("domain", "growfin").is_err());
        assert!(Domain::parse("domain", "gro fin.ai").is_err());
    }

    #[test]
    fn domain_needs_a_plausible_top_level_label() {
        for bad in ["127.0.0.1", "10.0.0.256", "x.123", "x.a", "x.1", "[::1]", "::1"] {
            assert!(Domain::parse("domain", bad).is_err(), "{bad:?} was accepted");
        }
        for good in [
            "x.io",
            "a1.example2.com",
            "xn--80ak6aa92e.xn--p1ai",
            "123.example",
            "x.co",
        ] {
            assert!(Domain::parse("domain", good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn text_is_trimmed_bounded_and_free_of_controls() {
        assert_eq!(text("title", "  hi ", 10).unwrap(), "hi");
        assert!(text("title", "   ", 10).is_err());
        assert!(text("title", "12345678901", 10).is_err());
        assert!(text("title", "a\u{0}b", 10).is_err());
        assert_eq!(text("title", "é".repeat(10).as_str(), 10).unwrap().chars().count(), 10);
    }

    #[test]
    fn multi_line_text_keeps_newlines_and_tabs_only() {
        assert_eq!(text("description", "a\n\tb", 10).unwrap(), "a\n\tb");
        assert_eq!(text("description", "a\r\nb", 10).unwrap(), "a\nb", "CRLF becomes LF");
        for bad in ["a\rb", "a\u{1B}[31mb", "a\u{7F}b", "a\u{85}b", "a\u{9B}b", "a\u{8}b"] {
            match text("description", bad, 20) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, "description"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn single_line_text_refuses_line_breaks_controls_and_bidi_overrides() {
        assert_eq!(
            line("title", "  Invoice wrong \u{1F600} ", 20).unwrap(),
            "Invoice wrong \u{1F600}"
        );
        assert_eq!(
            line("lastName", "\u{5D3}\u{5D5}\u{200F}", 20).unwrap(),
            "\u{5D3}\u{5D5}\u{200F}",
            "RLM mark is fine"
        );
        for bad in [
            "a\r\nBcc: x@evil.example",
            "a\nb",
            "a\rb",
            "a\tb",
            "a\u{0}b",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{202E}txt.exe",
            "a\u{2066}b",
        ] {
            match line("title", bad, 50) {
                Err(Error::Invalid { field, .. }) => assert_eq!(field, "title"),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        assert!(line("title", "", 5).is_err());
        assert!(line("title", "123456", 5).is_err());
    }

    #[test]
    fn header_line_never_holds_a_line_break() {
        assert_eq!(header_line("Re: a\r\nBcc: x@evil.example"), "Re: a Bcc: x@evil.example");
        assert_eq!(header_line("a\u{2028}\u{202E}b\tc"), "a b c");
        assert_eq!(header_line("plain title"), "plain title");
        let folded = header_line("x\r\n\u{85}\u{0}y");
        assert!(!folded.contains(['\r', '\n']), "{folded:?}");
    }
}
