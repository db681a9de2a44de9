#!/usr/bin/env bash
# What the agent costs a small relay host, measured as an operator would:
# the packaged binary and configuration, run as the systemd unit runs them
# (its user, CAP_NET_RAW alone),
# capturing a veth pair in network namespaces made here while a sender
# sends a few thousand packets per second for 60 s; halfway through, two
# storms of 150 SIGHUPs (the file unchanged, then a new host model each time).
#
#   sudo scripts/footprint.sh [out/flowmeter_VERSION_ARCH.deb | BINARY]
#
# A .deb is unpacked (dpkg-deb -x, nothing is installed) and its
# /usr/bin/flowmeter runs with its /etc/flowmeter/flowmeter.yaml. A bare
# binary is stripped as scripts/package.sh strips it and runs with
# packaging/flowmeter.yaml. Without an argument the newest out/*.deb is
# used, and scripts/package.sh builds one first when there is none (about
# 10 minutes on 2 cores).
#
# Figures (VmRSS from /proc/PID/status, sampled every 0.1 s):
#   rss_kb             the most resident memory while the traffic flows
#                      before the storm (start-up and idle included)
#   peak_reload_rss_kb the most during either storm and the 7 s after it
#                      (retired configurations are kept 5 s)
#   binary_bytes       the installed binary's size
#   first_metrics_ms   from just before exec to the first 200 on /metrics
#                      (`ip netns exec` included, curl polling every 5 ms)
# Counting is checked too: the agent's packets against the meter interface's
# rx_packets, read after the sender stopped.
#
# env: RATE (packets/s, default 4000), SECONDS_OF_TRAFFIC (default 60),
# RELOADS (default 150), FLOWS_PORTS (source ports per client address,
# 1..256, default 32: 256 addresses x 32 ports = 8,192 flows, a busy relay's
# connections). Needs root, trafgen (netsniff-ng) and curl. Bounded: trafgen
# sends RATE x SECONDS_OF_TRAFFIC packets, every wait has a deadline, and
# only processes started here are stopped.
# The last line is: rss_kb N, peak_reload_rss_kb N, binary_bytes N, first_metrics_ms N
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."

RATE=${RATE:-4000}
DURATION=${SECONDS_OF_TRAFFIC:-60}
RELOADS=${RELOADS:-150}
FLOWS_PORTS=${FLOWS_PORTS:-32}
TAG=$$
S=fps$TAG; M=fpm$TAG; VS=vfs$TAG; VM=vfm$TAG
WORK=$(mktemp -d)
PIDS=()
# shellcheck source=veth_bench_lib.sh
. "$here/veth_bench_lib.sh"
trap bench_cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, capture)" >&2; exit 2; }
for need in trafgen:netsniff-ng curl:curl dpkg-deb:dpkg strip:binutils; do
    command -v "${need%%:*}" >/dev/null || { echo "needs ${need%%:*}: apt-get install ${need##*:}" >&2; exit 2; }
done

# --- The package --------------------------------------------------------------
target=${1:-}
if [ -z "$target" ]; then
    target=$(ls -t out/flowmeter_*.deb 2>/dev/null | head -1 || true)
    if [ -z "$target" ]; then
        scripts/package.sh >&2
        target=$(ls -t out/flowmeter_*.deb | head -1)
    fi
fi
root="$WORK/root"
mkdir -p "$root"
if [[ "$target" == *.deb ]]; then
    dpkg-deb -x "$target" "$root"
else
    install -D -m 0755 "$target" "$root/usr/bin/flowmeter"
    strip --remove-section=.comment --remove-section=.note "$root/usr/bin/flowmeter"
    install -D -m 0644 packaging/flowmeter.yaml "$root/etc/flowmeter/flowmeter.yaml"
fi
binary="$root/usr/bin/flowmeter"
binary_bytes=$(stat -c %s "$binary")
echo "# $(date -u +%FT%TZ) footprint of $target ($binary_bytes bytes installed), $RATE packets/s for ${DURATION}s, $RELOADS SIGHUPs"

# --- The namespaces -------------------------------------------------------------
veth_pair "$S" "$M" "$VS" "$VM"
rx_packets() { ip netns exec "$M" cat "/sys/class/net/$VM/statistics/rx_packets"; }

# Relay-host shaped TCP frames to an ORPort (documentation addresses, no
# route, nothing answers): 256 client addresses x FLOWS_PORTS source ports.
cat > "$WORK/traffic.trafgen" <<TRAFGEN
{
  0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00,
  0x45, 0x00, const16(66), drnd(2), 0x40, 0x00, 0x40, 0x06, csumip(14, 33),
  203, 0, 113, drnd(1), 198, 51, 100, 10,
  0x75, dinc(0x00, $((FLOWS_PORTS - 1)), 1), const16(9001), drnd(4), 0x00, 0x00, 0x00, 0x01,
  0x50, 0x18, const16(65535), 0x00, 0x00, 0x00, 0x00,
  fill(0x5a, 26),
}
TRAFGEN

