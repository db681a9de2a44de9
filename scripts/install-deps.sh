#!/usr/bin/env bash
# Installs the Debian packages FlowMeter builds and tests with, if missing.
#   scripts/install-deps.sh          build + sample: libpcap-dev, libsqlite3-dev, python3
#   scripts/install-deps.sh --test   also what the tests start for real: tshark,
#                                    tcpreplay, tcpdump, prometheus (promtool), iproute2, curl,
#                                    chromium (dashboard test), tmux (flowmeter top test),
#                                    tor (with tor-gencert: RealTorTests' private network),
#                                    vnstat (the importer reads its database),
#                                    victoria-metrics and prometheus-alertmanager
#                                    (scripts/test_fleet.sh, the fleet and pool tests)
#                                    debootstrap and systemd-container (scripts/test_systemd.sh
#                                    boots Debian under systemd-nspawn), iputils-ping
set -euo pipefail
packages=(libpcap-dev libsqlite3-dev python3 pkg-config)
if [ "${1:-}" = "--test" ]; then
  packages+=(tshark tcpreplay tcpdump prometheus iproute2 procps curl chromium tmux tor)
  packages+=(vnstat victoria-metrics prometheus-alertmanager debootstrap systemd-container iputils-ping)
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
  # Packages with a daemon (tor) must not start it: the tests start their own,
  # in network namespaces, and a system tor would reach out to the internet.
  # policy-rc.d exit 101 is Debian's way to say "do not start services now".
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$guard" >/dev/null && $sudo chmod 755 "$guard"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$guard" ]; then $sudo rm -f "$guard"; fi
fi
