#!/usr/bin/env bash
# Instructions per packet, marginal, from valgrind's callgrind (which counts
# instructions, not seconds, so machine load does not move it):
#   (Ir(N2) - Ir(N1)) / (N2 - N1)
# over every thread of `flowmeter replay --workers 1` (reader plus one worker),
# and the same for the libpcap read floor (scripts/pcap_floor.c), on the
# generator's Tor mix and 64-byte SYN flood. Start-up drops out.
#
#   scripts/callgrind_per_packet.sh [FLOWMETER_BINARY] [WORKDIR]
# Default binary: .build/release/flowmeter (build it with -c release first).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release/flowmeter}
work=${2:-out/callgrind}
n1=${N1:-50000}
n2=${N2:-250000}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$work/small" "$work/large"
# valgrind 3.19 rejects Swift 6.3's debug info: profile a stripped copy.
cp "$bin" "$work/flowmeter" && strip --strip-debug "$work/flowmeter"
cc -O2 -o "$work/pcap_floor" scripts/pcap_floor.c -lpcap
[ -f "$work/small/tor-mix.pcap" ] || python3 scripts/gen_bench_captures.py --out "$work/small" \
  --tor-mix-packets "$n1" --syn-packets "$n1" >&2
[ -f "$work/large/tor-mix.pcap" ] || python3 scripts/gen_bench_captures.py --out "$work/large" \
  --tor-mix-packets "$n2" --syn-packets "$n2" >&2

instructions() {  # callgrind's total Ir of a command, all threads
  local out; out=$(mktemp "$work/cg.XXXXXX")
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>&1
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
  rm -f "$out"
}
flowmeter() {
  local dir=$1 file=$2
  instructions "$work/flowmeter" replay "$dir/$file" --workers 1 --json \
    --torrc "$dir/guardA.torrc" --torrc "$dir/exitB.torrc" --torrc "$dir/middleC.torrc" \
    --config "$dir/flowmeter.yaml" --consensus "$dir/cached-microdesc-consensus"
}

printf '%-10s %12s %12s %8s\n' file flowmeter floor ratio
for f in tor-mix.pcap syn-flood.pcap; do
  a1=$(flowmeter "$work/small" "$f"); a2=$(flowmeter "$work/large" "$f")
  b1=$(instructions "$work/pcap_floor" "$work/small/$f"); b2=$(instructions "$work/pcap_floor" "$work/large/$f")
  python3 - "$f" "$a1" "$a2" "$b1" "$b2" "$n1" "$n2" <<'PY'
import sys
f, a1, a2, b1, b2, n1, n2 = sys.argv[1], *map(int, sys.argv[2:])
fm = (a2 - a1) / (n2 - n1); fl = (b2 - b1) / (n2 - n1)
print(f"{f:<10} {fm:12.1f} {fl:12.1f} {fm / fl:8.3f}")
PY
done