# --- The agent, as the unit starts it ------------------------------------------
# The unit's command line (deploy/systemd/flowmeter.service) plus -i, since no
# torrc names an address here, run as its User= with its ambient CAP_NET_RAW
# (setpriv, as scripts/test_package.sh does). Where the package's account
# does not exist (the package was unpacked, not installed), the agent starts
# as root and drops to nobody (--user), as an init system without systemd
# would run it.
state="$WORK/state"; mkdir -p "$state"
chmod 755 "$WORK"
unit_user=$(sed -n 's/^User=//p' deploy/systemd/flowmeter.service)
as_unit=()
drop=()
if [ -n "$unit_user" ] && id "$unit_user" >/dev/null 2>&1 && command -v setpriv >/dev/null; then
    chown "$unit_user:" "$state"
    as_unit=(setpriv --reuid="$unit_user" --regid="$unit_user" --init-groups --inh-caps=+net_raw --ambient-caps=+net_raw)
    echo "running as $unit_user with CAP_NET_RAW, as the unit does"
else
    drop=(--user nobody)
    echo "no $unit_user account: running as root, dropping to nobody"
fi
started=$(date +%s%N)
# ip netns exec, setpriv and env each exec the next: $! is the agent.
ip netns exec "$M" "${as_unit[@]}" env STATE_DIRECTORY="$state" \
    "$binary" run --config "$root/etc/flowmeter/flowmeter.yaml" "${drop[@]}" -i "$VM" >"$WORK/agent.log" 2>&1 &
agent=$!; PIDS+=("$agent")
first_metrics_ms=""
for _ in $(seq 2000); do
    if ip netns exec "$M" curl -sf -o /dev/null "http://127.0.0.1:9477/metrics"; then
        first_metrics_ms=$(( ($(date +%s%N) - started) / 1000000 ))
        break
    fi
    kill -0 "$agent" 2>/dev/null || { echo "the agent stopped:" >&2; cat "$WORK/agent.log" >&2; exit 1; }
    sleep 0.005
done
[ -n "$first_metrics_ms" ] || { echo "no answer on /metrics within 10 s" >&2; cat "$WORK/agent.log" >&2; exit 1; }

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$agent/status"; }
minflt() { awk '{ print $10 }' "/proc/$agent/stat"; }
# most_rss SECONDS: the most VmRSS over that long, sampled every 0.1 s.
most_rss() {
    local most=0 r i
    for i in $(seq $(( $1 * 10 ))); do
        r=$(rss); [ "$r" -gt "$most" ] && most=$r
        sleep 0.1
    done
    echo "$most"
}
idle=$(most_rss 5)
echo "idle: VmRSS $(rss) kB (most over 5 s: $idle kB), first /metrics after $first_metrics_ms ms"

# --- Traffic, then the storm halfway --------------------------------------------
rx_before=$(rx_packets)
ip netns exec "$S" timeout $((DURATION + 30)) trafgen -o "$VS" -i "$WORK/traffic.trafgen" -P 1 \
    -n $((RATE * DURATION)) -b "${RATE}pps" >/dev/null 2>&1 &
sender=$!; PIDS+=("$sender")
half=$((DURATION / 2))
loaded=$(most_rss "$half")
[ "$idle" -gt "$loaded" ] && loaded=$idle
faults_before=$(minflt)
echo "traffic: most VmRSS over its first ${half}s (and idle) $loaded kB"
# storm CHANGE: RELOADS SIGHUPs 20 ms apart; with CHANGE=1 the config file
# alternates between two host models before each (a resolver added and
# removed), so every reload makes a new counting generation; without, the
# file stays as installed. Prints the most VmRSS during it and 7 s after.
config="$root/etc/flowmeter/flowmeter.yaml"
cp "$config" "$WORK/installed.yaml"
{ cat "$WORK/installed.yaml"; echo "resolvers: [192.0.2.53]"; } > "$WORK/changed.yaml"
storm() {
    (for i in $(seq "$RELOADS"); do
        if [ "$1" = 1 ]; then
            if [ $((i % 2)) = 1 ]; then cp "$WORK/changed.yaml" "$config"; else cp "$WORK/installed.yaml" "$config"; fi
        fi
        kill -HUP "$agent" 2>/dev/null || exit 0
        sleep 0.02
    done) &
    local pid=$! most
    most=$(most_rss $(( RELOADS / 50 + 8 )))
    wait "$pid" || true
    cp "$WORK/installed.yaml" "$config"
    echo "$most"
}
same=$(storm 0)
echo "storm of $RELOADS SIGHUPs, file unchanged: most VmRSS during it and 7 s after: $same kB ($(awk -v p="$same" -v s="$loaded" 'BEGIN { printf "%.2f", p / s }')x the steady figure)"
changed=$(storm 1)
echo "storm of $RELOADS SIGHUPs, each a new host model: most VmRSS during it and 7 s after: $changed kB ($(awk -v p="$changed" -v s="$loaded" 'BEGIN { printf "%.2f", p / s }')x); page faults since the traffic's first half: $(( $(minflt) - faults_before ))"
peak=$(( same > changed ? same : changed ))
wait "$sender" || true
sleep 1
delivered=$(( $(rx_packets) - rx_before ))
counted=$(ip netns exec "$M" curl -sf "http://127.0.0.1:9477/metrics" |
    awk '/^flowmeter_packets_total|^flowmeter_undecoded_packets_total/ { n += $NF } END { printf "%d", n }')
reloaded=$(grep -c "reloaded" "$WORK/agent.log" || true)
echo "counting: $counted packets counted (since start), $delivered delivered by the interface during the traffic; $reloaded reloads logged; VmRSS now $(rss) kB"
kill -TERM "$agent"
for _ in $(seq 100); do kill -0 "$agent" 2>/dev/null || break; sleep 0.1; done
echo "rss_kb $loaded, peak_reload_rss_kb $peak, binary_bytes $binary_bytes, first_metrics_ms $first_metrics_ms"
