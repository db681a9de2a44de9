# Sourced by scripts/live_benchmark.sh, callgrind_live.sh, footprint.sh and
# flood_faults.sh: the veth pair between two network namespaces they measure
# on, and the traffic and configuration they share. Traffic only crosses that
# pair (documentation addresses, no route in the meter namespace, nothing
# answers).

# bench_cleanup: for `trap bench_cleanup EXIT`. Ends the processes the
# script started ($PIDS, TERM then KILL), deletes its namespaces ($S, $M)
# and its work directory ($WORK).
bench_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$S" 2>/dev/null || true
    ip netns del "$M" 2>/dev/null || true
    rm -rf "$WORK"
}

# veth_pair SENDER_NS METER_NS SENDER_IF METER_IF: both namespaces (IPv6 off,
# so the kernel sends nothing of its own), joined by one veth pair, up.
veth_pair() {
    local s=$1 m=$2 vs=$3 vm=$4 ns
    ip netns add "$s"; ip netns add "$m"
    for ns in "$s" "$m"; do
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        ip -n "$ns" link set lo up
    done
    ip link add "$vs" netns "$s" type veth peer name "$vm" netns "$m"
    ip -n "$s" link set "$vs" up
    ip -n "$m" link set "$vm" up
}

# bench_files DIR SNAPLEN BUFFER_MIB: DIR/bench.trafgen (relay-host shaped
# TCP frames: 256 client addresses x 4 ports = 1,024 ORPort flows, 80 bytes;
# a random port per packet would make every packet a new flow: a SYN flood,
# a different benchmark) and DIR/flowmeter.yaml (that relay, the snaplen and
# the per-handle buffer).
bench_files() {
    local dir=$1 snaplen=$2 buffer_mib=$3
    cat > "$dir/bench.trafgen" <<'TRAFGEN'
{
  0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00,
  0x45, 0x00, const16(66), drnd(2), 0x40, 0x00, 0x40, 0x06, csumip(14, 33),
  203, 0, 113, drnd(1), 198, 51, 100, 10,
  0x75, dinc(0x30, 0x33, 1), const16(9001), drnd(4), 0x00, 0x00, 0x00, 0x01,
  0x50, 0x18, const16(65535), 0x00, 0x00, 0x00, 0x00,
  fill(0x5a, 26),
}
TRAFGEN
    cat > "$dir/flowmeter.yaml" <<YAML
host:
  addresses: [198.51.100.10]
relays:
  - name: guard1
    or_ports: ["198.51.100.10:9001"]
    addresses: [198.51.100.10]
agent:
  snaplen: $snaplen
  buffer_size: ${buffer_mib}MiB
YAML
}
