#!/usr/bin/env bash
# The other end of scripts/footprint.sh: a SYN flood from spoofed sources
# (every packet a new flow) at the sender's top speed, until the agent's flow
# tables have grown to their ceiling (agent.flow_table_max, default 2^20
# entries), then a steady stretch. Prints each capture thread's minor page
# faults (/proc/PID/task/TID/stat) during the warm-up and during the steady
# stretch: growing, a table takes its pages as it splits buckets; at its
# ceiling it evicts and takes none. Also the whole process's faults, its
# resident memory, and packets counted + dropped against delivered.
#
#   sudo scripts/flood_faults.sh [BINARY]      default .build-release/release/flowmeter
# env: WARMUP (s, default 20), STEADY (s, default 20), FLOW_TABLE_MAX (entries,
# default the agent's default), BUFFER (agent.buffer_size, default auto).
# Needs root, trafgen (netsniff-ng), curl. Bounded: trafgen runs for
# WARMUP + STEADY seconds under timeout; only processes started here are stopped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
bin=${1:-.build-release/release/flowmeter}
WARMUP=${WARMUP:-20}
STEADY=${STEADY:-20}
TAG=$$
S=ffs$TAG; M=ffm$TAG; VS=vff$TAG; VM=vfg$TAG
WORK=$(mktemp -d)
PIDS=()
# shellcheck source=veth_bench_lib.sh
. "$here/veth_bench_lib.sh"
trap bench_cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }
command -v trafgen >/dev/null || { echo "needs trafgen: apt-get install netsniff-ng" >&2; exit 2; }

veth_pair "$S" "$M" "$VS" "$VM"
rx_packets() { ip netns exec "$M" cat "/sys/class/net/$VM/statistics/rx_packets"; }

# SYNs to the relay's ORPort from random addresses (10/8, spoofed) and ports.
cat > "$WORK/flood.trafgen" <<'TRAFGEN'
{
  0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00,
  0x45, 0x00, const16(40), drnd(2), 0x40, 0x00, 0x40, 0x06, csumip(14, 33),
  10, drnd(3), 198, 51, 100, 10,
  drnd(2), const16(9001), drnd(4), 0x00, 0x00, 0x00, 0x00,
  0x50, 0x02, const16(65535), 0x00, 0x00, 0x00, 0x00,
  fill(0x00, 6),
}
TRAFGEN
cat > "$WORK/flowmeter.yaml" <<YAML
host:
  addresses: [198.51.100.10]
relays:
  - name: guard1
    or_ports: ["198.51.100.10:9001"]
    addresses: [198.51.100.10]
agent:
  buffer_size: ${BUFFER:-auto}
${FLOW_TABLE_MAX:+  flow_table_max: $FLOW_TABLE_MAX}
YAML
chmod 755 "$WORK"
ip netns exec "$M" env STATE_DIRECTORY="$WORK" "$bin" run -i "$VM" --config "$WORK/flowmeter.yaml" --no-db \
    >"$WORK/agent.log" 2>&1 &
agent=$!; PIDS+=("$agent")
for _ in $(seq 200); do ip netns exec "$M" curl -sf -o /dev/null http://127.0.0.1:9477/metrics && break; sleep 0.05; done
sleep 1

# minflt STAT: field 10 of a stat file, counted after the ")" that ends
# the name (a thread's name has spaces: "capture0 eth0").
minflt() { sed 's/.*) //' "$1" | awk '{ print $8 }'; }
# faults: "name minflt" for each capture thread, then "process minflt".
faults() {
    local t
    for t in /proc/"$agent"/task/*; do
        case "$(cat "$t/comm")" in capture*) echo "$(tr ' ' _ < "$t/comm") $(minflt "$t/stat")";; esac
    done
    echo "process $(minflt /proc/"$agent"/stat)"
}
rss() { awk '/^VmRSS:/ { print $2 }' /proc/"$agent"/status; }
counted() {
    ip netns exec "$M" curl -sf http://127.0.0.1:9477/metrics |
        awk '/^flowmeter_packets_total|^flowmeter_undecoded_packets_total/ { n += $NF }
             /^flowmeter_drops_total{source="kernel_ring"/ { d += $NF }
             END { printf "%d %d\n", n, d }'
}
rx0=$(rx_packets)
echo "# $(date -u +%FT%TZ) SYN flood at top speed: ${WARMUP}s warm-up, ${STEADY}s steady; $(grep -o 'a [0-9]* MiB ring[^)]*)' "$WORK/agent.log" | head -1)"
faults > "$WORK/f0"
ip netns exec "$S" timeout $((WARMUP + STEADY)) trafgen -o "$VS" -i "$WORK/flood.trafgen" -P 1 >/dev/null 2>&1 &
PIDS+=("$!")
sleep "$WARMUP"
faults > "$WORK/f1"; r1=$(rss)
sleep "$STEADY"
faults > "$WORK/f2"; r2=$(rss)
sleep 2
delivered=$(( $(rx_packets) - rx0 ))
read -r n d < <(counted)
join "$WORK/f0" "$WORK/f1" | join - "$WORK/f2" |
    awk '{ printf "%-22s minor faults: warm-up %8d, steady %6d\n", $1, $3 - $2, $4 - $3 }'
echo "VmRSS after warm-up $r1 kB, after the steady stretch $r2 kB"
echo "delivered $delivered, counted $n, dropped (kernel ring) $d: counted + dropped = $((n + d))"
