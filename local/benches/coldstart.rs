//! Cold start and memory of the real function binaries (the release profile the Lambda zips
//! use, built for this host): each runs under `cuba_local::runtime_api` against moto and the
//! bench reports its init (process start to its first poll for work), its first invocation, the
//! warm median over many invocations, and its peak RSS. Warm figures with AWS calls are moto's
//! latency as much as Cuba's, so each function also runs an invocation that makes no AWS call
//! (a refused event, a stream batch of one REMOVE record, the UI page): that median is the
//! runtime's and Cuba's own time per invocation. Run with `make bench` (it builds the binaries).

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::UserId;
use cuba_local::runner::{
    self, ABSENCE_FUNCTION, ADMIN_FUNCTION, INGEST_FUNCTION, RULES_FUNCTION, RunningStack,
    SWEEPER_FUNCTION, StackOptions,
};
use cuba_local::runtime_api::{
    Answer, INVOCATION_TRACE, RuntimeApi, against_moto, fixture, http_request, stored_event_image,
};
use serde_json::{Value, json};

const WARM_RUNS: usize = 200;
const COLD_STARTS: usize = 15;

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Running {
    api: RuntimeApi,
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(
    stack: &RunningStack,
    endpoint: &str,
    logical_id: &str,
    binary: &Path,
) -> Result<(Running, Duration)> {
    let mut vars = against_moto(&stack.function_env[logical_id], endpoint);
    // Tracing on, as `Tracing: Active` runs them: Lambda's daemon address (a socket here that
    // takes the rules function's segments and never reads them). `CUBA_BENCH_TRACING=off`
    // leaves it out, for the figures without.
    if std::env::var("CUBA_BENCH_TRACING").as_deref() != Ok("off") {
        vars.insert(
            cuba_lambda::xray::DAEMON_ADDRESS_VARIABLE.to_owned(),
            daemon_sink().to_string(),
        );
    }
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("function");
    let api = RuntimeApi::start(name).await?;
    let log = std::env::temp_dir().join(format!("cuba-coldstart-{name}.log"));
    let started = Instant::now();
    let mut child = api.spawn(binary, name, &vars, &log)?;
    let ready = api
        .wait_for_init(&mut child, Duration::from_secs(20))
        .await
        .with_context(|| std::fs::read_to_string(&log).unwrap_or_default())?;
    Ok((Running { api, child }, ready - started))
}

/// Where the functions' X-Ray segments go: bound once, never read.
fn daemon_sink() -> std::net::SocketAddr {
    static SINK: std::sync::OnceLock<Option<std::net::UdpSocket>> = std::sync::OnceLock::new();
    SINK.get_or_init(|| std::net::UdpSocket::bind("127.0.0.1:0").ok())
        .as_ref()
        .and_then(|socket| socket.local_addr().ok())
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 2000)))
}

async fn invoke(running: &Running, event: &Value) -> Result<Duration> {
    let at = Instant::now();
    match running.api.invoke(event, Duration::from_secs(30)).await? {
        Answer::Response(_) => Ok(at.elapsed()),
        Answer::Error(e) => Err(anyhow!("the function failed: {e}")),
    }
}

struct Workload {
    logical_id: &'static str,
    binary: &'static str,
    /// The invocation measured warm (it calls AWS, here moto).
    typical: Value,
    /// An invocation that makes no AWS call: Cuba's and the runtime's own time.
    local_only: Value,
}

