#!/usr/bin/env bash
# Live benchmark (BENCHMARKS.md): the highest send rate at which a capturer
# drops nothing, on a veth pair between two network namespaces this script
# creates, for FlowMeter (1 and 2 fanout handles; one capture thread feeding the
# engine's rings) and tcpdump -w /dev/null with the same snaplen and buffer, in
# one run. Also each capturer's CPU time per delivered packet.
#
# Never a pass/fail test: timings depend on the machine and its other load.
# Bounded: every trial sends at most $PACKETS packets and lasts at most
# $TRIAL_SECONDS seconds; traffic only crosses the veth pair made here
# (documentation addresses, no route in the meter namespace, nothing answers).
#
# usage: sudo scripts/live_benchmark.sh [flowmeter ...]   (root: netns, capture)
# With several binaries (an A/B), each round runs every capturer once per
# binary, interleaved, so a change in the machine's load hits both alike.
# CAPTURERS picks the trials (tcpdump, 1 and 2 fanout handles, rings);
# ROUNDS repeats the whole set. PERF_DATA=PREFIX also records 3 s of each
# FlowMeter trial with perf (PREFIX.BINARY-INDEX-CAPTURER), for perf report.
set -euo pipefail

FLOWMETERS=("${@:-.build/release/flowmeter}")
CAPTURERS=${CAPTURERS:-"tcpdump 1 2 rings"}
ROUNDS=${ROUNDS:-1}
PACKETS=${PACKETS:-300000}
TRIAL_SECONDS=${TRIAL_SECONDS:-20}
RATES=${RATES:-"50000 100000 150000 200000 300000 400000 600000 topspeed"}
# SENDER=tcpreplay (default) or trafgen (netsniff-ng) with SENDER_CPUS forks;
# trafgen uses its TX ring when the rate is topspeed.
SENDER=${SENDER:-tcpreplay}
SENDER_CPUS=${SENDER_CPUS:-1}
SNAPLEN=128
BUFFER_MIB=${BUFFER_MIB:-32}
TAG=$$
S=fmbs$TAG; M=fmbm$TAG; VS=vbs$TAG; VM=vbm$TAG
WORK=$(mktemp -d)
PIDS=()

. "$(dirname "$0")/veth_bench_lib.sh"
trap bench_cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, capture)" >&2; exit 2; }
for bin in "${FLOWMETERS[@]}"; do
    [ -x "$bin" ] || { echo "no flowmeter binary at $bin (swift build -c release)" >&2; exit 2; }
done
sender_tool=$SENDER; sender_package=tcpreplay
[ "$SENDER" = trafgen ] && sender_package=netsniff-ng
for need in "$sender_tool:$sender_package" tcpdump:tcpdump curl:curl; do
    command -v "${need%%:*}" >/dev/null || { echo "needs ${need%%:*}: apt-get install ${need##*:}" >&2; exit 2; }
done

veth_pair "$S" "$M" "$VS" "$VM"

# 4096 frames over 1024 flows (so the fanout hash has flows to spread),
# relay-host shaped: ORPort in and out, 60-200 byte frames.
python3 - "$WORK/bench.pcap" <<'PY'
import struct, sys
out = open(sys.argv[1], "wb")
out.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
def csum(h):
    s = sum(struct.unpack("!10H", h))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
