#!/usr/bin/env bash
# `make bench`: the engine micro-benchmarks and the partition-heat simulation, then on a moto
# started here the window reads, the cost per kind of event, the end-to-end pipeline and the
# functions' cold start and memory (their release binaries under a Lambda Runtime API).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p .local
scripts/venv.sh
cargo bench -p cuba-local --bench engine
cargo bench -p cuba-core --bench rule_index
cargo bench -p cuba-core --bench rate_limit
cargo bench -p cuba-core --bench sms_manners
cargo bench -p cuba-local --bench partition_heat
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
moto_pid=$(scripts/moto.sh "$port" .local/moto-bench.log)
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
CUBA_BENCH_MOTO_ENDPOINT="http://127.0.0.1:$port" cargo bench -p cuba-local --bench window_reads
CUBA_BENCH_MOTO_ENDPOINT="http://127.0.0.1:$port" cargo bench -p cuba-local --bench cost
CUBA_BENCH_MOTO_ENDPOINT="http://127.0.0.1:$port" cargo bench -p cuba-local --bench pipeline
cargo build --release --workspace --bins
CUBA_BENCH_MOTO_ENDPOINT="http://127.0.0.1:$port" cargo bench -p cuba-local --bench coldstart