#[tokio::main]
async fn main() -> Result<()> {
    let endpoint = std::env::var("CUBA_BENCH_MOTO_ENDPOINT")
        .map_err(|_| anyhow!("set CUBA_BENCH_MOTO_ENDPOINT (make bench does)"))?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let release = root.join("target/release");
    let sdk = cuba_local::moto_sdk_config(&endpoint).await;
    let stack = runner::start(
        &sdk,
        StackOptions {
            poll_stream: false,
            schedule_sweeps: false,
            ..StackOptions::for_bench(&root, "cold")
        },
    )
    .await?;
    let now = SystemClock.now();
    let user_token = stack.verifier.issue(UserId(1), now, 3600);
    let admin_token = stack
        .admin_verifier
        .issue("bench@cube.test", Some("admin"), now, 3600);
    let bill = json!({"noun": "bill", "verb": "paid", "properties": {"amount": 3000, "type": "electricity"}});

    // A stored event for the stream and queue workloads.
    let http = reqwest::Client::new();
    let posted: Value = http
        .post(format!("http://{}/api/v1/event/", stack.http_addr))
        .bearer_auth(&user_token)
        .json(&bill)
        .send()
        .await?
        .json()
        .await?;
    let event_id = posted["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no id: {posted}"))?;
    let table = &stack.function_env[RULES_FUNCTION]["CUBA_EVENTS_TABLE"];
    let image = stored_event_image(&sdk, table, event_id).await?;
    let mut insert = fixture("dynamodb-stream-batch.json");
    let mut remove = insert.clone();
    if let Some(records) = insert["Records"].as_array_mut() {
        records.truncate(1);
        records[0]["dynamodb"]["NewImage"] = image.clone();
        // A sampled request's event: its evaluation is sent to X-Ray as a segment.
        records[0]["dynamodb"]["NewImage"]["trace"] = json!({"S": INVOCATION_TRACE});
    }
    if let Some(records) = remove["Records"].as_array_mut() {
        records.retain(|r| r["eventName"] == "REMOVE");
        records[0]["dynamodb"]["OldImage"] = image.clone();
    }
    let received_at = image["received_at"]["N"]
        .as_str()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(now.0);
    let mut check = fixture("sqs-batch.json");
    check["Records"][0]["body"] = json!(
        json!({"rule_id": "bill-paid-no-feedback", "user": 1, "event_id": event_id,
               "received_at": received_at, "due_at": received_at + 900_000})
        .to_string()
    );
    let mut empty_queue_batch = fixture("sqs-batch.json");
    empty_queue_batch["Records"] = json!([]);

    let workloads = [
        Workload {
            logical_id: INGEST_FUNCTION,
            binary: "ingest",
            typical: http_request("POST", "/api/v1/event/", Some(&user_token), Some(&bill)),
            local_only: http_request(
                "POST",
                "/api/v1/event/",
                Some(&user_token),
                Some(&json!({"noun": "bill", "verb": 7})),
            ),
        },
        Workload {
            logical_id: RULES_FUNCTION,
            binary: "rules",
            typical: insert,
            local_only: remove,
        },
        Workload {
            logical_id: ABSENCE_FUNCTION,
            binary: "absence-check",
            typical: check,
            local_only: empty_queue_batch,
        },
        Workload {
            logical_id: ADMIN_FUNCTION,
            binary: "admin",
            typical: http_request("GET", "/admin/api/rules", Some(&admin_token), None),
            local_only: http_request("GET", "/admin/", None, None),
        },
        Workload {
            logical_id: SWEEPER_FUNCTION,
            binary: "sweeper",
            typical: fixture("scheduled-event.json"),
            local_only: fixture("scheduled-event.json"),
        },
    ];

    println!(
        "| function | init (median of {COLD_STARTS}) | first invocation | warm p50 (with moto) | warm p50, no AWS call | peak RSS |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for w in &workloads {
        let binary = release.join(w.binary);
        if !binary.exists() {
            return Err(anyhow!(
                "{} is missing: `cargo build --release --workspace --bins` (make bench does)",
                binary.display()
            ));
        }
        let mut inits = Vec::new();
        let mut firsts = Vec::new();
        for _ in 0..COLD_STARTS {
            let (running, init) = start(&stack, &endpoint, w.logical_id, &binary).await?;
            inits.push(init);
            firsts.push(invoke(&running, &w.typical).await?);
        }
        let (running, _) = start(&stack, &endpoint, w.logical_id, &binary).await?;
        let mut warm = Vec::new();
        let mut local = Vec::new();
        for _ in 0..WARM_RUNS {
            warm.push(invoke(&running, &w.typical).await?);
            local.push(invoke(&running, &w.local_only).await?);
        }
        let rss = cuba_local::peak_rss_kib(&running.child.id().to_string());
        println!(
            "| {} | {} | {} | {} | {} | {:.1} MiB |",
            w.binary,
            ms(median(inits)),
            ms(median(firsts)),
            ms(median(warm)),
            ms(median(local)),
            rss as f64 / 1024.0
        );
    }

    // What the AWS SDK's configuration costs a cold start, in this process: the loader as the
    // functions call it (region given, as Lambda's environment gives it; credentials are read
    // lazily, at the first call), then the clients built from it.
    let mut loads = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..20 {
        let at = Instant::now();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await;
        loads.push(at.elapsed());
        let at = Instant::now();
        let built = cuba_lambda::AwsClients::new(&config);
        clients.push(at.elapsed());
        drop(built);
    }
    println!();
    println!(
        "AWS SDK config load: {} (median of 20); building the clients: {}",
        ms(median(loads)),
        ms(median(clients))
    );

    println!();
    println!("| artefact (arm64, `make package`) | zip size |");
    println!("|---|---:|");
    for w in &workloads {
        let zip = root.join(format!("target/lambda/{}/bootstrap.zip", w.binary));
        match std::fs::metadata(&zip) {
            Ok(m) => println!("| {} | {:.2} MiB |", w.binary, m.len() as f64 / 1048576.0),
            Err(_) => println!("| {} | not built (run `make package`) |", w.binary),
        }
    }
    Ok(())
}
