//! The text log format's fields, escaped: whatever a field holds (a
//! Message-ID, an error quoting a header, a path), it cannot end its line,
//! move the cursor or colour the terminal, or reorder text. Line breaks,
//! tabs and every other control character (C0, DEL, C1, ESC among them),
//! Unicode line and paragraph separators and the bidirectional controls are
//! written as `\n`, `\r`, `\t` or `\u{..}`. Applied to every field of events
//! and spans alike (the message too), where the formatter writes them. The
//! JSON format escapes by its nature.

use std::fmt::{self, Write as _};
use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

/// The fields formatter for `tracing_subscriber::fmt().fmt_fields(..)`:
/// `message key=value key=value`, as the default one writes them, escaped.
pub fn escaped_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(write_field).delimited(" ")
}

fn write_field(writer: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    if field.name() != "message" {
        write!(writer, "{}=", field.name().trim_start_matches("r#"))?;
    }
    let mut out = Escaping(writer);
    write!(out, "{value:?}")
}

/// Writes what it is given with [`escape`]d characters.
struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(needs_escape) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            escape(self.0, c)?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Line and paragraph separators.
            '\u{2028}' | '\u{2029}'
            // Bidirectional marks, embeddings, overrides and isolates.
            | '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

fn escape(w: &mut impl fmt::Write, c: char) -> fmt::Result {
    match c {
        '\n' => w.write_str("\\n"),
        '\r' => w.write_str("\\r"),
        '\t' => w.write_str("\\t"),
        c => write!(w, "\\u{{{:x}}}", u32::from(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Every way a value reaches a line (Display, Debug, str, the message,
    /// a span's fields) is escaped: one event, one line, no control or
    /// bidi character in it.
    #[test]
    fn no_field_can_break_its_line_or_hide_text() {
        let buffer = Buffer::default();
        let make = {
            let b = buffer.clone();
            move || b.clone()
        };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(make)
            .with_ansi(false)
            .fmt_fields(escaped_fields())
            .finish();
        let hostile = "<a@x>\r\n2026-01-01T00:00:00Z ERROR level=ERROR forged\r\x1b[2J\x1b]0;t\x07\u{202E}gnp.exe\u{2066}\u{85}\u{2028}\t\u{7f}";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = %hostile);
            let _in = span.enter();
            tracing::info!(key = %hostile, debug = ?hostile, plain = hostile, "inbound {hostile}");
            tracing::warn!(error = %format!("{hostile}"), "failed");
        });
        let out = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        for line in &lines {
            for c in line.chars() {
                assert!(!needs_escape(c), "{c:?} reached the log: {out}");
            }
        }
        assert!(lines[0].contains("request{request_id=<a@x>\\r\\n2026"), "{out}");
        assert!(lines[0].contains("key=<a@x>\\r\\n2026"), "{out}");
        assert!(lines[0].contains("\\u{1b}[2J"), "{out}");
        assert!(lines[0].contains("\\u{202e}gnp.exe\\u{2066}"), "{out}");
        assert!(lines[0].contains("inbound <a@x>\\r\\n"), "{out}");
        assert!(lines[1].contains("error=<a@x>\\r\\n"), "{out}");
    }
}
