//! The parser and classifier on the fixture messages (tests/fixtures/inbound).

use super::*;

const TO: &str = "reply+0190f5c3-8a4e-7c12-9b3d-5e6f7a8b9c0d.0123456789abcdef0123@in.acme.example";
const FROM: &str = "Carla.Customer@Customer.example";

/// A fixture with its placeholders filled and CRLF line ends, as on the wire.
fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../tests/fixtures/inbound/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    fill(
        &raw,
        TO,
        FROM,
        "0190f5c3-8a4e-7c12-9b3d-5e6f7a8b9c0d",
        "r.t.tok@in.acme.example",
    )
}

/// `raw` with the placeholders replaced (byte-wise: a fixture may not be UTF-8).
pub fn fill(raw: &[u8], to: &str, from: &str, ticket: &str, in_reply_to: &str) -> Vec<u8> {
    let mut out = raw.to_vec();
    let domain = to.rsplit('@').next().unwrap_or("");
    for (k, v) in [
        ("{{to}}", to),
        ("{{from}}", from),
        ("{{ticket}}", ticket),
        ("{{domain}}", domain),
        ("{{in_reply_to}}", in_reply_to),
    ] {
        out = replace(&out, k.as_bytes(), v.as_bytes());
    }
    replace(&replace(&out, b"\r\n", b"\n"), b"\n", b"\r\n")
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn read(name: &str) -> InboundMail {
    parse(&fixture(name), &SesVerdicts::default()).unwrap_or_else(|| panic!("{name} parses"))
}

#[test]
fn gmail_reply_keeps_the_new_text_only() {
    let m = read("gmail-reply.eml");
    assert_eq!(
        m.text,
        "No, it is still broken \u{2014} the tray jams after two pages.\n\nCarla"
    );
    assert_eq!(m.from.as_deref(), Some("carla.customer@customer.example"));
    assert!(m.recipients.contains(&TO.to_owned()));
    assert_eq!(m.message_id.as_deref(), Some("CAKx9Gmail0001+reply@mail.gmail.com"));
    assert_eq!(m.key, "CAKx9Gmail0001+reply@mail.gmail.com");
    assert_eq!(m.references, ["r.t.tok@in.acme.example", "r.t.tok@in.acme.example"]);
    assert_eq!(m.drop, None);
}

#[test]
fn outlook_reply_loses_its_header_block() {
    let m = read("outlook-reply.eml");
    assert_eq!(
        m.text,
        "Hi,\n\nIt worked after the reset, thanks. You can close it.\n\nRegards,\nCarla"
    );
    assert_eq!(m.drop, None);
}

#[test]
fn apple_mail_reply_loses_the_quote_and_the_device_signature() {
    let m = read("apple-mail-reply.eml");
    assert_eq!(m.text, "Which model number do you need? It says LX-200 on the back.");
    assert_eq!(
        m.references.first().map(String::as_str),
        Some("r.t.tok@in.acme.example")
    );
}

#[test]
fn html_only_is_read_as_text_without_the_blockquote() {
    let m = read("html-only.eml");
    assert_eq!(
        m.text,
        "The new toner & drum did not help.\n\nIt still prints grey stripes."
    );
}

#[test]
fn latin1_text_and_encoded_headers_are_decoded() {
    let m = read("iso-8859-1.eml");
    assert_eq!(
        m.text,
        "Bonjour,\n\nLe probl\u{e8}me est r\u{e9}solu, merci beaucoup. \u{c0} bient\u{f4}t !\n\nRen\u{e9}e"
    );
    assert_eq!(m.subject, "R\u{e9}f. imprimante");
}

#[test]
fn auto_replies_bounces_and_spam_are_dropped() {
    assert_eq!(read("out-of-office.eml").drop, Some(Drop::AutoReply));
    assert_eq!(read("dsn-bounce.eml").drop, Some(Drop::Bounce));
    assert_eq!(read("spam-verdict.eml").drop, Some(Drop::Spam));
    // SES's verdicts from the receipt event count as much as its headers.
    let verdicts = SesVerdicts {
        spam: Some("PASS".into()),
        virus: Some("FAIL".into()),
    };
    assert_eq!(
        parse(&fixture("gmail-reply.eml"), &verdicts).unwrap().drop,
        Some(Drop::Virus)
    );
    for (header, dropped) in [
        ("Auto-Submitted: no", false),
        ("Auto-Submitted: auto-generated", true),
        ("Precedence: bulk", true),
        ("Precedence: list", false),
        ("X-Autorespond: yes", true),
        ("Return-Path: <>", true),
    ] {
        let raw = format!("{header}\r\nFrom: a@b.example\r\nTo: c@d.example\r\nSubject: s\r\n\r\nhello\r\n");
        let m = parse(raw.as_bytes(), &SesVerdicts::default()).unwrap();
        assert_eq!(m.drop.is_some(), dropped, "{header}");
    }
}

#[test]
fn the_same_message_id_is_the_same_key_and_a_missing_one_is_hashed() {
    let first = read("gmail-reply.eml");
    let again = read("duplicate-message-id.eml");
    assert_eq!(first.key, again.key);
    assert_eq!(dedupe_key(&fixture("gmail-reply.eml")), first.key);
    let raw = b"From: a@b.example\r\nSubject: no id\r\n\r\nhello\r\n";
    let m = parse(raw, &SesVerdicts::default()).unwrap();
    assert_eq!(m.message_id, None);
    assert!(m.key.starts_with("sha256:") && m.key.len() == 7 + 64, "{}", m.key);
    assert_eq!(dedupe_key(raw), m.key);
}

#[test]
fn forged_wrong_sender_and_in_reply_to_fixtures_parse_as_replies() {
    // Parsing does not judge the token or the sender: the service does.
    for name in ["forged-token.eml", "wrong-sender.eml", "in-reply-to-only.eml"] {
        let m = read(name);
        assert_eq!(m.drop, None, "{name}");
        assert!(!m.text.is_empty(), "{name}");
    }
    assert_eq!(
        read("wrong-sender.eml").from.as_deref(),
        Some("mallory@elsewhere.example")
    );
    assert_eq!(
        read("in-reply-to-only.eml").references,
        [
            "r.t.tok@in.acme.example",
            "unrelated-0001@customer.example",
            "r.t.tok@in.acme.example"
        ]
    );
}

#[test]
fn quoted_history_and_signatures_are_cut() {
    let cases = [
        ("Thanks!\n\n-- \nCarla\nACME Corp", "Thanks!"),
        ("Yes.\n\n-----Original Message-----\nFrom: Support", "Yes."),
        ("Yes.\nFrom: Support <s@x>\nDate: Mon\nSubject: Re", "Yes."),
        ("Still broken.\n> old\n> text\n", "Still broken."),
        ("Line one\n\n\n\nLine two", "Line one\n\nLine two"),
        ("On it now.\nOn Mon, Support wrote:\n> quoted", "On it now."),
    ];
    for (text, want) in cases {
        assert_eq!(strip_quoted(text), want, "{text:?}");
    }
}

#[test]
fn garbage_is_not_a_message_and_does_not_panic() {
    for raw in [
        &b""[..],
        b"\xff\xfe\x00",
        b"no headers at all",
        b"Subject: =?bad?=\r\n\r\n",
    ] {
        if let Some(m) = parse(raw, &SesVerdicts::default()) {
            assert!(m.key.starts_with("sha256:"));
        }
    }
}

#[test]
fn authentication_results_are_read_for_the_sender_check() {
    // The fixtures' `{{authserv}}` is left as it is here: the trusted id.
    let trusted = "{{authserv}}";
    let verdict =
        |name| SenderAuth::from_headers(read(name).auth_results.iter().map(String::as_str), trusted).verdict();
    assert_eq!(verdict("spf-fail.eml"), AuthVerdict::Fail);
    assert_eq!(
        verdict("dmarc-fail.eml"),
        AuthVerdict::Fail,
        "SPF and DKIM pass for another domain"
    );
    assert_eq!(
        verdict("forged-auth-results.eml"),
        AuthVerdict::Missing,
        "another MTA's header"
    );
    assert_eq!(verdict("gmail-reply.eml"), AuthVerdict::Missing, "no header at all");
}
