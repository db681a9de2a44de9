#!/usr/bin/env bash
# Installs the package built by scripts/package.sh, checks its files (manual
# pages with FILES and EXAMPLES, every docs/NAME.md they name installed), runs
# the installed unit's ExecStart as the unit's User= with its ambient
# CAP_NET_RAW inside a network namespace of its own, scrapes it, then purges
# the package and checks that nothing of it is left. Needs root, iproute2,
# curl, ping. Every wait is bounded; everything started here is stopped by its
# PID. (scripts/test_systemd.sh runs the unit under a real systemd.)
#
#   scripts/test_package.sh [out/flowmeter_VERSION_ARCH.deb]
#
# Network: namespace fmpkg (the agent, veth fmpkg1, 10.213.77.1/30) and
# namespace fmpkgpeer (veth fmpkg0, 10.213.77.2/30); nothing touches the host's
# own interfaces or routes.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "test_package.sh: needs root (apt-get, ip netns)" >&2; exit 1; }
deb=${1:-$(ls -t out/flowmeter_*.deb 2>/dev/null | head -1)}
[ -f "$deb" ] || { echo "test_package.sh: no package; run scripts/package.sh first" >&2; exit 1; }
missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v curl >/dev/null || missing+=(curl)
command -v ping >/dev/null || missing+=(iputils-ping)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

ns=fmpkg
peer_ns=fmpkgpeer
agent_pid=""
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

