#!/usr/bin/env bash
# Boots Debian under its own systemd (systemd-nspawn) with Debian's tor as a
# relay, installs the FlowMeter package with apt and checks that the agent
# lives through what a real host does to it:
#
#   1. a fresh install on a host with no torrc at all: enable --now, the host counted
#   2. Debian's tor configured as a stock relay (its control socket and cookie
#      from Debian's defaults; no route out, so it sends nothing), the agent
#      restarted to read it
#   3. three `systemctl restart`
#   4. `systemctl kill -s KILL` and systemd's own restart
#   5. the whole container stopped and booted again
#   5b. a newer package installed with apt over the running agent
#   6. a host without systemd: `flowmeter run --user flowmeter` started by root
#
# After each: the unit is active, /metrics answers, `flowmeter report` reads
# the store and its totals only grow, every file in the state directory
# belongs to flowmeter, flowmeter_tor_control_up is 1 for the relay, and every
# journal line of the agent has FlowMeter's one format and its priority.
# Then `systemd-analyze security`, `apt remove` (history kept) and `apt purge`
# (state removed). Exits 0 only when every check holds; the last line is the
# unit's exposure, `exposure N.N`.
#
#   scripts/test_systemd.sh [out/flowmeter_VERSION_ARCH.deb]   (builds one with scripts/package.sh when none is given)
#
# The Debian root (debootstrap minbase, systemd, tor and the package's
# dependencies; no documentation) is made once, from the mirror apt uses on
# this machine, under out/systemd-root/KEY, KEY a hash of everything it is made
# from; a run boots an overlay of it and leaves it as it was. Network: the
# container gets a namespace of its own with one end of a veth pair, the
# other end in a second namespace; nothing touches the host's interfaces.
# Needs root. Every wait is bounded; everything started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

[ "$(id -u)" -eq 0 ] || { echo "test_systemd.sh: needs root (debootstrap, systemd-nspawn, ip netns)" >&2; exit 1; }
deb=${1:-}
if [ -z "$deb" ]; then
  scripts/package.sh
  deb=$(ls -t out/flowmeter_*.deb | head -1)
fi
[ -f "$deb" ] || { echo "test_systemd.sh: $deb: no such package" >&2; exit 1; }
deb=$(realpath "$deb")

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
command -v ping >/dev/null || need+=(iputils-ping)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# --- The Debian root, made once --------------------------------------------------------
# The suite and mirror apt uses here: CI machines are the same Debian with the same mirror.
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
mirror=$(apt-get indextargets --format '$(SITE) $(RELEASE) $(COMPONENT) $(TARGET_OF)' 2>/dev/null |
  awk -v s="$suite" '$2 == s && $3 == "main" && $4 == "deb" { print $1; exit }')
