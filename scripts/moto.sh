#!/usr/bin/env bash
# Starts the pinned moto server on 127.0.0.1:PORT in the background, waits until it answers,
# and prints its PID. Usage: scripts/moto.sh PORT LOGFILE
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=$1
log=$2
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  echo "port $port is already in use (another moto or local stack running?)" >&2
  exit 1
fi
"$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/data.json" 2>/dev/null; then
    echo "$pid"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "moto exited; see $log" >&2
    exit 1
  fi
  sleep 0.2
done
echo "moto did not answer on port $port within 20 s; see $log" >&2
kill "$pid" 2>/dev/null || true
exit 1
