//! RESULTS.md: a header saying where, how and which parts were measured, one
//! section per part (each stamped with its run's date), and the notes written
//! by hand. Parts not measured keep their section from the previous file.

use crate::part_a::RequestCost;
use crate::part_b::ScaleRow;
use crate::part_c::Signin;
use crate::part_d::{ColdStartRow, HELLO};
use crate::part_e::DynamoAccess;
use crate::{Args, Part};
use std::fmt::Write as _;
use std::time::Duration;

/// What this run measured; `None` for a part not run or skipped.
#[derive(Default)]
pub struct Results {
    pub a: Option<RequestCost>,
    pub b: Option<Vec<ScaleRow>>,
    pub c: Option<Signin>,
    pub d: Option<Vec<ColdStartRow>>,
    pub e: Option<DynamoAccess>,
}

const STAMP: &str = "_Measured ";
const NOTES: &str = "## Notes";

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next()?.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1048576.0))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {mem} memory, {} {}; {rustc}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The previous file cut at its `## ` headings: the part sections by letter
/// (stamped with the previous run's date if they carry no stamp) and the notes.
struct Previous {
    parts: Vec<(char, String)>,
    /// Sections written by hand or by other tools (e.g. "sam build"), kept as they are.
    others: Vec<String>,
    notes: Option<String>,
}

