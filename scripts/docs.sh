#!/usr/bin/env bash
# `make docs`: builds the book (docs/src/) as HTML into docs/book/ with a pinned mdbook, installed
# from crates.io into .local/ the first time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
version=0.5.4
mdbook=.local/bin/mdbook
if ! "$mdbook" --version 2>/dev/null | grep -q "v$version"; then
  echo "== installing mdbook $version into .local/ (once)"
  cargo install --quiet --locked --root .local mdbook --version "$version"
fi
"$mdbook" build docs
echo "The book: $root/docs/book/index.html"