if [ -z "$mirror" ]; then
  mirror=$(grep -rhs -A3 '^Types: deb' /etc/apt/sources.list.d/*.sources | sed -n 's/^URIs: *\([^ ]*\).*/\1/p' | head -1)
fi
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | head -1)
[ -n "$mirror" ] || { echo "test_systemd.sh: no Debian mirror found in apt's sources" >&2; exit 1; }
arch=$(dpkg --print-architecture)
# The package's own dependencies are in the root, so `apt install ./flowmeter.deb` needs no network.
depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep -v '^$' | sort -u | paste -sd, -)
packages="systemd,systemd-sysv,tor,iproute2,$depends"
recipe_version=1   # bump when the recipe below changes
key=$(printf '%s\n' "$suite" "$mirror" "$arch" "$packages" "$recipe_version" | sha256sum | cut -c1-16)
cache=out/systemd-root
root="$cache/$key"
if [ ! -f "$root/.complete" ]; then
  echo "== making the Debian root ($suite from $mirror: $packages)"
  root_started=$SECONDS
  rm -rf "$cache"   # every other key is stale
  mkdir -p "$cache"
  making="$cache/making.$$"
  debootstrap --variant=minbase --include="$packages" "$suite" "$making" "$mirror" > "$cache/debootstrap.log" 2>&1 ||
    { tail -20 "$cache/debootstrap.log" >&2; echo "test_systemd.sh: debootstrap failed (log above)" >&2; exit 1; }
  # A host with no torrc at all to begin with; nothing that would wake up on its own.
  rm -f "$making/etc/tor/torrc"
  chroot "$making" systemctl mask --quiet apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
    e2scrub_all.timer fstrim.timer console-getty.service systemd-timesyncd.service 2>/dev/null || true
  echo fmtest > "$making/etc/hostname"
  chroot "$making" apt-get clean
  rm -rf "$making"/var/lib/apt/lists/* "$making"/usr/share/doc/* "$making"/usr/share/man/* "$making"/usr/share/locale/* \
    "$making"/usr/share/info/*
  touch "$making/.complete"
  mv "$making" "$root"
  echo "== root made in $((SECONDS - root_started))s: $(du -sh "$root" | cut -f1)"
fi

# --- Network, overlay, boot --------------------------------------------------------------
tag=$$
ns=fmsd$tag
peer_ns=fmsdp$tag
work=$(mktemp -d /tmp/fmsd.XXXXXX)
merged=$work/merged
nspawn_pid=""
ct=""
cleanup() {
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
  fi
  umount "$merged" 2>/dev/null || true
  rm -rf "$work"
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$peer_ns" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$ns"
ip netns add "$peer_ns"
ip link add "fmc$tag" netns "$ns" type veth peer name "fmp$tag" netns "$peer_ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add 198.18.78.1/24 dev "fmc$tag"
ip -n "$ns" link set "fmc$tag" up
# A default route out of an interface with no address, as a PPP or tunnel
# device can be: an unconfigured agent must capture there too. Its peer is in
# the same namespace, so what goes out there goes nowhere else.
ip -n "$ns" link add "fmr$tag" type veth peer name "fmq$tag"
ip -n "$ns" link set "fmr$tag" up
ip -n "$ns" link set "fmq$tag" up
ip -n "$ns" route add default dev "fmr$tag"
ip -n "$peer_ns" addr add 198.18.78.2/24 dev "fmp$tag"
ip -n "$peer_ns" link set "fmp$tag" up
mkdir -p "$work/upper" "$work/overlay-work" "$merged"
mount -t overlay overlay -o "lowerdir=$(realpath "$root"),upperdir=$work/upper,workdir=$work/overlay-work" "$merged"

boot() {
  systemd-nspawn --quiet --register=no --keep-unit --boot --directory="$merged" --machine="fmsd$tag" \
    --network-namespace-path="/run/netns/$ns" --console=passive --link-journal=no >> "$work/console.log" 2>&1 &
  nspawn_pid=$!
  ct=""
  for _ in $(seq 1 100); do   # its PID 1, at most ~10 s
    local child
    child=$(pgrep -P "$nspawn_pid" | head -1 || true)
    if [ -n "$child" ] && [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ]; then ct=$child; break; fi
    sleep 0.1
  done
  [ -n "$ct" ] || { cat "$work/console.log" >&2; echo "test_systemd.sh: the container did not boot" >&2; exit 1; }
  local state=""
  for _ in $(seq 1 300); do   # at most ~30 s; --wait needs D-Bus, which this root has not
    state=$(in_ct systemctl is-system-running 2>/dev/null || true)
    case "$state" in running | degraded) break ;; esac
    sleep 0.1
  done
  [ "$state" = running ] || { in_ct systemctl --failed --no-pager >&2 || true; fail "container booted $state"; }
}
power_off() {
  kill -TERM "$nspawn_pid"
  for _ in $(seq 1 300); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$nspawn_pid" 2>/dev/null; then fail "the container did not power off in 30 s"; kill -KILL "$nspawn_pid"; fi
  wait "$nspawn_pid" 2>/dev/null || true
  nspawn_pid=""
}
# A command inside the container, as root, with a clean environment.
in_ct() {
  nsenter --target "$ct" --all -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
scrape() { ip netns exec "$ns" curl -fsS --max-time 3 "http://127.0.0.1:${2:-9477}/$1"; }

boot_started=$SECONDS
boot
ok "Debian $suite booted under systemd in $((SECONDS - boot_started))s"

# --- The checks after each step ------------------------------------------------------
previous_total=0
relay=""   # the relay whose tor must answer, once one is configured
traffic() {  # packets the agent must see: ICMP, and TCP to the ORPort (refused: tor sends nothing)
  ip netns exec "$peer_ns" ping -c 5 -i 0.2 -W 1 198.18.78.1 >/dev/null || fail "ping across the veth"
  ip netns exec "$peer_ns" curl -s --max-time 1 http://198.18.78.1:9001/ >/dev/null 2>&1 || true
}
wait_active() {
  local s=""
  for _ in $(seq 1 150); do   # at most ~15 s (RestartSec is 5 s)
    s=$(in_ct systemctl is-active flowmeter || true)
    [ "$s" = active ] && scrape metrics >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  fail "flowmeter is $s or /metrics does not answer"
  in_ct journalctl -u flowmeter -n 20 --no-pager >&2 || true
  return 1
}
check() {  # check STEP [strict]: everything the issue asks after each step
  local step=$1 strict=${2:-strict}
  wait_active || return 0
  traffic
  local metrics
  # The capture threads hand over a block every 100 ms: the traffic is in /metrics within a second.
  for _ in $(seq 1 30); do
    metrics=$(scrape metrics 2>/dev/null || true)
    echo "$metrics" | grep -q '^flowmeter_packets_total{' && break
    sleep 0.1
  done
  echo "$metrics" | grep -q '^flowmeter_packets_total{' || fail "$step: no packet counted"
  if [ -n "$relay" ]; then
    local up=""
    for _ in $(seq 1 150); do   # tor is asked at start, then every 10 s
      up=$( { scrape metrics 2>/dev/null || true; } | awk -v k="flowmeter_tor_control_up{relay=\"$relay\"}" '$1 == k { print $2 }')
      [ "$up" = 1 ] && break
      sleep 0.1
    done
    [ "$up" = 1 ] && ok "$step: flowmeter_tor_control_up{relay=\"$relay\"} 1" ||
      { fail "$step: flowmeter_tor_control_up{relay=\"$relay\"} is '${up}'"; in_ct journalctl -u flowmeter -n 20 --no-pager >&2; }
  fi
  # Stop nothing: `report` reads the store the running agent writes.
  local report total
  report=$(in_ct flowmeter report --json --by month) || fail "$step: flowmeter report failed"
  total=$(echo "$report" | python3 -c 'import json,sys; print(sum(r.get("bytes", 0) for r in json.load(sys.stdin)["rows"]))' 2>/dev/null) ||
    { fail "$step: flowmeter report gave no JSON: $report"; total=0; }
  if [ "$total" -lt "$previous_total" ] || { [ "$strict" = strict ] && [ "$total" -eq "$previous_total" ] && [ "$previous_total" -gt 0 ]; }; then
    fail "$step: stored bytes $total after $previous_total"
  fi
  previous_total=$total
  local strangers
  strangers=$(in_ct find /var/lib/flowmeter ! -user flowmeter -printf '%u %p\n' || echo "(find failed)")
  [ -z "$strangers" ] || fail "$step: not flowmeter's: $strangers"
  check_journal "$step"
  ok "$step: active, /metrics answers, report reads $total stored bytes, state directory all flowmeter's"
}
# One format, `flowmeter: LEVEL: message`, each entry with the PRIORITY of its level.
check_journal() {
  in_ct journalctl -u flowmeter -o json --no-pager | python3 -c '
import json, re, sys
priorities = {"trace": 7, "debug": 7, "info": 6, "notice": 5, "warning": 4, "error": 3, "critical": 2}
bad = []
for line in sys.stdin:
    e = json.loads(line)
    if e.get("_PID") == "1" or e.get("SYSLOG_IDENTIFIER") == "systemd":
        continue   # systemd about the unit
    m = e.get("MESSAGE")
    m = bytes(m).decode("utf-8", "replace") if isinstance(m, list) else str(m)
    match = re.match(r"flowmeter: (\w+): ", m)
    if not match or priorities.get(match.group(1)) != int(e.get("PRIORITY", -1)):
        bad.append("PRIORITY=%s %s" % (e.get("PRIORITY"), m))
for b in bad: print(b)
' > "$work/journal-bad.txt" || fail "$1: the journal could not be read"
  if [ -s "$work/journal-bad.txt" ]; then
    fail "$1: journal lines not in FlowMeter's format or with the wrong priority:"
    cat "$work/journal-bad.txt" >&2
  fi
}

# --- 1. A fresh install, no torrc ------------------------------------------------------------
cp "$deb" "$merged/root/"
install_started=$SECONDS
in_ct sh -c "cd /root && apt-get install -y -q ./$(basename "$deb")" > "$work/apt.log" 2>&1 ||
  { cat "$work/apt.log" >&2; fail "apt install ./$(basename "$deb")"; exit 1; }
ok "apt install ./$(basename "$deb") in $((SECONDS - install_started))s (no network)"
in_ct systemctl enable --now flowmeter >/dev/null 2>&1 || fail "systemctl enable --now flowmeter"
check "fresh install, no torrc" loose
scrape metrics | grep -q 'flowmeter_packets_total{relay="host"' && ok "the host's traffic is counted under host" ||
  fail "no flowmeter_packets_total{relay=\"host\",...} on a host with no relay"
in_ct journalctl -u flowmeter --no-pager -o cat | grep -q "no relay is configured: .* on fmc$tag, fmr$tag " &&
  ok "no relay configured: the agent says so and captures on the interface with an address and the default route's" ||
  fail "the agent did not say it counts the host on fmc$tag and fmr$tag: $(in_ct journalctl -u flowmeter --no-pager -o cat | grep notice)"

# --- 2. Debian's tor as a stock relay ----------------------------------------------------------
relay=fmstock
# A relay as an operator writes it; the control socket and cookie come from
# Debian's /usr/share/tor/tor-service-defaults-torrc. Not DisableNetwork 1: tor
# (0.4.9) then never opens a unix ControlSocket, which it opens only after
# becoming User debian-tor, with networking on. It sends nothing all the same:
# the container's namespace has no route but the veth's /24, so every
# connection tor tries to the network fails in connect().
cat > "$merged/etc/tor/torrc" <<'EOF'
Nickname fmstock
ORPort 9001
ExitRelay 0
SocksPort 0
ContactInfo flowmeter test <nobody@example.org>
EOF
ip -n "$ns" route del default
[ -z "$(ip -n "$ns" route show default)" ] || { fail "the container's namespace has a default route"; exit 1; }
in_ct systemctl daemon-reload
in_ct systemctl restart tor || fail "systemctl restart tor"
in_ct systemctl start tor@default || fail "systemctl start tor@default"
for _ in $(seq 1 200); do in_ct test -S /run/tor/control && break; sleep 0.1; done
in_ct test -S /run/tor/control && ok "tor answers on /run/tor/control" || fail "tor made no /run/tor/control"
in_ct id -nG flowmeter | grep -qw debian-tor && ok "flowmeter is in debian-tor (postinst)" ||
  fail "flowmeter is not in debian-tor: $(in_ct id -nG flowmeter)"
in_ct systemctl restart flowmeter
check "tor configured, restarted" loose
in_ct systemctl reload flowmeter || fail "systemctl reload flowmeter"
reloaded=""
for _ in $(seq 1 50); do
  reloaded=$( { scrape metrics 2>/dev/null || true; } | awk '$1 == "flowmeter_config_reloads_total{result=\"success\"}" { print $2 }')
  [ "$reloaded" = 1 ] && break
  sleep 0.1
done
[ "$reloaded" = 1 ] && ok "systemctl reload: the agent reloaded (SIGHUP)" || fail "systemctl reload: reloads_total{result=\"success\"} is '$reloaded'"

# --- 3. Three restarts --------------------------------------------------------------------------
for i in 1 2 3; do
  traffic
  in_ct systemctl restart flowmeter || fail "systemctl restart flowmeter ($i)"
  check "restart $i"
done

# --- 4. SIGKILL, systemd restarts it ---------------------------------------------------------------
traffic
restarts_before=$(in_ct systemctl show -p NRestarts --value flowmeter)
in_ct systemctl kill -s KILL flowmeter
for _ in $(seq 1 150); do   # RestartSec=5s
  [ "$(in_ct systemctl show -p NRestarts --value flowmeter)" -gt "$restarts_before" ] && break
  sleep 0.1
done
[ "$(in_ct systemctl show -p NRestarts --value flowmeter)" -gt "$restarts_before" ] &&
  ok "systemd restarted flowmeter after SIGKILL" || fail "systemd did not restart flowmeter after SIGKILL"
check "SIGKILL and systemd's restart" loose   # counts since the last flush died with it

# --- 5. The whole container stopped and booted again ------------------------------------------------
traffic
power_off
boot
check "container stopped and booted"

# --- 5b. An upgrade: a newer package installed over the running agent ---------------------------------
# The same files under a higher version: what apt does on an upgrade (prerm
# upgrade, unpack, postinst configure OLD-VERSION) is what is tested, not the
# binary. postinst's try-restart moves the running agent to the new binary;
# the old one writes its final counts on the way out; an operator's edit of
# the conffile stays.
upgrade_dir="$work/upgrade"
mkdir -p "$upgrade_dir"
dpkg-deb -R "$deb" "$upgrade_dir/root"
sed -i 's/^Version: .*/&+upgrade1/' "$upgrade_dir/root/DEBIAN/control"
new_version=$(sed -n 's/^Version: //p' "$upgrade_dir/root/DEBIAN/control")
dpkg-deb -b --root-owner-group "$upgrade_dir/root" "$merged/root/flowmeter-upgrade.deb" >/dev/null
in_ct sh -c 'echo "# kept across upgrades (test_systemd.sh)" >> /etc/flowmeter/flowmeter.yaml'
traffic
pid_before=$(in_ct systemctl show -p MainPID --value flowmeter)
in_ct sh -c "cd /root && apt-get install -y -q ./flowmeter-upgrade.deb" > "$work/apt.log" 2>&1 ||
  { cat "$work/apt.log" >&2; fail "apt install of the upgrade"; }