cleanup() {
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then kill -KILL "$agent_pid" 2>/dev/null || true; fi
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$peer_ns" 2>/dev/null || true
  if dpkg-query -W -f='${Status}' flowmeter 2>/dev/null | grep -q installed; then
    dpkg --purge flowmeter >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

# --- Install --------------------------------------------------------------------
# An agent run by hand as root before the package came leaves a root-owned
# store in the default state directory; the install must hand it over. Made
# only when the directory is absent, so a machine's real state is never touched.
left_by_root=""
if [ ! -e /var/lib/flowmeter ]; then
  install -d -m 0755 /var/lib/flowmeter
  : > /var/lib/flowmeter/accounting.db
  : > /var/lib/flowmeter/accounting.db-wal
  left_by_root=1
fi
started=$SECONDS
DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq "./$deb" >/dev/null
install_seconds=$((SECONDS - started))
echo "installed $deb in ${install_seconds}s"

if ldd /usr/bin/flowmeter | grep -i swift; then fail "/usr/bin/flowmeter links a Swift library (above)"; else ok "ldd: no Swift library"; fi
for f in /usr/lib/systemd/system/flowmeter.service /etc/flowmeter/flowmeter.yaml /usr/lib/sysusers.d/flowmeter.conf \
         /usr/share/man/man1/flowmeter.1.gz /usr/share/man/man1/flowmeter-run.1.gz \
         /usr/share/bash-completion/completions/flowmeter /usr/share/zsh/vendor-completions/_flowmeter \
         /usr/share/fish/vendor_completions.d/flowmeter.fish /usr/share/doc/flowmeter/copyright \
         /usr/share/doc/flowmeter/changelog.Debian.gz; do
  [ -s "$f" ] || fail "missing $f"
done
dpkg-query -W -f='${Conffiles}\n' flowmeter | grep -q '/etc/flowmeter/flowmeter.yaml' || fail "flowmeter.yaml is not a conffile"
getent passwd flowmeter >/dev/null && ok "user flowmeter exists" || fail "no user flowmeter"
[ "$(stat -c %U:%a /var/lib/flowmeter 2>/dev/null)" = "flowmeter:750" ] && ok "/var/lib/flowmeter flowmeter 0750" ||
  fail "/var/lib/flowmeter: $(stat -c %U:%a /var/lib/flowmeter 2>&1)"
if [ -n "$left_by_root" ]; then
  for f in accounting.db accounting.db-wal; do
    [ "$(stat -c %U /var/lib/flowmeter/$f 2>/dev/null)" = flowmeter ] && ok "$f left by root handed to flowmeter" ||
      fail "/var/lib/flowmeter/$f: owner $(stat -c %U /var/lib/flowmeter/$f 2>&1), expected flowmeter"
  done
  rm -f /var/lib/flowmeter/accounting.db /var/lib/flowmeter/accounting.db-wal
fi
/usr/bin/flowmeter --version
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /usr/lib/systemd/system/flowmeter.service && ok "systemd-analyze verify" ||
    fail "systemd-analyze verify (above)"
fi

# Every docs/NAME.md that --help or a manual page names is installed.
names=$( { for page in /usr/share/man/man1/flowmeter*.1.gz; do zcat "$page"; done
           /usr/bin/flowmeter --help
           for c in $(/usr/bin/flowmeter --help | awk '/^SUBCOMMANDS:/ { s = 1; next } s && /^  [a-z]/ { print $1 }'); do
             /usr/bin/flowmeter "$c" --help 2>/dev/null || true
           done; } | grep -o 'docs/[a-z-]*\.md' | sort -u)
for name in $names; do
  [ -e "/usr/share/doc/flowmeter/$name" ] || [ -e "/usr/share/doc/flowmeter/$name.gz" ] ||
    fail "$name is named in --help or a manual page but not installed under /usr/share/doc/flowmeter"
done
ok "every document --help and the manual pages name is installed ($(echo "$names" | wc -w) names)"
for page in /usr/share/man/man1/flowmeter*.1.gz; do
  zcat "$page" | grep -q '^\.Sh FILES' || fail "$(basename "$page"): no FILES section"
  zcat "$page" | grep -q '^\.Sh EXIT STATUS' || fail "$(basename "$page"): no EXIT STATUS section"
done
for page in flowmeter flowmeter-run flowmeter-report flowmeter-forecast flowmeter-check flowmeter-import; do
  zcat "/usr/share/man/man1/$page.1.gz" | grep -q '^\.Sh EXAMPLES' || fail "$page(1): no EXAMPLES section"
done
[ "$(zcat /usr/share/man/man1/flowmeter-check.1.gz | grep -c -- '--version')" -le 2 ] ||
  fail "flowmeter-check(1) names --version more than once in its synopsis and options"

# --- Run the unit's ExecStart in a namespace, as the unit does ------------------------------
exec_start=$(sed -n 's/^ExecStart=//p' /usr/lib/systemd/system/flowmeter.service)
unit_user=$(sed -n 's/^User=//p' /usr/lib/systemd/system/flowmeter.service)
[ -n "$exec_start" ] && [ -n "$unit_user" ] || fail "no ExecStart or User in the unit"
# The shipped config names no interface, so the agent would capture on the
# namespace's interfaces anyway; -i makes the test's veth the one.
read -r -a command <<< "$exec_start"
command+=(-i fmpkg1)
# User= and AmbientCapabilities=CAP_NET_RAW, with the user's groups, as systemd starts it.
command=(setpriv --reuid="$unit_user" --regid="$unit_user" --init-groups --inh-caps=+net_raw --ambient-caps=+net_raw
         env STATE_DIRECTORY=/var/lib/flowmeter "${command[@]}")
echo "running: ip netns exec $ns ${command[*]}"

ip netns add "$ns"
ip netns add "$peer_ns"
ip link add fmpkg0 netns "$peer_ns" type veth peer name fmpkg1 netns "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add 10.213.77.1/30 dev fmpkg1
ip -n "$ns" link set fmpkg1 up
ip -n "$peer_ns" addr add 10.213.77.2/30 dev fmpkg0
ip -n "$peer_ns" link set fmpkg0 up

log=$(mktemp)
ip netns exec "$ns" timeout -s TERM 120 "${command[@]}" 2> "$log" &
agent_pid=$!   # timeout's PID; it passes SIGTERM on to the agent
scrape() { ip netns exec "$ns" curl -fsS --max-time 2 "http://127.0.0.1:9477/$1"; }
up=0
for _ in $(seq 1 100); do   # at most ~20 s
  if scrape metrics >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$agent_pid" 2>/dev/null || break
  sleep 0.2
done
if [ "$up" -eq 1 ]; then
  ok "agent serves /metrics"
  agent_child=$(pgrep -P "$agent_pid" | head -1 || true)
  runs_as=$(ps -o user= -p "$agent_child" 2>/dev/null | tr -d ' ' || true)
  [ "$runs_as" = "$unit_user" ] && ok "agent runs as $runs_as" || fail "agent runs as '$runs_as', not $unit_user"
  ip netns exec "$peer_ns" ping -c 5 -i 0.2 -W 1 10.213.77.1 >/dev/null && ok "ping across the veth" || fail "ping"
  sleep 0.5   # one TPACKET_V3 block timeout (100 ms) and then some
  metrics=$(scrape metrics)
  echo "$metrics" | grep -E '^flowmeter_(packets_total|build_info|capture_up)' | grep -v ' 0$' || true
  packets=$(echo "$metrics" | awk '/^flowmeter_packets_total\{/ { n += $NF } END { print n + 0 }')
  [ "$packets" -ge 10 ] && ok "flowmeter_packets_total sums to $packets (10 ICMP packets sent)" ||
    fail "flowmeter_packets_total sums to $packets, expected at least 10"
else
  fail "the agent did not serve /metrics; its standard error:"
  cat "$log" >&2
fi

if kill -0 "$agent_pid" 2>/dev/null; then
  kill -TERM "$agent_pid"
  status=0
  for _ in $(seq 1 50); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$agent_pid" 2>/dev/null; then fail "agent still running 10 s after SIGTERM"; kill -KILL "$agent_pid"; fi
  wait "$agent_pid" || status=$?
  [ "$status" -eq 0 ] && ok "agent stopped cleanly (exit 0)" || fail "agent exit status $status after SIGTERM"
fi
agent_pid=""
echo "-- agent standard error:"; cat "$log"; rm -f "$log"
ip netns del "$ns"; ip netns del "$peer_ns"

# --- Purge -----------------------------------------------------------------------------
dpkg --purge flowmeter >/dev/null
for f in /usr/bin/flowmeter /etc/flowmeter /var/lib/flowmeter /usr/lib/systemd/system/flowmeter.service \
         /usr/lib/sysusers.d/flowmeter.conf /usr/share/doc/flowmeter /usr/share/man/man1/flowmeter.1.gz; do
  [ -e "$f" ] && fail "left after purge: $f"
done
dpkg-query -W flowmeter >/dev/null 2>&1 && fail "dpkg still knows flowmeter"
[ "$failures" -eq 0 ] && ok "purge leaves no file behind"
# Debian keeps system users on purge (files they own may outlive the package).
getent passwd flowmeter >/dev/null && echo "note: user flowmeter kept after purge, as Debian policy does for system users"

echo "install ${install_seconds}s; $failures failure(s)"
[ "$failures" -eq 0 ]
