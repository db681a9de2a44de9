#!/usr/bin/env bash
# Installs the Debian packages FlowMeter builds and tests with, if missing.
#   scripts/install-deps.sh          build + sample: libpcap-dev, libsqlite3-dev, python3
#   scripts/install-deps.sh --test   also what the tests start for real: tshark,
#                                    tcpreplay, tcpdump, prometheus (promtool), iproute2, curl,
#                                    vnstat and tor (the importer reads their files)
set -euo pipefail
packages=(libpcap-dev libsqlite3-dev python3 pkg-config)
if [ "${1:-}" = "--test" ]; then
  packages+=(tshark tcpreplay tcpdump prometheus iproute2 procps curl)
  packages+=(vnstat tor)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