fn previous(text: &str) -> Previous {
    let date = text
        .lines()
        .find_map(|l| l.strip_prefix("- date: "))
        .unwrap_or("an earlier run")
        .to_owned();
    let mut chunks: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("## ") {
            chunks.push(String::new());
        }
        if let Some(chunk) = chunks.last_mut() {
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    let mut found = Previous {
        parts: Vec::new(),
        others: Vec::new(),
        notes: None,
    };
    for chunk in chunks {
        let mut heading = chunk["## ".len()..].chars();
        if chunk.starts_with(NOTES) {
            found.notes = Some(chunk);
        } else if let (Some(letter), Some('.')) = (heading.next(), heading.next()) {
            let section = if chunk.contains(STAMP) {
                chunk
            } else {
                let (title, rest) = chunk.split_once('\n').unwrap_or((&chunk, ""));
                format!("{title}\n\n{STAMP}{date}._\n{rest}")
            };
            found.parts.push((letter, section));
        } else {
            found.others.push(chunk);
        }
    }
    found
}

pub fn render(args: &Args, results: &Results, previous_text: &str, took: Duration) -> String {
    let date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let stamp = format!("{STAMP}{date}, `bench {command}`._\n");
    let previous = previous(previous_text);
    let mut sections = String::new();
    let (mut measured, mut kept, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for part in Part::ALL {
        let fresh = match part {
            Part::A => results.a.as_ref().map(|a| part_a(args, a, &stamp)),
            Part::B => results.b.as_ref().map(|b| part_b(args, b, &stamp)),
            Part::C => results.c.as_ref().map(|c| part_c(c, &stamp)),
            Part::D => results.d.as_ref().map(|d| part_d(args, d, &stamp)),
            Part::E => results.e.as_ref().map(|e| part_e(args, e, &stamp)),
        };
        let old = previous.parts.iter().find(|(l, _)| *l == part.letter()).map(|(_, s)| s);
        match (fresh, old) {
            (Some(section), _) => {
                measured.push(part.letter());
                sections.push_str(&section);
            }
            (None, old) => {
                if args.parts.contains(&part) {
                    skipped.push(part.letter());
                }
                if let Some(old) = old {
                    kept.push(part.letter());
                    sections.push_str(old.trim_end());
                    sections.push_str("\n\n");
                }
            }
        }
    }
    let list = |letters: &[char]| match letters {
        [] => "none".to_owned(),
        _ => letters.iter().map(char::to_string).collect::<Vec<_>>().join(", "),
    };

    let mut s = String::new();
    let _ = writeln!(s, "# Benchmark results\n");
    let _ = writeln!(s, "- date: {date}");
    let _ = writeln!(s, "- machine: {}", machine());
    let _ = writeln!(
        s,
        "- command: `make bench` (= `scripts/bench`: release builds, then `target/release/bench {command}`)"
    );
    let _ = writeln!(s, "- run time: {:.0} s (excluding compilation)", took.as_secs_f64());
    let _ = writeln!(s, "- parts measured in this run: {}", list(&measured));
    if !skipped.is_empty() {
        let _ = writeln!(
            s,
            "- parts asked for but skipped (see the run's log): {}",
            list(&skipped)
        );
    }
    if !kept.is_empty() {
        let _ = writeln!(
            s,
            "- parts kept from the previous file, each stamped with the run that measured it: {}",
            list(&kept)
        );
    }
    let _ = writeln!(
        s,
        "- ratios compare figures measured side by side in one run, so machine noise hits both sides\n"
    );
    s.push_str(&sections);
    for other in &previous.others {
        s.push_str(other.trim_end());
        s.push_str("\n\n");
    }
    if let Some(notes) = previous.notes {
        s.push_str(notes.trim_end());
        s.push('\n');
    }
    s
}

fn part_a(args: &Args, a: &RequestCost, stamp: &str) -> String {
    let bare = a.bare();
    let mut s = String::new();
    let _ = writeln!(s, "## a. Request cost on ticketd (embedded backend)\n\n{stamp}");
    let _ = writeln!(
        s,
        "{} concurrent connections, closed loop, {} s per row, one load generator (reqwest, in the same process as both servers). The bare route runs first and last; the baseline is their mean ({bare:.0} req/s).\n",
        args.concurrency, args.duration
    );
    let _ = writeln!(
        s,
        "| target | req/s | × bare | p50 ms | p99 ms | errors |\n|---|---:|---:|---:|---:|---:|"
    );
    for row in &a.rows {
        let st = &row.stats;
        let _ = writeln!(
            s,
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
            row.target,
            st.throughput(),
            st.throughput() / bare,
            st.p50_ms,
            st.p99_ms,
            st.errors
        );
    }
    let get = a.get_ratio();
    let _ = writeln!(
        s,
        "\nGoal: GET ticket throughput ≥ 0.5 × bare. Measured: {get:.2} × — {}.\n",
        verdict(get >= 0.5)
    );
    s
}

fn part_b(args: &Args, rows: &[ScaleRow], stamp: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## b. Scale: list page latency, {} vs {} tickets in the org\n\n{stamp}",
        args.small, args.large
    );
    let _ = writeln!(
        s,
        "Both orgs in one database; {} sequential requests each, interleaved; pages of 50.\n",
        args.list_samples
    );
    let _ = writeln!(
        s,
        "| query | p50 small ms | p50 large ms | ratio p50 | p99 small ms | p99 large ms |\n|---|---:|---:|---:|---:|---:|"
    );
    let mut worst: f64 = 0.0;
    for row in rows {
        let ratio = row.p50_ratio();
        worst = worst.max(ratio);
        let _ = writeln!(
            s,
            "| `{}` | {:.3} | {:.3} | {ratio:.2} | {:.3} | {:.3} |",
            row.query, row.small.p50_ms, row.large.p50_ms, row.small.p99_ms, row.large.p99_ms
        );
    }
    let _ = writeln!(
        s,
        "\nGoal: ratio ≤ 1.5. Worst p50 ratio: {worst:.2} — {}.\n",
        verdict(worst <= 1.5)
    );
    s
}

fn part_c(c: &Signin, stamp: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## c. Sign-in (Argon2id, m=19 MiB, t=2, p=1)\n\n{stamp}");
    let _ = writeln!(s, "| case | n | p50 ms | p99 ms |\n|---|---:|---:|---:|");
    for (case, st) in [
        ("known email, right password", &c.known),
        ("known email, wrong password", &c.wrong),
        ("unknown email (fallback hash)", &c.unknown),
    ] {
        let _ = writeln!(s, "| {case} | {} | {:.1} | {:.1} |", st.requests, st.p50_ms, st.p99_ms);
    }
    let _ = writeln!(
        s,
        "\nGoal: p50 ≤ 60 ms. Measured {:.1} ms — {}. Unknown email / wrong password p50 ratio {:.2}: what a guesser can compare, both failures (1.0 means timing reveals nothing); unknown / right password {:.2} (a success records no failure).\n",
        c.known.p50_ms,
        verdict(c.known.p50_ms <= 60.0),
        c.unknown.p50_ms / c.wrong.p50_ms,
        c.unknown.p50_ms / c.known.p50_ms
    );
    let j = &c.jwt;
    let _ = writeln!(
        s,
        "Admin token cost, in this process, median of {} each: HS256 (as tokens were signed before, a shared secret) beside ES256 (`auth::JwtKeys`, as now).\n",
        j.samples
    );
    let _ = writeln!(
        s,
        "| operation | HS256 µs | ES256 µs | ES256 / HS256 |\n|---|---:|---:|---:|"
    );
    for (op, hs, es) in [
        ("sign (sign-in)", j.hs256_sign_us, j.es256_sign_us),
        (
            "verify a token first seen (JWT route)",
            j.hs256_verify_us,
            j.es256_verify_us,
        ),
    ] {
        let _ = writeln!(s, "| {op} | {hs:.1} | {es:.1} | {:.1} |", es / hs);
    }
    let _ = writeln!(
        s,
        "| verify a token verified before (remembered) | | {:.2} | {:.2} |",
        j.es256_remembered_us,
        j.es256_remembered_us / j.hs256_verify_us
    );
    let _ = writeln!(
        s,
        "| derive a key pair from its seed (per key, per read of the keys) | | {:.1} | |\n",
        j.es256_key_us
    );
    s
}

fn part_d(args: &Args, rows: &[ColdStartRow], stamp: &str) -> String {
    let hello = rows.iter().find(|r| r.function == HELLO).map(|r| r.init_median);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## d. Lambda cold start (x86-64 bootstraps, profile `release`, as `sam build` builds them)\n\n{stamp}"
    );
    let _ = writeln!(
        s,
        "Init = from spawning the bootstrap to its first `GET /2018-06-01/runtime/invocation/next` on an emulated Runtime API in this process; median of {} spawns. Zipped = cargo-lambda's `bootstrap.zip`.\n",
        args.spawns
    );
    let _ = writeln!(
        s,
        "| function | raw MB | zipped MB | init median ms | × hello |\n|---|---:|---:|---:|---:|"
    );
    let (mut max_zip, mut max_ratio) = (0u64, 0f64);
    for row in rows {
        let ratio = hello.map_or(f64::NAN, |h| row.init_median.as_secs_f64() / h.as_secs_f64());
        if row.function != HELLO {
            max_zip = max_zip.max(row.zipped_bytes);
            max_ratio = max_ratio.max(ratio);
        }
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.2} | {ratio:.2} |",
            row.function,
            row.raw_bytes as f64 / 1e6,
            row.zipped_bytes as f64 / 1e6,
            row.init_median.as_secs_f64() * 1e3
        );
    }
    let _ = writeln!(
        s,
        "\nGoals: zipped ≤ 5 MB — largest {:.2} MB, {}; init ≤ 2 × hello — worst {max_ratio:.2} ×, {}.\n",
        max_zip as f64 / 1e6,
        verdict(max_zip <= 5_000_000),
        verdict(hello.is_some() && max_ratio <= 2.0)
    );
    s
}

