#!/bin/sh
# Runs flowmeter's in-process benchmark and the peer tools Debian ships on the
# same capture files, and prints the BENCHMARKS.md ratio table (markdown).
#
#   python3 scripts/gen_bench_captures.py --out out/bench   # generate the inputs once
#   swift build -c release --product flowmeter
#   scripts/bench_peers.sh out/bench/tor-mix.pcap out/bench/syn-flood.pcap > out/bench/table.md
#
# Peers are timed as whole processes (median of PEER_RUNS, default 3, each
# under a PEER_TIMEOUT of 600 s) and compared with the libpcap floor that
# `flowmeter bench` measured for the same file in its own process. A peer that
# is not installed is listed as such. Needs: tcpdump, softflowd, pmacct,
# nfdump, argus-server, darkstat, tshark (apt-get install -y ...).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${FLOWMETER:-$here/.build/release/flowmeter}
runs=${PEER_RUNS:-3}
limit=${PEER_TIMEOUT:-600}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "Machine: $(uname -srm); $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); $(free -g | awk '/Mem:/{print $2}') GiB"
echo "Date: $(date -u +%Y-%m-%dT%H:%MZ); flowmeter: $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo

# median wall seconds and max RSS (KiB) of a command over $runs runs
timed() {
    : > "$work/times"
    i=0
    while [ $i -lt "$runs" ]; do
        if ! /usr/bin/time -f "%e %M" -o "$work/t1" timeout "$limit" "$@" > /dev/null 2> "$work/err"; then
            echo "fail"; return
        fi
        cat "$work/t1" >> "$work/times"
        i=$((i + 1))
    done
    sort -n "$work/times" | awk '{ t[NR] = $1; if ($2 > m) m = $2 } END { printf "%s %d\n", t[int((NR + 1) / 2)], m }'
}

pmacct_conf() {
    printf 'daemonize: false\npcap_savefile: %s\npcap_savefile_wait: false\nplugins: print\nprint_output_file: /dev/null\nprint_refresh_time: 3600\naggregate: src_host, dst_host, src_port, dst_port, proto\n' "$1" > "$work/pmacctd.conf"
}

for f in "$@"; do
    name=$(basename "$f")
    d=$(dirname "$f")
    "$bin" bench "$f" --repeat "${BENCH_REPEAT:-5}" --json \
      --torrc "$d/guardA.torrc" --torrc "$d/exitB.torrc" --torrc "$d/middleC.torrc" \
      --consensus "$d/cached-microdesc-consensus" --config "$d/flowmeter.yaml" > "$work/bench.json"
    python3 - "$work/bench.json" > "$work/rows" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))[0]
floor = r["stages"][0]
print(f"FLOOR {floor['median_pps']} {r['packets']}")
for s in r["stages"]:
    print(f"| flowmeter {s['name']} | {s['median_pps']/1e6:.3f} | {s['best_pps']/1e6:.3f} | {s['median_gbps']:.2f} | {s['median_ratio']:.3f} | {s['best_ratio']:.3f} | {s['peak_rss_bytes']/1048576:.0f} |")
PY
    floor=$(awk '/^FLOOR/{print $2}' "$work/rows")
    packets=$(awk '/^FLOOR/{print $3}' "$work/rows")
    echo "### $name ($packets packets)"
    echo
    echo "| tool | median Mpps | best Mpps | median Gbit/s | × floor (median) | × floor (best) | peak RSS MiB |"
    echo "|---|---|---|---|---|---|---|"
    grep -v '^FLOOR' "$work/rows"
    peer() {
        label=$1; shift
        if ! command -v "$1" > /dev/null; then echo "| $label | not installed | | | | | |"; return; fi
        res=$(timed "$@")
        if [ "$res" = fail ]; then echo "| $label | failed or over ${limit}s: $(head -c 120 "$work/err" | tr '\n|' '  ') | | | | | |"; return; fi
        set -- $res
        python3 -c "import sys; s=float(sys.argv[1]) or 1e-9; pps=int(sys.argv[2])/s; print(f'| {sys.argv[4]} | {pps/1e6:.3f} | | | {pps/float(sys.argv[3]):.3f} | | {int(sys.argv[5])/1024:.0f} |')" "$1" "$packets" "$floor" "$label" "$2"
    }
    peer "tcpdump -r F -w /dev/null" tcpdump -r "$f" -w /dev/null
    peer "softflowd -r F" softflowd -r "$f" -n 127.0.0.1:9 -d
    pmacct_conf "$f"
    peer "pmacctd (print plugin, 5-tuple)" pmacctd -f "$work/pmacctd.conf"
    mkdir -p "$work/nf"
    peer "nfpcapd -r F" nfpcapd -r "$f" -w "$work/nf"
    peer "argus -r F -w /dev/null" argus -r "$f" -w /dev/null
    peer "darkstat -r F" darkstat -r "$f" --no-daemon
    peer "tshark -z conv,tcp" tshark -r "$f" -q -z conv,tcp
    echo
done
