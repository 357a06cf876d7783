#!/usr/bin/env bash
# Part of `make test`: schemathesis (pinned in requirements.txt) against a local stack started
# here on moto ($1: its endpoint), with the OpenAPI document the API serves and valid tokens:
# /api/v1 with a user token, /admin/api with an admin token, a bounded number of examples per
# operation. Fails on any 5xx or any answer the document does not describe (status, content
# type, body schema).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
endpoint=$1
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# Throwaway keys for a throwaway stack: generated here, never written to disk.
CUBA_TOKEN_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
CUBA_ADMIN_TOKEN_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
export CUBA_TOKEN_SECRET CUBA_ADMIN_TOKEN_SECRET
cargo build --quiet -p cuba-local
target/debug/cuba-local dev --endpoint "$endpoint" --port "$port" --stack "st$$" > .local/schemathesis-stack.log 2>&1 &
stack_pid=$!
trap 'kill "$stack_pid" 2>/dev/null || true' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
  curl -sf -o /dev/null "$base/api/v1/openapi.json" && break
  kill -0 "$stack_pid" 2>/dev/null || { cat .local/schemathesis-stack.log; exit 1; }
  sleep 0.5
done
user_token=$(target/debug/cuba-local token --user 1 --hours 1)
admin_token=$(target/debug/cuba-local admin-token --sub schemathesis@cube.test --hours 1)
# One worker: with two, hypothesis parses lambda sources from two threads at once, and
# CPython 3.11's parser can fail that with "AST constructor recursion depth mismatch" (a
# crash of the tool, not a finding; seen once). The runs take seconds either way.
run() {
  .venv/bin/schemathesis run "$base/api/v1/openapi.json" --url "$base" \
    -H "Authorization: Bearer $2" --include-path-regex "$1" \
    --max-examples 10 --phases examples,coverage,fuzzing \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --workers 1 --no-color
}
run '^/api/v1' "$user_token"
run '^/admin/api' "$admin_token"
