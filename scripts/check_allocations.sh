#!/usr/bin/env bash
# The allocation gate: the hot-path pieces in Benchmarks/ allocate nothing per
# packet. Runs the package-benchmark suite once and fails unless
#   - every piece's malloc count per sample (10,000 packets) is the empty
#     loop's, at every sample (min = max: every percentile p0 … p100); the
#     harness allocates a constant per sample of its own, so equal means 0;
#   - the control, which mallocs once per sample, reads the empty loop's count
#     plus exactly 1 (the counter counts, and one allocation shows: a broken
#     interposer reading 0 everywhere fails here instead of passing);
#   - every benchmark the suite declares produced a count.
# Prints one row per benchmark. Reads the plugin's `histogram` export: raw
# counts (the other text exports scale 10,016 to "10 K"), exact below 2,048.
#
#   scripts/check_allocations.sh
# Builds Benchmarks/ in release (its own .build; ~3 min cold on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../Benchmarks"
source_file=Benchmarks/EngineBenchmarks/EngineBenchmarks.swift
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

if ! swift package --allow-writing-to-package-directory benchmark \
    --format histogram --path "$out" --no-progress >"$out/run.log" 2>&1; then
    cat "$out/run.log" >&2
    echo "check_allocations: the benchmark run failed" >&2
    exit 1
fi

python3 - "$out" "$source_file" <<'PY'
import glob, os, re, sys

out, source = sys.argv[1], sys.argv[2]
text = open(source).read()
names = re.findall(r'Benchmark\("([^"]+)"\)', text)
if not names:
    sys.exit(f"check_allocations: no benchmarks declared in {source}")
BASELINE, CONTROL = "baseline: empty loop", "control: one allocation per 10,000 packets"
for required in (BASELINE, CONTROL):
    if required not in names:
        sys.exit(f"check_allocations: {source} no longer declares '{required}'")

def counts(name):
    """(min, max, samples) of the malloc count per sample, from the plugin's histogram export."""
    safe = name.replace("/", "_").replace(" ", "_")
    files = glob.glob(os.path.join(out, f"*.{glob.escape(safe)}.mallocCountTotal.histogram.txt"))
    if len(files) != 1:
        return None
    body = open(files[0]).read()
    first = re.search(r'^\s*([0-9.]+)\s+0\.0+\s+\d+', body, re.M)          # the p0 row
    top = re.search(r'Max\s*=\s*([0-9.]+),\s*Total count\s*=\s*(\d+)', body)
    if not first or not top or int(top.group(2)) == 0:
        return None
    return int(float(first.group(1))), int(float(top.group(1))), int(top.group(2))

results = {n: counts(n) for n in names}
base = results[BASELINE]
failures = []
if base is None:
    sys.exit("check_allocations: no malloc counts for the empty loop (is mallocCountTotal still a metric?)")
if base[0] != base[1]:
    failures.append(f"the empty loop's own count varies ({base[0]} … {base[1]}): no constant to compare against")
harness = base[0]

print(f"{'benchmark':<58} {'min':>6} {'max':>6} {'samples':>8} {'expected':>9}  verdict")
for n in names:
    r = results[n]
    expected = harness + 1 if n == CONTROL else harness
    if r is None:
        failures.append(f"{n}: no malloc counts in the run's output")
        print(f"{n:<58} {'-':>6} {'-':>6} {'-':>8} {expected:>9}  NO RESULT")
        continue
    lo, hi, samples = r
    ok = lo == expected and hi == expected
    if not ok:
        failures.append(f"{n}: malloc count per sample {lo} … {hi}, expected {expected} in every sample")
    print(f"{n:<58} {lo:>6} {hi:>6} {samples:>8} {expected:>9}  {'ok' if ok else 'FAIL'}")

if failures:
    print("\ncheck_allocations: FAILED", file=sys.stderr)
    for f in failures:
        print("  " + f, file=sys.stderr)
    sys.exit(1)
print(f"\ncheck_allocations: {len(names) - 2} pieces allocate 0 per packet "
      f"(harness {harness} per sample; control {harness + 1})")
PY
