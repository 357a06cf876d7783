#!/usr/bin/env bash
# Makes the browser test's tools present: Debian's Chromium (no browser download) and the
# UI test's npm packages (playwright-core and axe-core, pinned by its package-lock.json).
# Prints the Chromium path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v chromium >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -qq chromium >&2 ||
    { $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq chromium >&2; }
fi
ui="$root/local/ui-test"
if [ ! -d "$ui/node_modules/playwright-core" ] || [ "$ui/package-lock.json" -nt "$ui/node_modules/.package-lock.json" ]; then
  echo "installing the UI test's npm packages" >&2
  npm ci --prefix "$ui" --no-audit --no-fund --loglevel=error >&2
fi
command -v chromium
