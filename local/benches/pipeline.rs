//! End-to-end figures for the whole pipeline on the local stack: HTTP ingest latency and
//! throughput, time until the rules handler has evaluated everything, and the process's peak
//! memory. moto stands in for AWS, so latencies are moto's as much as ours; run with `make bench`.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::UserId;
use cuba_local::runner::{self, StackOptions};

const USERS: u64 = 50;
const EVENTS_PER_USER: u64 = 20;
const CONCURRENCY: usize = 8;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = std::env::var("CUBA_BENCH_MOTO_ENDPOINT")
        .map_err(|_| anyhow::anyhow!("set CUBA_BENCH_MOTO_ENDPOINT (make bench does)"))?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let sdk = cuba_local::moto_sdk_config(&endpoint).await;
    let rss_before = cuba_local::peak_rss_kib("self");
    let stack = runner::start(&sdk, StackOptions::for_bench(&root, "bench")).await?;
    let base = format!("http://{}/api/v1/event/", stack.http_addr);
    let http = reqwest::Client::new();
    let tokens: Vec<String> = (1..=USERS)
        .map(|u| stack.verifier.issue(UserId(u), SystemClock.now(), 3600))
        .collect();
    let total = USERS * EVENTS_PER_USER;

    let started = Instant::now();
    let jobs: Vec<(u64, String)> = (0..EVENTS_PER_USER)
        .flat_map(|_| (1..=USERS).map(|u| (u, tokens[(u - 1) as usize].clone())))
        .collect();
    let chunks: Vec<Vec<(u64, String)>> = jobs
        .chunks(jobs.len().div_ceil(CONCURRENCY))
        .map(<[_]>::to_vec)
        .collect();
    let mut workers = Vec::new();
    for chunk in chunks {
        let http = http.clone();
        let base = base.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for (i, (user, token)) in chunk.into_iter().enumerate() {
                let body = serde_json::json!({"user": user, "noun": "bill", "verb": "paid",
                    "properties": {"amount": 1000 + i, "type": "electricity"}});
                let sent = Instant::now();
                let response = http
                    .post(&base)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status().as_u16() == 202,
                    "status {}",
                    response.status()
                );
                latencies.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let ingest_elapsed = started.elapsed();
    while stack.progress.stream_records.load(Ordering::SeqCst) < total {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pipeline_elapsed = started.elapsed();
    latencies.sort();

    println!(
        "events: {total} ({USERS} users x {EVENTS_PER_USER}), {CONCURRENCY} concurrent clients"
    );
    println!(
        "ingest: {:.0} events/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        total as f64 / ingest_elapsed.as_secs_f64(),
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
    );
    println!(
        "rules: all {total} evaluated {:.2} s after the first post ({:.0} events/s end to end)",
        pipeline_elapsed.as_secs_f64(),
        total as f64 / pipeline_elapsed.as_secs_f64()
    );
    println!(
        "memory: peak RSS {} KiB (before starting the stack {} KiB)",
        cuba_local::peak_rss_kib("self"),
        rss_before
    );
    Ok(())
}
