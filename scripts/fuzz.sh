#!/bin/sh
# Coverage-guided fuzzing with libFuzzer (Swift's -sanitize=fuzzer, with
# AddressSanitizer), from the separate Fuzz/ package so FlowMeter's own build
# never compiles it.
#
#   scripts/fuzz.sh --list           the target names
#   scripts/fuzz.sh NAME SECONDS     build NAME and fuzz it for SECONDS from its
#                                    seed corpus; exit 0 when nothing was found
#
# New inputs go to out/fuzz/NAME/corpus (kept between runs), a crashing input
# to out/fuzz/NAME/ (libFuzzer prints its path). The seed corpus is read only:
# Tests/Corpus/pcap for the decoder and readers, Fuzz/Corpus/NAME otherwise.
set -eu
cd "$(dirname "$0")/.."

targets="decoder pcap-buffered pcap-libpcap pcapng torrc consensus config-yaml quota-spec http-request tor-control top-status check-options vnstat-json vnstat-db tor-state store-reader spill-file prom-query"

product() {
    case "$1" in
        decoder) echo FuzzDecoder ;;
        pcap-buffered) echo FuzzPcapBuffered ;;
        pcap-libpcap) echo FuzzPcapLibpcap ;;
        pcapng) echo FuzzPcapng ;;
        torrc) echo FuzzTorrc ;;
        consensus) echo FuzzConsensus ;;
        config-yaml) echo FuzzConfigYAML ;;
        quota-spec) echo FuzzQuotaSpec ;;
        http-request) echo FuzzHTTPRequest ;;
        tor-control) echo FuzzTorControl ;;
        top-status) echo FuzzTopStatus ;;
        check-options) echo FuzzCheckOptions ;;
        vnstat-json) echo FuzzVnstatJSON ;;
        vnstat-db) echo FuzzVnstatDB ;;
        tor-state) echo FuzzTorState ;;
        store-reader) echo FuzzStoreReader ;;
        spill-file) echo FuzzSpillFile ;;
        prom-query) echo FuzzPromQuery ;;
        *) return 1 ;;
    esac
}

if [ "${1:-}" = "--list" ]; then
    for t in $targets; do echo "$t"; done
    exit 0
fi
if [ $# -ne 2 ] || ! product "$1" >/dev/null; then
    echo "usage: scripts/fuzz.sh --list | NAME SECONDS (NAME: $targets)" >&2
    exit 2
fi
name=$1
seconds=$2
case "$seconds" in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number" >&2; exit 2 ;; esac
exe=$(product "$name")
# Captures seed the decoder and the readers; each text parser has its own
# small seeds in Fuzz/Corpus/NAME.
case "$name" in
    decoder|pcap-*|pcapng) seeds=Tests/Corpus/pcap ;;
    *) seeds=Fuzz/Corpus/$name ;;
esac
[ -d "$seeds" ] || { echo "fuzz.sh: no seed corpus at $seeds" >&2; exit 2; }

(cd Fuzz && nice -n 19 swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library --product "$exe")
out=out/fuzz/$name
mkdir -p "$out/corpus"
# The targets that open SQLite files leave each input's query time limit
# pending on a dispatch timer for 2 s (by design), so libFuzzer, seeing more
# allocations than frees, would scan the whole heap for leaks after every
# input (ten times slower); for them a leak shows as growth past the RSS limit.
case "$name" in
    vnstat-db|store-reader) leaks=-detect_leaks=0 ;;
    *) leaks=-detect_leaks=1 ;;
esac
# -rss_limit_mb: a leak or a runaway allocation is a finding too.
# libFuzzer reports a crash with its own stack; Swift's backtracer, run on top
# of it, once hung 12 minutes on a trap here, holding the run open.
export SWIFT_BACKTRACE=enable=no
exec Fuzz/.build/release/"$exe" -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 "$leaks" \
    -artifact_prefix="$out/" "$out/corpus" "$seeds"
