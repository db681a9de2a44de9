#!/usr/bin/env bash
# Builds FlowMeter, generates a sample capture of a busy relay host (three
# relay instances, exit, DNS, IPv6, VLANs, fragments, broken frames) and shows
# what FlowMeter makes of it: the per-category table, then a report and a
# forecast from the accounting store the replay filled.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product flowmeter >&2
bin=.build/release/flowmeter
out=.build/sample
rm -rf "$out" && mkdir -p "$out"
python3 scripts/gen_relay_capture.py --out "$out" --scale 4 --minutes 240 >&2
cd "$out"
../../$bin replay --torrc guardA.torrc --torrc exitB.torrc --torrc middleC.torrc \
  --consensus cached-microdesc-consensus --config flowmeter.yaml --db sample.db relay-host.pcap
echo
../../$bin report --db sample.db --by day
echo
../../$bin forecast --db sample.db --torrc guardA.torrc --torrc exitB.torrc \
  --quota 'provider 2TiB month 1 00:00 sum provider tz=UTC' --tz UTC
