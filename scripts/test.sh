#!/usr/bin/env bash
# `make test`: formatting, lints, the template lints (cfn-lint, sam validate), unit tests, integration tests and
# schemathesis (the OpenAPI document against the running API) against
# a moto server started here on a free port (and stopped on exit), including the admin UI's
# browser test in headless Chromium (screenshots kept in artifacts/admin-ui/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p .local
scripts/venv.sh
scripts/venv.sh .venv-deploy deploy-requirements.txt
chromium=$(scripts/browser.sh)

# When the disk fills, the linker dies with a bus error that says nothing about disk (stop 37's CI),
# so say first how much there is.
avail_kib=$(df -Pk "$root" | awk 'NR == 2 { print $4 }')
echo "== disk: $((avail_kib / 1048576)) GiB free for target/ (a clean clone's tests and packages take about 5 GiB)"
if (( avail_kib < 6 * 1048576 )); then
  echo "warning: less than 6 GiB free; a cold build may fail in the linker with a bus error" >&2
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml
echo "== sam validate --lint"
SAM_CLI_TELEMETRY=0 .venv-deploy/bin/sam validate --lint --template template.yaml --region us-east-1

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
moto_pid=$(scripts/moto.sh "$port" .local/moto-test.log)
# A second moto for the heavy run (the fault-injection test's thousands of requests): moto
# serves one request at a time, and sharing it made that run and the rest of the suite late
# beside each other.
heavy_port=$(free_port)
heavy_pid=$(scripts/moto.sh "$heavy_port" .local/moto-test-heavy.log)
trap 'kill "$moto_pid" "$heavy_pid" 2>/dev/null || true' EXIT
echo "== cargo build --bins (the runtime-contract tests run the function binaries)"
cargo build --workspace --bins --quiet
echo "== cargo test (moto on port $port, heavy runs on port $heavy_port)"
CUBA_TEST_MOTO_ENDPOINT="http://127.0.0.1:$port" CUBA_TEST_MOTO_HEAVY_ENDPOINT="http://127.0.0.1:$heavy_port" \
  CUBA_TEST_CHROMIUM="$chromium" cargo test --workspace
echo "== schemathesis against the local stack (the served OpenAPI document)"
scripts/schemathesis.sh "http://127.0.0.1:$port"
