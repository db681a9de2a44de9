#!/usr/bin/env bash
# End-to-end test of the fleet deployment (deploy/fleet) with the real engines:
# three FlowMeter agents, each in a network namespace of its own with traffic
# from a bounded sender on its own veth pair, each with its own vmagent
# (deploy/fleet/relay/vmagent.yml, host label set at the source); one central
# VictoriaMetrics, vmalert (deploy/prometheus rules and `flowmeter fleet rules`)
# and Alertmanager, and a small webhook receiver, in a central namespace.
#
# Checks:
#   1. `flowmeter fleet check` goes OK -> WARNING -> CRITICAL as the pool fills;
#   2. the central store is stopped for FLEET_OUTAGE_SECONDS (default 120) while
#      traffic goes on; afterwards no host's series has a gap (vmagent's disk
#      queue replays) and the central totals still equal every agent's own
#      /metrics totals, to the byte and packet; the pool's use equals their sum;
#   3. `flowmeter fleet report` and `forecast` agree with the agents;
#   4. alerts reach the webhook through Alertmanager: the pool over its limit, a
#      host's own quota over 80 %, a traffic surge (counted again via its API).
# Last line: hosts N, central totals match: yes|no, gap after outage: N s, alerts delivered: N
# Exit 0 only when every check holds.
#
#   scripts/test_fleet.sh        # FLOWMETER=path/to/flowmeter to pick the binary
#
# Needs root, iproute2, curl, python3 and Debian's victoria-metrics and
# prometheus-alertmanager (scripts/install-deps.sh --test). Network: namespaces
# fmf<pid>… and veth pairs made here, addresses in 198.18.0.0/15 (set aside for
# network tests, RFC 2544); every server binds an address inside them. Every
# wait and every sender is bounded; everything started is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

outage=${FLEET_OUTAGE_SECONDS:-120}
hosts=3
scrape=1            # seconds between scrapes in the test (15 s in deploy/fleet)
[ "$(id -u)" -eq 0 ] || { echo "test_fleet.sh: needs root (ip netns)" >&2; exit 1; }
for tool in ip curl python3 victoria-metrics vmagent vmalert prometheus-alertmanager; do
  command -v "$tool" >/dev/null || { echo "test_fleet.sh: needs $tool (scripts/install-deps.sh --test)" >&2; exit 1; }
done
flowmeter=${FLOWMETER:-}
for candidate in .build-release-static/release/flowmeter .build/release/flowmeter .build/debug/flowmeter; do
  [ -n "$flowmeter" ] || { [ -x "$candidate" ] && flowmeter=$candidate; } || true
done
[ -x "$flowmeter" ] || { echo "test_fleet.sh: no flowmeter binary; run swift build or set FLOWMETER" >&2; exit 1; }
flowmeter=$(cd "$(dirname "$flowmeter")" && pwd)/$(basename "$flowmeter")

tag=$(( $$ % 100000 ))
central=fmf${tag}c
dir=$(mktemp -d -t fmfleet.XXXXXX)
store=198.18.200.1
store_url=http://$store:8428
pids=()
namespaces=()
failures=0
started_at=$SECONDS
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }
say() { printf '[%3ds] %s\n' $((SECONDS - started_at)) "$*"; }

cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $dir" >&2; else rm -rf "$dir"; fi
}
trap cleanup EXIT

