#!/usr/bin/env bash
# Creates a virtualenv with pinned tools once; re-runs only when its requirements change, so
# `make dev`, `make test` and `make package` are cheap after the first time.
#   scripts/venv.sh                     .venv: the local stack's tools (requirements.txt)
#   scripts/venv.sh .venv-deploy deploy-requirements.txt
#                                       the deployment tools, kept apart (aws-sam-cli pins
#                                       its own cfn-lint and boto versions)
# Everything comes from PyPI, so it works where only the package registries are reachable.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/${1:-.venv}"
req="$root/scripts/${2:-requirements.txt}"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
