#!/usr/bin/env bash
# Installs what the tests need and runs them all (unit, oracle, the outside
# capture corpus against tshark, store durability, live capture on veth pairs
# in network namespaces the tests create, a real Prometheus server).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
swift build --build-tests --explicit-target-dependency-import-check error
FLOWMETER_TESTS=full swift test --skip-build
