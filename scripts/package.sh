#!/usr/bin/env bash
# `make package`: the eight Lambda functions built for arm64 (Graviton, `provided.al2023`) with
# cargo-lambda into target/lambda/<function>/bootstrap.zip, in the size-optimised release
# profile, and their sizes printed. What `sam build` deploys is built the same way.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/venv.sh .venv-deploy deploy-requirements.txt
export PATH="$root/.venv-deploy/bin:$PATH"
if command -v rustup >/dev/null; then
  rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
fi
functions=(ingest rules absence-check admin sweeper receipts pre-traffic store-seeding)
packages=()
for f in "${functions[@]}"; do
  packages+=(--package "cuba-$f")
done
echo "== cargo lambda build --release --arm64 (${functions[*]})"
cargo lambda build --release --arm64 --output-format zip "${packages[@]}"
echo "== artifacts"
for f in "${functions[@]}"; do
  zip="target/lambda/$f/bootstrap.zip"
  [ -f "$zip" ] || { echo "missing $zip" >&2; exit 1; }
  printf '%-16s %8s KiB  %s\n' "$f" "$(( $(stat -c %s "$zip") / 1024 ))" "$zip"
done