relay = bytes([198, 51, 100, 10])
for i in range(4096):
    flow = i % 1024
    client = bytes([203, 0, 113, 1 + flow % 200])
    cport = 30000 + flow
    inbound = (i // 1024) % 2 == 0
    src, dst, sp, dp = (client, relay, cport, 9001) if inbound else (relay, client, 9001, cport)
    payload = b"\x5a" * (6 + (i * 37) % 140)
    tcp = struct.pack("!HHIIBBHHH", sp, dp, i, 1, 0x50, 0x18, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xffff, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    frame = b"\x02\0\0\0\0\x0b" + b"\x02\0\0\0\0\x0a" + b"\x08\x00" + ip + tcp
    out.write(struct.pack("<IIII", 1700000000, i, len(frame), len(frame)) + frame)
PY
# The same shape for trafgen, and the agent's configuration.
bench_files "$WORK" "$SNAPLEN" "$BUFFER_MIB"

rx_packets() { ip netns exec "$M" cat "/sys/class/net/$VM/statistics/rx_packets"; }

send() {  # rate → "delivered achieved_pps"; delivered = the meter interface's rx_packets delta
    local rate=$1 before after start end args=()
    before=$(rx_packets); start=$(date +%s.%N)
    if [ "$SENDER" = trafgen ]; then
        [ "$rate" = topspeed ] || args=(-b "${rate}pps")
        ip netns exec "$S" timeout "$TRIAL_SECONDS" trafgen -o "$VS" -i "$WORK/bench.trafgen" -P "$SENDER_CPUS" \
            -n "$PACKETS" "${args[@]}" >/dev/null 2>&1 || true
    else
        if [ "$rate" = topspeed ]; then args=(--topspeed); else args=(--pps="$rate"); fi
        ip netns exec "$S" timeout "$TRIAL_SECONDS" tcpreplay -q "${args[@]}" --limit="$PACKETS" --loop=0 -i "$VS" \
            "$WORK/bench.pcap" >/dev/null 2>&1 || true
    fi
    end=$(date +%s.%N); after=$(rx_packets)
    echo "$((after - before)) $(awk -v n=$((after - before)) -v a="$start" -v b="$end" 'BEGIN {printf "%d", n / (b - a)}')"
}

cpu_seconds() {  # "utime+stime utime stime" of a process, all its threads, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f %.3f %.3f", ($14 + $15) / hz, $14 / hz, $15 / hz}' "/proc/$1/stat"
}

cpu_delta() {  # "total user system" seconds between two cpu_seconds readings
    awk -v a="$1" -v b="$2" 'BEGIN {split(a, x, " "); split(b, y, " "); printf "%.2f %.2f %.2f", y[1] - x[1], y[2] - x[2], y[3] - x[3]}'
}

metric_sum() {  # sums /metrics samples whose name starts with $1
    ip netns exec "$M" curl -s -m 5 http://127.0.0.1:9477/metrics | awk -v p="$1" 'index($0, p) == 1 {s += $NF} END {printf "%d", s}'
}

report() {  # who rate delivered pps counted drops "cpu user system"
    local cpu user sys per split
    read -r cpu user sys <<< "$7"
    per=$(awk -v c="$cpu" -v n="$3" 'BEGIN {if (n > 0) printf "%d", c * 1e9 / n; else print "-"}')
    split=$(awk -v u="$user" -v s="$sys" -v n="$3" 'BEGIN {if (n > 0) printf "%d/%d", u * 1e9 / n, s * 1e9 / n; else print "-"}')
    printf '%-12s rate=%-9s delivered=%-8s achieved_pps=%-8s counted=%-8s drops=%-7s lost=%-7s cpu_s=%-6s cpu_ns_per_packet=%-5s user/sys=%s\n' \
        "$1" "$2" "$3" "$4" "$5" "$6" "$(($3 - $5))" "$cpu" "$per" "$split"
}

trial_flowmeter() {  # binary-index threads|rings rate
    local bin=${FLOWMETERS[$1]} label=flowmeter-$2 threads=$2 rate=$3 config="$WORK/flowmeter.yaml"
    [ "${#FLOWMETERS[@]}" = 1 ] || label="fm$1-$2"
    if [ "$threads" = rings ]; then
        config="$WORK/flowmeter-rings.yaml"; threads=0
        sed 's/^agent:$/agent:\n  capture_layout: rings/' "$WORK/flowmeter.yaml" > "$config"
    fi
    # State (the store, last-run.json) in the work directory: history on, as
    # the service runs, and nothing left in the machine's /var/lib/flowmeter.
    ip netns exec "$M" env STATE_DIRECTORY="$WORK" "$bin" run -i "$VM" --config "$config" --capture-threads "$threads" \
        >"$WORK/fm.log" 2>&1 &
    local pid=$!; PIDS+=("$pid")
    for _ in $(seq 50); do ip netns exec "$M" curl -s -o /dev/null -m 1 http://127.0.0.1:9477/metrics && break; sleep 0.1; done
    # The same CPU window as tcpdump's: start-up settled (1 s), then the
    # traffic and 1 s to drain, read before the scrapes below (rendering
    # /metrics for the benchmark is not the capture's cost).
    sleep 1
    local cpu0 sent pps counted drops cpu; cpu0=$(cpu_seconds "$pid")
    [ -z "${PERF_DATA:-}" ] || { perf record -q -g -o "$PERF_DATA.$1-$2" -p "$pid" -- sleep 3 >/dev/null 2>&1 & }
    read -r sent pps < <(send "$rate")
    sleep 1
    cpu=$(cpu_delta "$cpu0" "$(cpu_seconds "$pid")")
    counted=$(( $(metric_sum 'flowmeter_packets_total{') + $(metric_sum 'flowmeter_undecoded_packets_total{') ))
    drops=$(metric_sum 'flowmeter_drops_total{')
    kill -TERM "$pid"; wait "$pid" || true
    report "$label" "$rate" "$sent" "$pps" "$counted" "$drops" "$cpu"
}

trial_tcpdump() {  # rate
    local rate=$1
    ip netns exec "$M" tcpdump -i "$VM" -s "$SNAPLEN" -B $((BUFFER_MIB * 1024)) -w /dev/null >"$WORK/td.log" 2>&1 &
    local pid=$!; PIDS+=("$pid")
    sleep 1
    local cpu0 sent pps cpu captured drops; cpu0=$(cpu_seconds "$pid")
    read -r sent pps < <(send "$rate")
    sleep 1
    cpu=$(cpu_delta "$cpu0" "$(cpu_seconds "$pid")")
    kill -INT "$pid"; wait "$pid" || true
    captured=$(awk '/packets captured/ {print $1}' "$WORK/td.log")
    drops=$(awk '/dropped by kernel/ {print $1}' "$WORK/td.log")
    report tcpdump "$rate" "$sent" "$pps" "${captured:-0}" "${drops:-0}" "$cpu"
}

echo "# $(date -u +%FT%TZ) $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), snaplen $SNAPLEN, buffer ${BUFFER_MIB} MiB, $PACKETS packets per trial, sender $SENDER x$SENDER_CPUS"
for round in $(seq "$ROUNDS"); do
    for rate in $RATES; do
        for c in $CAPTURERS; do
            if [ "$c" = tcpdump ]; then trial_tcpdump "$rate"; continue; fi
            for i in "${!FLOWMETERS[@]}"; do trial_flowmeter "$i" "$c" "$rate"; done
        done
    done
done
