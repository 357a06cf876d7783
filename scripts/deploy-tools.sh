#!/usr/bin/env bash
# Creates .venv-deploy with the pinned deployment tools (SAM CLI, cargo-lambda with the zig it
# cross-links with) once; re-runs only when deploy-requirements.txt changes. Everything comes
# from PyPI, so it works where only the package registries are reachable.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-deploy"
req="$root/scripts/deploy-requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