# start NAME NAMESPACE COMMAND...: in the background, output in $dir/NAME.log.
# `ip netns exec` execs the command, so $! is the program's own PID.
start() {
  local name=$1 ns=$2; shift 2
  ip netns exec "$ns" "$@" >"$dir/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
}
# wait_for SECONDS COMMAND...: polls every 0.2 s until COMMAND succeeds.
wait_for() {
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  while [ $SECONDS -lt $deadline ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  "$@" >/dev/null 2>&1
}
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
query() {  # query EXPR: the instant query's JSON, from the central namespace
  in_ns "$central" curl -fsS -m 10 -G "$store_url/api/v1/query" --data-urlencode "query=$1" ${2:+--data-urlencode "time=$2"}
}
netns() {
  ip netns add "$1"; namespaces+=("$1")
  in_ns "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$1" link set lo up
}

# --- Network ------------------------------------------------------------------
netns "$central"
ip -n "$central" link add "fmb$tag" type bridge
ip -n "$central" addr add "$store/24" dev "fmb$tag"
ip -n "$central" link set "fmb$tag" up
for i in $(seq 1 $hosts); do
  agent=fmf${tag}a$i sender=fmf${tag}s$i
  netns "$agent"; netns "$sender"
  # Management link: the agent's namespace to the central bridge (vmagent's remote write).
  ip link add "fmm${tag}x$i" netns "$agent" type veth peer name "fmp${tag}x$i" netns "$central"
  ip -n "$central" link set "fmp${tag}x$i" master "fmb$tag" up
  ip -n "$agent" addr add "198.18.200.1$i/24" dev "fmm${tag}x$i"
  ip -n "$agent" link set "fmm${tag}x$i" up
  # Capture link: the sender's frames to 198.19.I.3, an address nobody holds
  # (a static neighbour entry, no ARP): the agent's kernel drops them
  # silently, FlowMeter counts them, nothing answers.
  ip link add "fms${tag}x$i" netns "$sender" type veth peer name "fmc${tag}x$i" netns "$agent"
  ip -n "$agent" addr add "198.19.$i.1/24" dev "fmc${tag}x$i"
  ip -n "$agent" link set "fmc${tag}x$i" up
  ip -n "$sender" addr add "198.19.$i.2/24" dev "fms${tag}x$i"
  ip -n "$sender" link set "fms${tag}x$i" up
  mac=$(ip -n "$agent" -o link show "fmc${tag}x$i" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  ip -n "$sender" neigh add "198.19.$i.3" lladdr "$mac" dev "fms${tag}x$i" nud permanent
done

# --- The pool and the rules ------------------------------------------------------
# Periods start on this UTC hour and last a day: no edge inside the test.
hour=$(date -u +%H)
pool_limit=6000000
host_limit=2400000
cat >"$dir/fleet.yaml" <<EOF
pools:
  - 'fleetpool ${pool_limit} day ${hour}:00 sum provider tz=UTC hosts=h1,h2,h3'
EOF
mkdir -p "$dir/rules"
# The shipped rules with every `for:` of N minutes shortened to N seconds: the
# expressions and the delivery path are under test here, the durations in
# deploy/prometheus/flowmeter-rules.test.yml.
for f in flowmeter-recording.rules.yml flowmeter-alerts.rules.yml; do
  sed -E 's/for: ([0-9]+)m$/for: \1s/' "deploy/prometheus/$f" >"$dir/rules/$f"
done
"$flowmeter" fleet rules --config "$dir/fleet.yaml" --step 5s >"$dir/rules/flowmeter-pools.rules.yml"

# --- Central: VictoriaMetrics, Alertmanager, webhook receiver, vmalert -----------
vm_args=(-storageDataPath="$dir/vm" -httpListenAddr="$store:8428" -retentionPeriod=1 -search.latencyOffset=1s -loggerLevel=WARN)
start vm "$central" victoria-metrics "${vm_args[@]}"
cat >"$dir/alertmanager.yml" <<EOF
route:
  receiver: webhook
  group_by: [alertname, pool, host, severity]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: webhook
    webhook_configs:
      - url: http://127.0.0.1:9095/
        send_resolved: false
EOF
start alertmanager "$central" timeout 900 prometheus-alertmanager --config.file="$dir/alertmanager.yml" \
  --storage.path="$dir/am" --web.listen-address=127.0.0.1:9093 --cluster.listen-address=
cat >"$dir/webhook.py" <<'EOF'
# Appends every alert Alertmanager posts, one JSON document per line.
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with open(sys.argv[2], "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
EOF
: >"$dir/alerts.jsonl"
start webhook "$central" timeout 900 python3 "$dir/webhook.py" 9095 "$dir/alerts.jsonl"
wait_for 20 in_ns "$central" curl -fsS "$store_url/health" || fail "VictoriaMetrics did not start: $(tail -5 "$dir/vm.log")"
# Alertmanager's own view, once a second: a surge's alert is resolved (and
# leaves its API) seconds after the surge ends.
start apipoll "$central" timeout 600 sh -c \
  'while :; do curl -fsS -m 2 http://127.0.0.1:9093/api/v2/alerts | tr -d "\n"; echo; sleep 1; done'


# --- Relay hosts: agent and vmagent --------------------------------------------
sed -E "s/scrape_interval: 15s/scrape_interval: ${scrape}s/; s/scrape_timeout: 10s/scrape_timeout: ${scrape}s/" \
  deploy/fleet/relay/vmagent.yml >"$dir/vmagent.yml"
for i in $(seq 1 $hosts); do
  mkdir -p "$dir/h$i"
  {
    echo "host:"
    echo "  addresses: [198.19.$i.3]"
    echo "agent:"
    echo "  capture_threads: 1"
    # Host 2's surge detector learns in seconds, as SurgeTests' does.
    if [ "$i" = 2 ]; then
      printf 'surge:\n  current_window_seconds: 1\n  baseline_window_seconds: 30\n  warmup_seconds: 4\n  hold_seconds: 2\n'
      printf '  floor_bytes_per_second: 200000\n  floor_packets_per_second: 1000000\n  floor_attempts_per_second: 1000000000\n'
    fi
  } >"$dir/h$i/flowmeter.yaml"
  extra=()
  [ "$i" = 1 ] && extra=(--quota "own ${host_limit} day ${hour}:00 sum provider tz=UTC")
  start "agent$i" "fmf${tag}a$i" "$flowmeter" run -i "fmc${tag}x$i" --config "$dir/h$i/flowmeter.yaml" \
    --system-root "$dir/h$i" "${extra[@]}"
  # The flags of deploy/fleet/relay/flowmeter-vmagent.service, with the test's paths.
  start "vmagent$i" "fmf${tag}a$i" vmagent -promscrape.config="$dir/vmagent.yml" \
    -remoteWrite.url="$store_url/api/v1/write" -remoteWrite.label=host="h$i" \
    -remoteWrite.tmpDataPath="$dir/h$i/queue" -remoteWrite.flushInterval=1s \
    -httpListenAddr=127.0.0.1:8429 -loggerLevel=ERROR
done

metrics() { in_ns "fmf${tag}a$1" curl -fsS -m 5 http://127.0.0.1:9477/metrics; }
for i in $(seq 1 $hosts); do
  wait_for 30 metrics "$i" || fail "agent $i does not serve /metrics: $(tail -5 "$dir/agent$i.log")"
done
central_has_hosts() { [ "$(query 'count(count by (host) (flowmeter_build_info))' | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')" = "$hosts" ]; }
wait_for 30 central_has_hosts || fail "the central store did not get all $hosts hosts"
# vmalert once the hosts' series arrive (before, FlowMeterTargetsAbsent would be right).
start vmalert "$central" vmalert -rule="$dir/rules/*.yml" -datasource.url="$store_url" -remoteWrite.url="$store_url" \
  -notifier.url=http://127.0.0.1:9093 -evaluationInterval=2s -httpListenAddr=127.0.0.1:8880 -loggerLevel=ERROR
say "fleet up: $hosts agents, vmagents, VictoriaMetrics, vmalert, Alertmanager"

# --- Traffic -------------------------------------------------------------------------
cat >"$dir/send.py" <<'EOF2'
# send.py DST WIRE_BYTES RATE [STOPFILE]: UDP datagrams (SIZE payload bytes,
# SIZE + 42 on the wire) to DST port 9, paced at RATE wire bytes/s, until
# WIRE_BYTES were sent, STOPFILE exists, or 600 s passed. Prints the count.
import os, socket, sys, time
dst, total, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
stop = sys.argv[4] if len(sys.argv) > 4 else None
size = int(os.environ.get("SIZE", "1000"))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload, wire, n, t0 = b"\0" * size, size + 42, 0, time.monotonic()
while n * wire < total and time.monotonic() - t0 < 600 and not (stop and os.path.exists(stop)):
    s.sendto(payload, (dst, 9))
    n += 1
    ahead = t0 + n * wire / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
print(n)
EOF2
send() {  # send HOST WIRE_BYTES RATE: in the foreground
  in_ns "fmf${tag}s$1" timeout 120 python3 "$dir/send.py" "198.19.$1.3" "$2" "$3" >/dev/null
}
# A trickle on every host from now to the end (the surge detector's baseline,
# and no host looks stalled): ~1.5 kB/s of 142-byte frames.
for i in $(seq 1 $hosts); do
  start "trickle$i" "fmf${tag}s$i" env SIZE=100 timeout 600 python3 "$dir/send.py" "198.19.$i.3" 100000000 1500 "$dir/stop"
done

fleet() { in_ns "$central" "$flowmeter" fleet "$@" --url "$store_url" --config "$dir/fleet.yaml"; }
check_is() {  # check_is CODE WHAT: `fleet check` exits CODE
  local out code=0
  out=$(fleet check -w 80 -c 95 -t 20) || code=$?
  if [ "$code" = "$1" ]; then ok "fleet check $2: $out"; else fail "fleet check $2: exit $code, expected $1: $out"; fi
}
sleep 2
check_is 0 "before the traffic (OK)"

# Phase 1: 5 MB into a 6 MB pool; host 1 gets 2 MB of its own 2.4 MB quota.
send 1 2000000 1000000 & s1=$!
send 2 1000000 500000 & s2=$!
send 3 2000000 1000000 & s3=$!
wait $s1 $s2 $s3
sleep $((scrape * 3))
check_is 1 "at ~85 % of the pool (WARNING)"

# --- Outage: the central store stops while traffic goes on -------------------------
say "stopping VictoriaMetrics for ${outage} s"
outage_start=$(date +%s.%N)
kill -INT "$pid_vm"
for _ in $(seq 1 150); do kill -0 "$pid_vm" 2>/dev/null || break; sleep 0.2; done
kill -0 "$pid_vm" 2>/dev/null && fail "VictoriaMetrics still running 30 s after SIGINT"
wait "$pid_vm" 2>/dev/null || true
check_is 3 "with the store down (UNKNOWN)"
senders=()
for i in $(seq 1 $hosts); do send "$i" 500000 10000 & senders+=($!); done
wait_until=$(python3 -c "print(int($outage_start + $outage))")
while [ "$(date +%s)" -lt "$wait_until" ]; do sleep 0.5; done
wait "${senders[@]}"
outage_end=$(date +%s.%N)
# What the queues hold now: samples of the whole outage, for deploy/fleet's buffer sizing.
pending=$(for i in $(seq 1 $hosts); do
  in_ns "fmf${tag}a$i" curl -fsS -m 5 http://127.0.0.1:8429/metrics |
    awk '/^vmagent_remotewrite_pending_data_bytes/ { n += $NF } END { print n + 0 }'
done | paste -sd' ')
samples=$(metrics 1 | grep -vc '^#')
say "queued after ${outage} s without the store: $pending bytes per host ($samples samples per scrape of h1, one scrape a second)"
start vm "$central" victoria-metrics "${vm_args[@]}"
wait_for 30 in_ns "$central" curl -fsS "$store_url/health" || fail "VictoriaMetrics did not restart"
say "VictoriaMetrics back"

# vmagent's queues drained: every sample buffered during the outage was sent.
drained() {
  local i
  for i in $(seq 1 $hosts); do
    in_ns "fmf${tag}a$i" curl -fsS -m 5 http://127.0.0.1:8429/metrics |
      awk '/^vmagent_remotewrite_pending_data_bytes/ { n += $NF; seen = 1 } END { exit (!seen || n > 0) }' || return 1
  done
}
replay_start=$SECONDS
wait_for 120 drained || fail "vmagent's queues did not drain within 120 s of the store's return"
replay_seconds=$((SECONDS - replay_start))
say "vmagent queues drained ${replay_seconds} s after the store's return"

# Phase 3: a surge on host 2 (6 MB at 1 MB/s, its baseline ~1.5 kB/s).
send 2 6000000 1000000
touch "$dir/stop"
for i in $(seq 1 $hosts); do
  p=pid_trickle$i
  for _ in $(seq 1 50); do kill -0 "${!p}" 2>/dev/null || break; sleep 0.1; done
done
sleep $((scrape * 4))

# --- Totals: the central store against every agent's own /metrics -----------------
compare_totals() {
  for i in $(seq 1 $hosts); do metrics "$i" >"$dir/h$i/metrics.txt"; done
  query 'sum by (host, __name__, direction) ({__name__=~"flowmeter_(bytes|packets)_total"})' >"$dir/central.json"
  python3 - "$dir" "$hosts" 2>"$dir/totals.txt" <<'EOF2'
import json, re, sys
d, n = sys.argv[1], int(sys.argv[2])
central = {}
for r in json.load(open(f"{d}/central.json"))["data"]["result"]:
    m = r["metric"]
    central[(m["host"], m["__name__"], m["direction"])] = int(float(r["value"][1]))
ok, lines = True, []
for i in range(1, n + 1):
    own = {}
    for line in open(f"{d}/h{i}/metrics.txt"):
        m = re.match(r'(flowmeter_(?:bytes|packets)_total)\{.*direction="(\w+)"\} (\d+)$', line)
        if m:
            own[(m[1], m[2])] = own.get((m[1], m[2]), 0) + int(m[3])
    for (name, direction), v in sorted(own.items()):
        c = central.get((f"h{i}", name, direction))
        ok &= c == v
        lines.append(f"h{i} {name}{{direction={direction}}}: agent {v}, central {c}")
print("\n".join(lines), file=sys.stderr)
sys.exit(0 if ok else 1)
EOF2
}
# The last scrapes after the traffic stopped reach the store within seconds.
if wait_for 30 compare_totals; then totals=yes; else totals=no; fi
cat "$dir/totals.txt"
say "totals compared"
[ "$totals" = yes ] && ok "central totals equal every agent's own /metrics" || fail "central totals differ from the agents' (above)"

# --- Gap: the longest time between two samples of a host's series, outage included ---
window=$(python3 -c "import time; print(int(time.time() - $outage_start + 10))")
gap=$(for i in $(seq 1 $hosts); do query "flowmeter_build_info{host=\"h$i\"}[${window}s]"; echo; done | python3 -c "
import json, sys
worst = 0.0
for line in sys.stdin:
    if not line.strip(): continue
    for r in json.loads(line)['data']['result']:
        t = [float(v[0]) for v in r['values'] if $outage_start - 5 <= float(v[0]) <= $outage_end + 5]
        for a, b in zip(t, t[1:]):
            if b - a > worst:
                worst = b - a
                where = '%s: %.1f s from %.1f s after the outage began' % (r['metric'].get('host'), b - a, a - $outage_start)
print(max(0, round(worst - $scrape)))
if worst > 0: print('longest spacing', where, file=sys.stderr)")
[ "$gap" = 0 ] && ok "no gap in any host's series across the outage" || fail "a host's series has a gap of $gap s"

# --- fleet check, report and forecast against the agents ------------------------------
say "gap measured"
check_is 2 "over the pool's limit (CRITICAL)"
fleet report --json >"$dir/report.json" || fail "fleet report --json failed"
fleet forecast --json >"$dir/forecast.json" || fail "fleet forecast --json failed"
fleet report || true
say "fleet check, report and forecast done"
agree=$(python3 - "$dir" "$hosts" <<'EOF2'
import json, re, sys
d, n = sys.argv[1], int(sys.argv[2])
own = {}
for i in range(1, n + 1):
    for line in open(f"{d}/h{i}/metrics.txt"):
        m = re.match(r'flowmeter_bytes_total\{.*direction="(\w+)"\} (\d+)$', line)
        if m:
            own[(f"h{i}", m[1])] = own.get((f"h{i}", m[1]), 0) + int(m[2])
report, forecast = json.load(open(f"{d}/report.json"))[0], json.load(open(f"{d}/forecast.json"))[0]
members = {m["host"]: (m["read_bytes"], m["written_bytes"]) for m in report["members"]}
total = sum(own.values())
ok = all(members[f"h{i}"] == (own.get((f"h{i}", "in"), 0), own.get((f"h{i}", "out"), 0)) for i in range(1, n + 1))
ok &= report["forecast"]["used_bytes"] == total == forecast["forecast"]["used_bytes"]
print("yes" if ok else "no")
print(f"pool used {report['forecast']['used_bytes']} (forecast {forecast['forecast']['used_bytes']}), agents {total}; members {members}", file=sys.stderr)
EOF2
)
[ "$agree" = yes ] && ok "fleet report and forecast: each host's part and the pool's use equal the agents' counts" ||
  fail "fleet report/forecast disagree with the agents (above)"

# --- The Grafana dashboard's queries against the central store ------------------------
python3 scripts/check_grafana.py --exprs --resolve >"$dir/panels.tsv"
panels=("Fleet traffic by category and direction" "Traffic by host" "Pooled quotas: used, limit and projected end"
        "Pool used share" "Pool share by host" "Hosts by quota pressure" "Wire bytes and what Tor counts")
has_data() { printf '%s\n' "$dashboard" | awk -F'\t' -v t="$1" '$1 == t && $2 > 0 { found = 1 } END { exit !found }'; }
# The recording rules are written once per vmalert evaluation, so a series can
# be missing at one instant just after the store's outage: read the dashboard
# again, every 5 s for at most 30 s, until every panel has data.
for attempt in 1 2 3 4 5 6 7; do
  dashboard=$(while IFS=$'\t' read -r title expr; do
    printf '%s\t' "$title"; query "$expr" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["result"]))' || echo error
  done <"$dir/panels.tsv")
  missing=0
  for panel in "${panels[@]}"; do has_data "$panel" || missing=1; done
  [ "$missing" = 0 ] && break
  [ "$attempt" = 7 ] || sleep 5
done
bad=$(printf '%s\n' "$dashboard" | awk -F'\t' '$2 == "error"' | cut -f1 | sort -u | paste -sd, -)
[ -z "$bad" ] && ok "every dashboard query evaluates on VictoriaMetrics" || fail "dashboard queries that do not evaluate: $bad"
for panel in "${panels[@]}"; do
  has_data "$panel" && ok "dashboard panel “$panel” has data" || fail "dashboard panel “$panel” has no data within 30 s"
done

# --- Alerts: through Alertmanager to the webhook ---------------------------------------
delivered() {  # delivered ALERTNAME LABEL=VALUE: a firing alert reached the webhook
  python3 - "$dir/alerts.jsonl" "$1" "$2" <<'EOF2'
import json, sys
name, (k, v) = sys.argv[2], sys.argv[3].split("=", 1)
for line in open(sys.argv[1]):
    for a in json.loads(line).get("alerts", []):
        if a["status"] == "firing" and a["labels"].get("alertname") == name and a["labels"].get(k) == v:
            sys.exit(0)
sys.exit(1)
EOF2
}
all_delivered() {
  delivered FlowMeterPoolUsed pool=fleetpool && delivered FlowMeterQuotaUsed host=h1 && delivered FlowMeterSurge host=h2
}
wait_for 90 all_delivered || true
say "alerts checked"
for a in "FlowMeterPoolUsed pool=fleetpool" "FlowMeterQuotaUsed host=h1" "FlowMeterSurge host=h2"; do
  # shellcheck disable=SC2086
  delivered $a && ok "alert $a reached the webhook" || fail "alert $a did not reach the webhook"
done
alerts=$(python3 -c "
import json, sys
seen = set()
for line in open('$dir/alerts.jsonl'):
    for a in json.loads(line).get('alerts', []):
        if a['status'] == 'firing':
            seen.add(tuple(sorted(a['labels'].items())))
print(len(seen))")
api=$(python3 -c "
import json
seen = set()
for line in open('$dir/apipoll.log'):
    if line.startswith('['):
        for a in json.loads(line):
            seen.add(a['labels'].get('alertname'))
print(sum(n in seen for n in ('FlowMeterPoolUsed', 'FlowMeterQuotaUsed', 'FlowMeterSurge')))")
[ "$api" = 3 ] && ok "Alertmanager's API listed the pool, quota and surge alerts" ||
  fail "Alertmanager's API listed $api of the pool, quota and surge alerts"
# How long vmalert took to evaluate the pool's group (its subquery over the period).
pool_eval=$(in_ns "$central" curl -fsS -m 5 http://127.0.0.1:8880/metrics |
  awk '/^vmalert_iteration_duration_seconds_(sum|count)\{.*flowmeter-pool-fleetpool/ { v[$1 ~ /_sum/] = $NF }
       END { if (v[0] > 0) printf "%.0f ms mean over %d evaluations", 1000 * v[1] / v[0], v[0]; else print "unknown" }')
say "vmalert's pool group: $pool_eval"
queue=$(du -sk "$dir"/h1/queue 2>/dev/null | cut -f1)
say "vmagent queue of h1: ${queue} KiB; replay ${replay_seconds} s; $failures failure(s)"
say "wall time $((SECONDS - started_at)) s"
match=$([ "$totals" = yes ] && echo yes || echo no)
echo "hosts $hosts, central totals match: $match, gap after outage: $gap s, alerts delivered: $alerts"
[ "$failures" -eq 0 ]
