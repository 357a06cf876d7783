.PHONY: dev test bench package docs

# Start the whole stack locally: moto (AWS APIs) on :4566 and the API on :3000. TOKENS=oidc
# takes tokens from a stand-in identity provider on :3001 instead of the local key rings.
dev:
	scripts/dev.sh --tokens "$(or $(TOKENS),hs256)"

# Everything CI runs: fmt, clippy, cfn-lint, unit and integration tests.
test:
	scripts/test.sh

# Performance figures (see docs/src/benchmarks.md): the pure core, then the pipeline on moto.
bench:
	scripts/bench.sh

# The eight functions for arm64 as Lambda zips (cargo-lambda), with their sizes.
package:
	scripts/package.sh

# The book (docs/src/) as HTML in docs/book/.
docs:
	scripts/docs.sh