fn part_e(args: &Args, e: &DynamoAccess, stamp: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## e. DynamoDB access (moto, {} tickets in the org)\n\n{stamp}",
        args.dynamo_tickets
    );
    let _ = writeln!(s, "Calls counted by an SDK interceptor on the DynamoDB client.\n");
    let _ = writeln!(s, "| endpoint | calls | by operation |\n|---|---:|---|");
    let (mut scans, mut create) = (0, 0);
    for row in &e.endpoints {
        let total: u64 = row.calls.values().sum();
        scans += row.calls.get("Scan").copied().unwrap_or(0);
        if row.endpoint == "POST /tickets" {
            create = total;
        }
        let by_op: Vec<String> = row.calls.iter().map(|(op, n)| format!("{op} {n}")).collect();
        let _ = writeln!(s, "| {} | {total} | {} |", row.endpoint, by_op.join(", "));
    }
    let _ = writeln!(s, "\n| list filter | ScannedCount | Count |\n|---|---:|---:|");
    let mut single_ok = true;
    for row in &e.filters {
        if row.combined <= 1 && row.scanned != row.count {
            single_ok = false;
        }
        let _ = writeln!(s, "| {} | {} | {} |", row.filter, row.scanned, row.count);
    }
    let _ = writeln!(
        s,
        "\nGoals: no Scan — {} ({scans} scans); create ≤ 3 calls — {create}, {}; ScannedCount = Count for single-filter lists — {}.\n",
        verdict(scans == 0),
        verdict(create <= 3),
        verdict(single_ok)
    );
    let k = &e.key_reads;
    let _ = writeln!(
        s,
        "JWT keys from Secrets Manager (moto; `GetSecretValue` and parse, what a JWT function does once per cold start, on first use): first read on a new client {:.2} ms, then median {:.2} ms of {}.\n",
        k.first.as_secs_f64() * 1000.0,
        k.median.as_secs_f64() * 1000.0,
        k.samples
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "# Benchmark results\n\n- date: 2026-11-28 05:04 UTC\n- machine: x\n\n\
        ## a. Request cost\n\n| t | 1 |\n\n## d. Lambda cold start\n\n_Measured 2026-11-27 01:00 UTC._\n\nrows\n\n\
        ## sam build (issue 7)\n\n| build | wall |\n\n\
        ## Notes on this run (written by hand after it)\n\n- a note\n";

    /// A part not re-measured keeps its old section, stamped with the date it was measured.
    #[test]
    fn sections_not_remeasured_are_kept_with_their_date() {
        let old = previous(OLD);
        assert_eq!(old.parts.len(), 2);
        let (a, d) = (&old.parts[0], &old.parts[1]);
        assert_eq!(a.0, 'a');
        assert!(a.1.contains("_Measured 2026-11-28 05:04 UTC._"), "{}", a.1);
        assert!(a.1.contains("| t | 1 |"));
        assert_eq!(d.0, 'd');
        assert_eq!(d.1.matches("_Measured").count(), 1, "{}", d.1);
        assert!(d.1.contains("2026-11-27 01:00 UTC"));
        assert!(old.notes.is_some_and(|n| n.contains("- a note")));
    }

    #[test]
    fn a_run_names_what_it_measured_and_what_it_kept() {
        use clap::Parser;
        let args = Args::parse_from(["bench", "--parts", "b"]);
        let text = render(&args, &Results::default(), OLD, Duration::from_secs(1));
        assert!(text.contains("- parts measured in this run: none\n"), "{text}");
        assert!(
            text.contains("- parts asked for but skipped (see the run's log): b"),
            "{text}"
        );
        assert!(text.contains("- parts kept from the previous file, each stamped with the run that measured it: a, d"));
        assert!(text.find("## a.").unwrap() < text.find("## d.").unwrap());
        // A section the bench does not write (here by scripts/sam-build's author) survives, before the notes.
        assert!(text.find("## d.").unwrap() < text.find("## sam build (issue 7)\n\n| build | wall |").unwrap());
        assert!(text.find("## sam build").unwrap() < text.find("## Notes").unwrap());
        assert!(text.trim_end().ends_with("- a note"));
    }
}
