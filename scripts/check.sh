#!/usr/bin/env bash
# What CI runs: formatting, lints, documentation and the whole test suite.
# Run as root for the privileged tests; REQUIRE_PRIVILEGED_TESTS=1 turns
# every skipped privileged test into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
cargo test --locked
