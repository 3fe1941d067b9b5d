//! The benchmark: every figure measured side by side in one run on this
//! machine, reported as ratios against a baseline measured the same way.
//! Writes bench/RESULTS.md and prints it. See `make bench`; `--parts a`
//! re-measures one part and keeps the others' sections from the last file.

mod common;
mod load;
mod part_a;
mod part_b;
mod part_c;
mod part_d;
mod part_e;
mod report;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use reqwest::Client;
use std::path::PathBuf;
use std::time::Instant;

/// The parts of the benchmark, in the order they run.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// Request cost on ticketd against a bare axum route.
    A,
    /// List latency at a small vs a large org.
    B,
    /// Sign-in latency.
    C,
    /// Lambda bootstrap sizes and init times.
    D,
    /// DynamoDB calls per endpoint (moto).
    E,
}

impl Part {
    pub const ALL: [Part; 5] = [Part::A, Part::B, Part::C, Part::D, Part::E];

    pub fn letter(self) -> char {
        match self {
            Part::A => 'a',
            Part::B => 'b',
            Part::C => 'c',
            Part::D => 'd',
            Part::E => 'e',
        }
    }
}

#[derive(Parser, Debug, Clone)]
#[command(about = "ticketing benchmarks; writes bench/RESULTS.md")]
pub struct Args {
    /// Parts to measure, e.g. `a` or `a,d`; the others keep their section of
    /// the existing results file.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Part::ALL)]
    parts: Vec<Part>,
    /// Seconds per load run in part a.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Tickets in the small and the large org (part b).
    #[arg(long, default_value_t = 1_000)]
    small: usize,
    #[arg(long, default_value_t = 100_000)]
    large: usize,
    /// Sequential requests per list latency sample (part b) and sign-ins (part c).
    #[arg(long, default_value_t = 300)]
    list_samples: usize,
    #[arg(long, default_value_t = 40)]
    signins: usize,
    /// Where cargo-lambda put the bootstraps (part d); skipped if absent.
    #[arg(long, default_value = "target/lambda")]
    lambda_dir: PathBuf,
    /// Spawns per bootstrap for the init-time median (part d).
    #[arg(long, default_value_t = 10)]
    spawns: usize,
    /// Tickets in DynamoDB (moto) for part e; part e is skipped without AWS_ENDPOINT_URL.
    #[arg(long, default_value_t = 10_000)]
    dynamo_tickets: usize,
    #[arg(long, default_value = "bench/RESULTS.md")]
    out: PathBuf,
}

impl Args {
    fn runs(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    args.parts.sort();
    args.parts.dedup();
    let started = Instant::now();
    let mut results = report::Results::default();
    let client = Client::builder().pool_max_idle_per_host(256).build()?;

    if args.runs(Part::A) || args.runs(Part::B) || args.runs(Part::C) {
        let dir = tempfile::tempdir()?;
        let mut config = ticketd::Config::new("127.0.0.1:0".parse()?, dir.path().join("data"));
        config.jwt_secret = Some(common::JWT_SECRET.into());
        // Unknown-email sign-ins are measured many times from one client: no throttling.
        config.signin.max_failures = u32::MAX;
        config.signin.max_client_failures = u32::MAX;
        // One org responds thousands of times to one customer: the write path
        // is measured, not the mail limits (a 429 would be a fast non-answer).
        let unlimited = ticketing::domain::limits::Rate::new(u32::MAX, std::time::Duration::from_secs(3600));
        config.limits.mail_per_org = unlimited;
        config.limits.mail_per_recipient = unlimited;
        let server = ticketd::start(config).await?;
        let base = format!("http://{}", server.addr);
        eprintln!("ticketd (embedded) on {base}");
        if args.runs(Part::A) {
            results.a = Some(part_a::run(&args, &client, &base).await?);
        }
        if args.runs(Part::B) {
            results.b = Some(part_b::run(&args, &client, &base, &server).await?);
        }
        if args.runs(Part::C) {
            results.c = Some(part_c::run(&args, &client, &base).await?);
        }
        server.shutdown().await?;
    }
    if args.runs(Part::D) {
        results.d = part_d::run(&args).await?;
    }
    if args.runs(Part::E) {
        results.e = part_e::run(&args, &client).await?;
    }

    let previous = std::fs::read_to_string(&args.out).unwrap_or_default();
    let text = report::render(&args, &results, &previous, started.elapsed());
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{text}");
    Ok(())
}
