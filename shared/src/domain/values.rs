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
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
        {
            return Err(bad("contains a space or forbidden character"));
        }
        let (local, domain) = s.split_once('@').ok_or_else(|| bad("missing @"))?;
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(bad("bad local part"));
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

fn is_hostname(s: &str) -> bool {
    s.len() <= 253
        && s.contains('.')
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Required free text: trimmed, non-empty, at most `max` characters, no control
/// characters other than newlines and tabs.
pub fn text(field: &str, raw: &str, max: usize) -> Result<String, Error> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(Error::invalid(field, format!("must be at most {max} characters")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(s.to_owned())
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
    fn domain_is_normalised_and_checked() {
        assert_eq!(Domain::parse("domain", "Growfin.AI.").unwrap().as_str(), "growfin.ai");
        assert!(Domain::parse("domain", "growfin").is_err());
        assert!(Domain::parse("domain", "gro fin.ai").is_err());
    }

    #[test]
    fn text_is_trimmed_bounded_and_free_of_controls() {
        assert_eq!(text("title", "  hi ", 10).unwrap(), "hi");
        assert!(text("title", "   ", 10).is_err());
        assert!(text("title", "12345678901", 10).is_err());
        assert!(text("title", "a\u{0}b", 10).is_err());
        assert_eq!(text("title", "é".repeat(10).as_str(), 10).unwrap().chars().count(), 10);
    }
}
