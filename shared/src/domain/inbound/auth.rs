//! Whether an inbound message's `From` domain is authenticated: SPF or DKIM
//! passed, and DMARC (which checks both against the `From` domain) did not
//! fail where the domain publishes a policy. The verdicts come from whoever
//! received the message: SES's receipt (`spfVerdict`, `dkimVerdict`,
//! `dmarcVerdict`), or for ticketd the `Authentication-Results` header
//! (RFC 8601) its MTA added under a trusted authserv-id.

/// The receiving MTA's results, each as its status word (`pass`, `fail`,
/// `gray`, `none`, ...), lower-cased; `None` where it gave none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderAuth {
    pub spf: Option<String>,
    pub dkim: Option<String>,
    pub dmarc: Option<String>,
}

/// What the results say of the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthVerdict {
    /// Authenticated: `dmarc=pass`, else (no DMARC policy) `spf=pass` or `dkim=pass`.
    Pass(&'static str),
    /// Results are there and none passes, or DMARC failed.
    Fail,
    /// No results at all (nobody checked).
    Missing,
}

impl SenderAuth {
    fn is(v: &Option<String>, word: &str) -> bool {
        v.as_deref().is_some_and(|s| s.eq_ignore_ascii_case(word))
    }

    pub fn verdict(&self) -> AuthVerdict {
        if Self::is(&self.dmarc, "pass") {
            return AuthVerdict::Pass("dmarc");
        }
        // A published policy failed: SPF or DKIM passing for another
        // domain than `From`'s proves nothing about `From`.
        if Self::is(&self.dmarc, "fail") {
            return AuthVerdict::Fail;
        }
        if Self::is(&self.spf, "pass") {
            return AuthVerdict::Pass("spf");
        }
        if Self::is(&self.dkim, "pass") {
            return AuthVerdict::Pass("dkim");
        }
        if self.spf.is_none() && self.dkim.is_none() && self.dmarc.is_none() {
            AuthVerdict::Missing
        } else {
            AuthVerdict::Fail
        }
    }

    /// The results of the first (topmost: added last, by the receiving MTA)
    /// `Authentication-Results` header whose authserv-id is `trusted`;
    /// headers of any other id (a sender can write its own) are ignored.
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = &'a str>, trusted: &str) -> Self {
        for value in headers {
            let mut parts = value.split(';');
            let id = strip_comments(parts.next().unwrap_or(""));
            // `authserv-id [version]`
            if !id
                .split_whitespace()
                .next()
                .is_some_and(|i| i.eq_ignore_ascii_case(trusted.trim()))
            {
                continue;
            }
            let mut auth = SenderAuth::default();
            for resinfo in parts {
                let resinfo = strip_comments(resinfo);
                let Some((method, rest)) = resinfo.trim().split_once('=') else {
                    continue;
                };
                let result = rest.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
                let slot = match method.trim().to_ascii_lowercase().as_str() {
                    "spf" => &mut auth.spf,
                    "dkim" => &mut auth.dkim,
                    "dmarc" => &mut auth.dmarc,
                    _ => continue,
                };
                // Several DKIM signatures: any pass counts.
                if slot.as_deref() != Some("pass") {
                    *slot = Some(result);
                }
            }
            return auth;
        }
        SenderAuth::default()
    }
}

/// `text` without RFC 5322 comments (`(...)`, nesting allowed).
fn strip_comments(text: &str) -> String {
    let mut depth = 0usize;
    text.chars()
        .filter(|c| match c {
            '(' => {
                depth += 1;
                false
            }
            ')' => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(spf: Option<&str>, dkim: Option<&str>, dmarc: Option<&str>) -> SenderAuth {
        SenderAuth {
            spf: spf.map(Into::into),
            dkim: dkim.map(Into::into),
            dmarc: dmarc.map(Into::into),
        }
    }

    #[test]
    fn dmarc_decides_where_published_else_spf_or_dkim() {
        assert_eq!(
            auth(Some("fail"), None, Some("PASS")).verdict(),
            AuthVerdict::Pass("dmarc")
        );
        assert_eq!(
            auth(Some("pass"), Some("pass"), Some("fail")).verdict(),
            AuthVerdict::Fail
        );
        assert_eq!(
            auth(Some("pass"), None, Some("gray")).verdict(),
            AuthVerdict::Pass("spf")
        );
        assert_eq!(
            auth(Some("fail"), Some("pass"), None).verdict(),
            AuthVerdict::Pass("dkim")
        );
        assert_eq!(
            auth(Some("softfail"), Some("none"), Some("gray")).verdict(),
            AuthVerdict::Fail
        );
        assert_eq!(auth(None, None, None).verdict(), AuthVerdict::Missing);
    }

    #[test]
    fn only_the_trusted_mta_header_counts() {
        let headers = [
            "mx.example.org 1; spf=pass (sender ok) smtp.mailfrom=a.example;\r\n dkim=fail header.d=a.example; dkim=pass header.d=a.example",
            "attacker.example; dmarc=pass",
        ];
        let got = SenderAuth::from_headers(headers, "MX.example.org");
        assert_eq!(got, auth(Some("pass"), Some("pass"), None));
        let forged = SenderAuth::from_headers(["attacker.example; dmarc=pass"], "mx.example.org");
        assert_eq!(forged.verdict(), AuthVerdict::Missing);
        let first_wins = SenderAuth::from_headers(
            ["mx.example.org; spf=fail", "mx.example.org; spf=pass"],
            "mx.example.org",
        );
        assert_eq!(first_wins.verdict(), AuthVerdict::Fail);
    }
}