[ "$(in_ct dpkg-query -W -f '${Version}' flowmeter)" = "$new_version" ] && ok "upgraded to $new_version with apt" ||
  fail "after the upgrade dpkg has $(in_ct dpkg-query -W -f '${Version}' flowmeter), not $new_version"
pid_after=$(in_ct systemctl show -p MainPID --value flowmeter)
[ "$pid_after" != "$pid_before" ] && [ "$pid_after" != 0 ] && ok "the upgrade restarted the running agent (pid $pid_before → $pid_after)" ||
  fail "the upgrade did not restart the agent (pid $pid_before → $pid_after)"
in_ct grep -q '^# kept across upgrades' /etc/flowmeter/flowmeter.yaml && ok "the operator's edit of flowmeter.yaml survived the upgrade" ||
  fail "the upgrade lost the operator's edit of /etc/flowmeter/flowmeter.yaml"
check "package upgraded over the running agent"

# --- 6. A host without systemd: started by root, dropping to the user -----------------------------------
in_ct systemctl stop flowmeter
in_ct sh -c 'flowmeter run --config /etc/flowmeter/flowmeter.yaml --user flowmeter > /run/flowmeter-by-hand.log 2>&1 & echo $!' > "$work/by-hand.pid"
by_hand=$(cat "$work/by-hand.pid")
wait_by_hand() {
  for _ in $(seq 1 150); do
    scrape metrics 2>/dev/null | grep -q "^flowmeter_tor_control_up{relay=\"$relay\"} 1" && return 0
    sleep 0.1
  done
  return 1
}
if wait_by_hand; then
  groups=$(in_ct cat "/proc/$by_hand/status" | awk '/^Groups:/ { $1 = ""; sub(/^ +/, ""); print }')
  tor_gid=$(in_ct getent group debian-tor | cut -d: -f3)
  echo " $groups " | grep -q " $tor_gid " && ok "without systemd: runs as flowmeter with its groups ($groups), tor's control socket answers" ||
    fail "without systemd: groups '$groups' lack debian-tor ($tor_gid)"
