#!/usr/bin/env bash
# `make dev`: the whole stack on this machine. moto on 127.0.0.1:4566 serves the AWS APIs; the
# local runner provisions it from template.yaml and serves the API on 127.0.0.1:3000.
# Ctrl-C stops both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p .local
scripts/venv.sh
cargo build --quiet -p cuba-local
moto_pid=$(scripts/moto.sh "${MOTO_PORT:-4566}" .local/moto.log)
trap 'kill "$moto_pid" 2>/dev/null || true' EXIT INT TERM
target/debug/cuba-local dev --endpoint "http://127.0.0.1:${MOTO_PORT:-4566}" --port "${PORT:-3000}" "$@"
