#!/usr/bin/env bash
# The behaviour check behind every "replay JSON byte-identical" claim in
# BENCHMARKS.md: one line per document, `md5  exit-status  name`, of
#   - `replay --json` of the generated relay-host captures (every variant
#     gen_relay_capture.py writes: pcap, pcapng, other link types) with 1, 2
#     and 4 workers and the generator's torrcs, consensus and config, and
#   - `replay --workers 1 --json` of every capture in Tests/Corpus/pcap
#     (many deliberately broken, so the exit status is part of the line).
# Two binaries behave the same when their fingerprints are equal:
#
#   scripts/replay_fingerprint.sh BINARY > before.txt
#   scripts/replay_fingerprint.sh OTHER-BINARY > after.txt
#   diff before.txt after.txt && echo identical
#
# A change that moves a number on purpose (a flow-table layout changes
# flow_table.bytes_reserved) is compared with that number taken out:
#   SED_FILTER='s/"bytes_reserved" *: *[0-9]+//' scripts/replay_fingerprint.sh BINARY
# (an extended sed expression applied to every document before hashing).
#
# A release build takes about a minute; a debug build several.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: scripts/replay_fingerprint.sh FLOWMETER-BINARY}
corpus=Tests/Corpus/pcap
[ -x "$bin" ] || { echo "replay_fingerprint.sh: no binary at $bin" >&2; exit 2; }
[ -d "$corpus" ] || { echo "replay_fingerprint.sh: no corpus at $corpus" >&2; exit 2; }
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
python3 scripts/gen_relay_capture.py --out "$gen" >/dev/null || exit 2

line() {  # line NAME COMMAND...: md5 of standard output, exit status, name
  local status
  "${@:2}" > "$gen/out" 2>/dev/null; status=$?
  [ -z "${SED_FILTER:-}" ] || sed -E -i "$SED_FILTER" "$gen/out"
  printf '%s %3s %s\n' "$(md5sum < "$gen/out" | cut -d' ' -f1)" "$status" "$1"
}
bin=$(realpath "$bin")
# From inside the generated directory, with relative names: the documents
# name their files, and a temporary directory's name would differ every run.
for f in "$gen"/*.pcap "$gen"/*.pcapng; do
  for w in 1 2 4; do
    line "generated/$(basename "$f") workers=$w" env -C "$gen" "$bin" replay --workers "$w" --json \
      --torrc guardA.torrc --torrc exitB.torrc --torrc middleC.torrc \
      --consensus cached-microdesc-consensus --config flowmeter.yaml "$(basename "$f")"
  done
done
for f in "$corpus"/*/*; do
  case $f in *.tsv|*.md) continue ;; esac
  line "corpus/$(basename "$(dirname "$f")")/$(basename "$f")" "$bin" replay --workers 1 --json "$f"
done
