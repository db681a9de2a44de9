#!/usr/bin/env bash
# Instructions per packet on the live path, FlowMeter against tcpdump, from
# valgrind's callgrind: the same veth traffic as scripts/live_benchmark.sh,
# but counted in instructions, which the shared machine's load does not move
# (live_benchmark.sh's CPU nanoseconds moved ±20 % between rounds).
#
# Each capturer runs under callgrind in a network namespace made here, twice,
# for the same fixed lifetime: once while the sender sends $PACKETS/5 packets
# at $RATE per second, once while it sends $PACKETS. The figure is the
# difference of the two runs' whole-process instructions (every thread) over
# the difference of the packets the meter interface delivered: start-up,
# shutdown and idle wake-ups are the same in both runs and drop out, as in
# scripts/callgrind_per_packet.sh. The rate is slow because valgrind runs the
# capturer ~50x slower (a backlog would only move the work in time; the
# capturer's drop counters are printed so a lost packet would show).
# (callgrind_control's dumps are not used: vgdb cannot reach a process that
# has dropped root, as both tcpdump and FlowMeter do after opening the
# capture.)
#
#   sudo scripts/callgrind_live.sh [FLOWMETER_BINARY ...]
# env: PACKETS (default 100000), RATE (pps, default 4000), CAPTURERS
# ("tcpdump 1 2": tcpdump, FlowMeter with 1 and 2 fanout handles), KEEP (a
# directory to keep callgrind's outputs in, for callgrind_annotate),
# CALLGRIND_ARGS (more valgrind options, e.g. --dump-instr=yes).
# Never a pass/fail test. Bounded: trafgen sends at most $PACKETS packets,
# each phase has a timeout, and only processes started here are killed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."

FLOWMETERS=("${@:-.build/release/flowmeter}")
CAPTURERS=${CAPTURERS:-"tcpdump 1 2"}
PACKETS=${PACKETS:-100000}
RATE=${RATE:-4000}
SNAPLEN=128
TAG=$$
S=fmcs$TAG; M=fmcm$TAG; VS=vcs$TAG; VM=vcm$TAG
WORK=$(mktemp -d)
PIDS=()

. "$here/veth_bench_lib.sh"
trap bench_cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, capture)" >&2; exit 2; }
for need in valgrind:valgrind trafgen:netsniff-ng tcpdump:tcpdump curl:curl; do
    command -v "${need%%:*}" >/dev/null || { echo "needs ${need%%:*}: apt-get install ${need##*:}" >&2; exit 2; }
done
for i in "${!FLOWMETERS[@]}"; do
    [ -x "${FLOWMETERS[$i]}" ] || { echo "no flowmeter binary at ${FLOWMETERS[$i]}" >&2; exit 2; }
    # valgrind 3.19 rejects Swift 6.3's debug info: run a stripped copy.
    cp "${FLOWMETERS[$i]}" "$WORK/flowmeter$i" && strip --strip-debug "$WORK/flowmeter$i"
done

veth_pair "$S" "$M" "$VS" "$VM"
# live_benchmark.sh's traffic (1,024 ORPort flows, 80-byte frames) and configuration.
bench_files "$WORK" "$SNAPLEN" 32

rx_packets() { ip netns exec "$M" cat "/sys/class/net/$VM/statistics/rx_packets"; }
chmod 1777 "$WORK"  # the capturers write callgrind's output after dropping root
lifetime=$(( 15 + (PACKETS + RATE - 1) / RATE + 8 ))

# label packets command... → "delivered instructions" of one run under callgrind.
run_once() {
    local label=$1 packets=$2; shift 2
    local out="$WORK/cg.$label.$packets"
    mkdir -p "$WORK/state-$label-$packets"
    # `ip netns exec` and env exec valgrind, so $! is the measured process.
    ip netns exec "$M" env STATE_DIRECTORY="$WORK/state-$label-$packets" \
        valgrind --tool=callgrind ${CALLGRIND_ARGS:-} --callgrind-out-file="$out" "$@" >"$out.log" 2>&1 &
    local pid=$! t0=$SECONDS; PIDS+=("$pid")
    sleep 15  # start-up under valgrind
    kill -0 "$pid" 2>/dev/null || { echo "$label did not start:" >&2; tail -5 "$out.log" >&2; return 1; }
    local before after; before=$(rx_packets)
    ip netns exec "$S" timeout $((lifetime - 15)) trafgen -o "$VS" -i "$WORK/bench.trafgen" -P 1 \
        -n "$packets" -b "${RATE}pps" >/dev/null 2>&1 || true
    sleep $((lifetime - (SECONDS - t0)))
    after=$(rx_packets)
    kill -INT "$pid" 2>/dev/null || true  # tcpdump ends on SIGINT, FlowMeter on SIGINT or SIGTERM
    for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    wait "$pid" 2>/dev/null || true
    [ -s "$out" ] || { echo "$label wrote no callgrind output:" >&2; tail -5 "$out.log" >&2; return 1; }
    [ -z "${KEEP:-}" ] || { mkdir -p "$KEEP" && cp "$out" "$KEEP/"; }
    echo "$((after - before)) $(awk '/^(summary|totals):/ { print $2; exit }' "$out")"
}

measure() {  # label command...
    local label=$1; shift
    local n1 i1 n2 i2
    read -r n1 i1 < <(run_once "$label" $((PACKETS / 5)) "$@")
    read -r n2 i2 < <(run_once "$label" "$PACKETS" "$@")
    python3 - "$label" "$n1" "$i1" "$n2" "$i2" <<'PY'
import sys
label, n1, i1, n2, i2 = sys.argv[1], *map(int, sys.argv[2:])
print(f"{label:<16} packets {n1} / {n2}  instructions {i1} / {i2}  marginal instr/packet {(i2 - i1) / (n2 - n1):8.1f}")
PY
}

echo "# $(date -u +%FT%TZ) callgrind, $PACKETS packets at $RATE pps, 1,024 flows, snaplen $SNAPLEN"
for c in $CAPTURERS; do
    if [ "$c" = tcpdump ]; then
        measure tcpdump tcpdump -Z root -i "$VM" -s "$SNAPLEN" -B 32768 -w /dev/null
        continue
    fi
    for i in "${!FLOWMETERS[@]}"; do
        measure "fm$i-fanout$c" "$WORK/flowmeter$i" run -i "$VM" \
            --config "$WORK/flowmeter.yaml" --capture-threads "$c"
    done
done