else
  fail "without systemd: the agent started by root did not reach tor's control socket"
  in_ct cat /run/flowmeter-by-hand.log >&2 || true
fi
in_ct sh -c "kill -TERM $by_hand" || true
for _ in $(seq 1 100); do in_ct sh -c "kill -0 $by_hand" 2>/dev/null || break; sleep 0.1; done
strangers=$(in_ct find /var/lib/flowmeter ! -user flowmeter -printf '%u %p\n')
[ -z "$strangers" ] || fail "after a run by hand, not flowmeter's: $strangers"
in_ct systemctl start flowmeter
check "started again by systemd after a run by hand" loose

# --- systemd-analyze security ------------------------------------------------------------------------
in_ct systemd-analyze security --no-pager flowmeter.service > "$work/security.txt" 2>&1 || true
grep -E '^(✗|✓)|Overall' "$work/security.txt" | grep -vE '^✓' || true
exposure=$(sed -n 's/.*Overall exposure level for flowmeter.service: \([0-9.]*\).*/\1/p' "$work/security.txt")
[ -n "$exposure" ] || { cat "$work/security.txt" >&2; fail "systemd-analyze security gave no exposure"; }

# --- apt remove keeps the history, apt purge removes it ----------------------------------------------------
in_ct apt-get remove -y -q flowmeter > "$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt remove"; }
in_ct test -s /var/lib/flowmeter/accounting.db && ok "apt remove keeps /var/lib/flowmeter/accounting.db" ||
  fail "apt remove lost the accounting store"
in_ct test -f /etc/flowmeter/flowmeter.yaml || fail "apt remove removed the conffile"
in_ct systemctl is-active flowmeter >/dev/null 2>&1 && fail "flowmeter still runs after apt remove"
in_ct apt-get purge -y -q flowmeter > "$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; fail "apt purge"; }
for f in /var/lib/flowmeter /etc/flowmeter /usr/bin/flowmeter /usr/lib/systemd/system/flowmeter.service; do
  in_ct test -e "$f" && fail "left after apt purge: $f"
done
ok "apt purge removes /var/lib/flowmeter and /etc/flowmeter"
power_off

echo "systemd test: ${failures} failure(s) in $((SECONDS - started))s"
echo "exposure ${exposure:-unmeasured}"
[ "$failures" -eq 0 ]
