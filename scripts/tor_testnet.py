#!/usr/bin/env python3
"""A private Tor network in network namespaces, for testing Tor accounting.

Subcommands (DIR is a fresh or existing work directory; everything lives there):

  up DIR [--max-bytes '20 MBytes'] [--rate '256 KBytes'|0]
         [--count-private-bandwidth 1|0] [--timeout 120]
      Creates namespaces fmtor-TAG-{br,auth,mid,exit,cli,web} (TAG derives from
      DIR, so several networks can coexist), links them to a bridge in the
      private range 10.77.0.0/24 that exists only inside those namespaces,
      starts tcpdump on the exit's interface, a byte server, and Debian's tor as
      one directory authority, one middle relay, one exit relay (AccountingMax,
      AccountingRule sum, AccountingStart day 00:00, BandwidthRate/Burst --rate,
      ControlPort 9051 with cookie auth) and one client (SocksPort 9050), then waits (bounded) until
      a stream through the exit works. Prints the bootstrap timings as JSON.
  push DIR BYTES [--timeout 90]
      Fetches BYTES bytes from the byte server through the client's SOCKS port
      (and so through the exit); prints JSON with what arrived and how long.
  status DIR
      Prints JSON: the exit's GETINFO accounting/* and traffic/* answers, the
      time of the exit's "Bandwidth soft limit reached" log line (or null), the
      network's TCP retransmissions, and "unread_bytes": what the kernel has
      received on the exit's interface that tor has not read yet (the sum of
      its sockets' Recv-Q; one number, no address).
  measure DIR [--since UNIX] [--until UNIX]
      Stops nothing (after `down` it uses the status `down` saved); reads DIR/exit.pcap (tcpdump -s 128 on the exit's
      interface) and prints JSON comparing TCP payload and wire bytes on the
      exit's interface with tor's accounting/bytes. --since/--until keep only
      the packets captured in that window (kernel timestamps, Unix seconds).
  down DIR
      Kills exactly the processes recorded in DIR/pids.json and deletes the
      namespaces recorded in DIR/netns.json. Safe to run twice.

Why a middle relay: a client's circuits have three distinct hops, so the
authority, a middle relay and the exit are the minimum for a working path.

Requires root, iproute2, tor (with tor-gencert) and tcpdump. Python 3.11, stdlib
only. Every wait is bounded in count and time. Exit codes: 0 ok, 1 failure,
2 usage error.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

PREFIX = "fmtor-"
SUBNET = "10.77.0"
ROLES = {  # role: host number in SUBNET
    "auth": 1,
    "mid": 2,
    "exit": 3,
    "cli": 4,
    "web": 5,
}
OR_PORT = 5000
DIR_PORT = 7000
CONTROL_PORT = 9051
SOCKS_PORT = 9050
WEB_PORT = 8080
SOFT_LIMIT_LINE = "Bandwidth soft limit reached; commencing hibernation."
HARD_LIMIT_LINE = "Going dormant. Blowing away remaining connections."
LOG_TIME = re.compile(r"^(\w{3} \d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d{3})?) \[notice\] ")


class Failure(Exception):
    """An environmental failure with a message for the operator."""


# ---------------------------------------------------------------- helpers

def run(cmd: list[str], check: bool = True, input_text: str | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, input=input_text,
                           timeout=timeout)
    except FileNotFoundError:
        raise Failure(f"{cmd[0]}: not installed")
    except subprocess.TimeoutExpired:
        raise Failure(f"timed out after {timeout}s: {' '.join(cmd)}")
    if check and p.returncode != 0:
        raise Failure(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()}")
    return p


def tag_for(d: Path) -> str:
    return hashlib.sha1(str(d.resolve()).encode()).hexdigest()[:6]


def ns_name(d: Path, role: str) -> str:
    return f"{PREFIX}{tag_for(d)}-{role}"  # <= 6+6+1+4 = 17 chars; netns names allow it


def addr(role: str) -> str:
    return f"{SUBNET}.{ROLES[role]}"


def load_json(p: Path, default):
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        return default


def save_json(p: Path, obj) -> None:
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(p)


def record_pid(d: Path, name: str, pid: int) -> None:
    pids = load_json(d / "pids.json", {})
    pids[name] = pid
    save_json(d / "pids.json", pids)


def start(d: Path, name: str, ns: str, argv: list[str], env_extra: dict | None = None) -> int:
    """Starts argv inside ns (ip netns exec execs, so the PID is the program's)."""
    env = dict(os.environ, TZ="UTC")
    if env_extra:
        env.update(env_extra)
    out = open(d / f"{name}.stdout", "ab")
    p = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdout=out,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         env=env, start_new_session=True)
    record_pid(d, name, p.pid)
    return p.pid


def in_ns(d: Path, role: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Runs this script's hidden subcommand inside a namespace."""
    return run(["ip", "netns", "exec", ns_name(d, role), sys.executable,
                os.path.abspath(__file__)] + args, check=False, timeout=timeout)


# ---------------------------------------------------------------- network

def make_network(d: Path) -> None:
    br = ns_name(d, "br")
    names = [br] + [ns_name(d, r) for r in ROLES]
    existing = run(["ip", "netns", "list"]).stdout
    for n in names:
        if re.search(rf"^{re.escape(n)}( |$)", existing, re.M):
            raise Failure(f"namespace {n} exists: run `down {d}` first")
    save_json(d / "netns.json", names)  # before creating, so `down` finds partial work
    for n in names:
        run(["ip", "netns", "add", n])
        run(["ip", "-n", n, "link", "set", "lo", "up"])
    run(["ip", "-n", br, "link", "add", "br0", "type", "bridge"])
    run(["ip", "-n", br, "link", "set", "br0", "up"])
    for role in ROLES:
        n = ns_name(d, role)
        # Both ends are created directly inside namespaces: nothing appears in the host's.
        run(["ip", "-n", n, "link", "add", "eth0", "type", "veth",
             "peer", "name", f"p-{role}", "netns", br])
        run(["ip", "-n", br, "link", "set", f"p-{role}", "master", "br0", "up"])
        run(["ip", "-n", n, "addr", "add", f"{addr(role)}/24", "dev", "eth0"])
        run(["ip", "-n", n, "link", "set", "eth0", "up"])
        # Without offloads every packet on the veth is one MTU-sized segment, as on a
        # real NIC after segmentation, so wire lengths in the pcap are realistic.
        if shutil.which("ethtool"):
            run(["ip", "netns", "exec", n, "ethtool", "-K", "eth0",
                 "tso", "off", "gso", "off", "gro", "off"], check=False)


# ---------------------------------------------------------------- tor

def fingerprint(datadir: Path) -> str:
    text = (datadir / "fingerprint").read_text().split()
    return text[1]


def common_torrc(d: Path, role: str, auth_line: str) -> str:
    data = d / role
    return "\n".join([
        "TestingTorNetwork 1",
        f"DataDirectory {data}",
        f"Nickname fmtor{role}",
        "RunAsDaemon 0",
        f"Log notice file {data / 'notice.log'}",
        f"Log info file {data / 'info.log'}",
        "SafeLogging 1",
        "ShutdownWaitLength 0",
        "DisableDebuggerAttachment 0",
        auth_line,
        "",
    ])


def relay_torrc(role: str) -> str:
    return "\n".join([
        f"Address {addr(role)}",
        f"ORPort {addr(role)}:{OR_PORT}",
        "AssumeReachable 1",
        "SocksPort 0",
        "ContactInfo fmtor@test.invalid",
        "",
    ])


def write_torrcs(d: Path, max_bytes: str, rate: str, count_private: int) -> dict:
    # 1. Keys. Authority v3 keys via tor-gencert, relay identities via --list-fingerprint.
    for role in ("auth", "mid", "exit"):
        data = d / role
        (data / "keys").mkdir(parents=True, exist_ok=True)
        os.chmod(data, 0o700)
    keys = d / "auth" / "keys"
    run(["tor-gencert", "--create-identity-key", "-m", "12",
         "-a", f"{addr('auth')}:{DIR_PORT}",
         "-i", str(keys / "authority_identity_key"),
         "-s", str(keys / "authority_signing_key"),
         "-c", str(keys / "authority_certificate"),
         "--passphrase-fd", "0"], input_text="fmtor\n")
    cert = (keys / "authority_certificate").read_text()
    v3ident = re.search(r"^fingerprint ([0-9A-F]{40})$", cert, re.M).group(1)
    fps = {}
    for role in ("auth", "mid", "exit"):
        data = d / role
        run(["tor", "--ignore-missing-torrc", "-f", os.devnull,
             "--DataDirectory", str(data), "--ORPort", str(OR_PORT),
             "--Log", "err stderr", "--list-fingerprint"], timeout=60)
        fps[role] = fingerprint(data)
    auth_line = (f"DirAuthority fmtorauth orport={OR_PORT} no-v2 v3ident={v3ident} "
                 f"{addr('auth')}:{DIR_PORT} {fps['auth']}")
    # 2. torrcs.
    torrc = {}
    torrc["auth"] = common_torrc(d, "auth", auth_line) + relay_torrc("auth") + "\n".join([
        f"DirPort {addr('auth')}:{DIR_PORT}",
        "AuthoritativeDirectory 1",
        "V3AuthoritativeDirectory 1",
        "ExitPolicy reject *:*",
        # One authority votes alone; short rounds so that a consensus with all
        # relays exists within seconds. Intervals must divide 30 minutes.
        "TestingV3AuthInitialVotingInterval 10",
        "TestingV3AuthInitialVoteDelay 2",
        "TestingV3AuthInitialDistDelay 2",
        "V3AuthVotingInterval 10",
        "V3AuthVoteDelay 2",
        "V3AuthDistDelay 2",
        "TestingV3AuthVotingStartOffset 0",
        "TestingAuthDirTimeToLearnReachability 0",
        f"TestingDirAuthVoteExit {fps['exit']}",
        "TestingDirAuthVoteExitIsStrict 1",
        f"TestingDirAuthVoteGuard {fps['auth']},{fps['mid']}",
        "TestingDirAuthVoteGuardIsStrict 1",
        "TestingDirAuthVoteHSDir *",
        "TestingMinExitFlagThreshold 0",
        "",
    ])
    torrc["mid"] = common_torrc(d, "mid", auth_line) + relay_torrc("mid") + "\n".join([
        "ExitPolicy reject *:*",
        "",
    ])
    torrc["exit"] = common_torrc(d, "exit", auth_line) + relay_torrc("exit") + "\n".join([
        "ExitRelay 1",
        "ExitPolicy accept *:*",
        f"AccountingMax {max_bytes}",
        # tor checks the limits once a second; without a rate cap a fast push
        # overshoots the soft and hard limit within the same second. Not
        # RelayBandwidthRate: an OR connection the exit's own circuits have used
        # in the last 30 s is not "relayed traffic" and takes the global bucket.
        f"BandwidthRate {rate}" if rate != "0" else "",
        f"BandwidthBurst {rate}" if rate != "0" else "",
        "AccountingRule sum",
        # TestingTorNetwork makes this 1; with 0 every peer here (10.77.0.0/24 is
        # "internal") would be left out of accounting. See docs/quotas.md.
        f"CountPrivateBandwidth {count_private}",
        "AccountingStart day 00:00",
        f"ControlPort 127.0.0.1:{CONTROL_PORT}",
        "CookieAuthentication 1",
        # Streams go to IP literals; no DNS, so no UDP on the exit's interface.
        "ServerDNSDetectHijacking 0",
        f"ServerDNSResolvConfFile {d / 'exit' / 'resolv.conf'}",
        "",
    ])
    (d / "exit" / "resolv.conf").write_text(f"nameserver {addr('web')}\n")
    (d / "cli").mkdir(exist_ok=True)
    os.chmod(d / "cli", 0o700)
    torrc["cli"] = common_torrc(d, "cli", auth_line) + "\n".join([
        f"SocksPort 127.0.0.1:{SOCKS_PORT}",
        f"ControlPort 127.0.0.1:{CONTROL_PORT}",
        "CookieAuthentication 1",
        f"ExitNodes {fps['exit']}",
        # Conflux wants two disjoint legs; with one exit it only logs failures.
        "ConfluxEnabled 0",
        "StrictNodes 1",
        "",
    ])
    for role, text in torrc.items():
        (d / f"{role}.torrc").write_text(text)
    info = {"v3ident": v3ident, "fingerprints": fps, "max_bytes": max_bytes, "rate": rate,
            "count_private_bandwidth": count_private}
    save_json(d / "net.json", info)
    return info


# ---------------------------------------------------------------- control port

def control(data: Path, commands: list[str], port: int = CONTROL_PORT,
            timeout: float = 10) -> list[str]:
    """PROTOCOLINFO, AUTHENTICATE with the cookie, then commands; returns the reply
    lines of the commands (status code and separator stripped)."""
    cookie = (data / "control_auth_cookie").read_bytes().hex()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        f = s.makefile("rwb")

        def send(line: str) -> list[str]:
            f.write(line.encode() + b"\r\n")
            f.flush()
            lines = []
            for _ in range(10000):
                raw = f.readline()
                if not raw:
                    raise Failure("control port closed the connection")
                ln = raw.decode(errors="replace").rstrip("\r\n")
                if not ln[:3].isdigit():
                    raise Failure(f"control port: unexpected line {ln!r}")
                if ln[3:4] == "+":  # data reply: read until "."
                    body = [ln[4:]]
                    for _ in range(100000):
                        b = f.readline().decode(errors="replace").rstrip("\r\n")
                        if b == ".":
                            break
                        body.append(b)
                    lines.append("\n".join(body))
                    continue
                if not ln.startswith("250"):
                    raise Failure(f"control port: {line.split()[0]}: {ln}")
                lines.append(ln[4:])
                if ln[3:4] == " ":
                    return lines
            raise Failure("control port: reply too long")

        send("PROTOCOLINFO 1")
        send(f"AUTHENTICATE {cookie}")
        out = []
        for c in commands:
            out += send(c)
        return out


def getinfo(data: Path, keys: list[str]) -> dict:
    lines = control(data, ["GETINFO " + " ".join(keys)])
    res = {}
    for ln in lines:
        if "=" in ln:
            k, v = ln.split("=", 1)
            res[k] = v
    return res


def parse_log_time(stamp: str, year: int) -> float:
    fmt = "%Y %b %d %H:%M:%S.%f" if "." in stamp else "%Y %b %d %H:%M:%S"
    import datetime as dt
    t = dt.datetime.strptime(f"{year} {stamp}", fmt).replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


def log_line_time(d: Path, text: str) -> dict | None:
    """The first exit notice-log line containing text, with its time (tor runs with
    TZ=UTC, so the stamp is UTC; tor's notice log has whole seconds)."""
    log = d / "exit" / "notice.log"
    if not log.exists():
        return None
    year = time.gmtime().tm_year
    for line in log.read_text(errors="replace").splitlines():
        if text in line:
            m = LOG_TIME.match(line)
            ts = parse_log_time(m.group(1), year) if m else None
            return {"line": line, "unix": ts}
    return None


# ---------------------------------------------------------------- byte server / socks

def serve(port: int, max_bytes: int) -> None:
    """GET /bytes/N answers N zero bytes (N <= max_bytes). One client at a time,
    each connection bounded by a 120 s socket timeout."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(16)
    chunk = bytes(65536)
    while True:
        c, _ = srv.accept()
        c.settimeout(120)
        try:
            req = b""
            while b"\r\n\r\n" not in req and len(req) < 8192:
                part = c.recv(4096)
                if not part:
                    break
                req += part
            m = re.match(rb"GET /bytes/(\d{1,15}) ", req)
            n = int(m.group(1)) if m else -1
            if n < 0 or n > max_bytes:
                c.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                continue
            c.sendall(f"HTTP/1.0 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
            left = n
            while left > 0:
                k = min(left, len(chunk))
                c.sendall(chunk[:k])
                left -= k
        except OSError:
            pass
        finally:
            c.close()


def socks_fetch(n: int, timeout: float) -> dict:
    """Fetches n bytes from the byte server through the local SOCKS port."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    got = 0
    err = None
    try:
        s = socket.create_connection(("127.0.0.1", SOCKS_PORT), timeout=timeout)
        with s:
            s.sendall(b"\x05\x01\x00")
            if s.recv(2) != b"\x05\x00":
                raise Failure("SOCKS: no-auth refused")
            host = addr("web").encode()
            s.sendall(b"\x05\x01\x00\x03" + bytes([len(host)]) + host + struct.pack(">H", WEB_PORT))
            rep = b""
            while len(rep) < 10:
                part = s.recv(10 - len(rep))
                if not part:
                    break
                rep += part
            if len(rep) < 2 or rep[1] != 0:
                raise Failure(f"SOCKS: connect failed (reply {rep[1] if len(rep) > 1 else 'none'})")
            s.sendall(f"GET /bytes/{n} HTTP/1.0\r\nHost: web\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                part = s.recv(4096)
                if not part:
                    raise Failure("SOCKS: closed before HTTP header")
                head += part
            hdr, body = head.split(b"\r\n\r\n", 1)
            if not hdr.startswith(b"HTTP/1.0 200"):
                raise Failure(f"HTTP: {hdr.splitlines()[0]!r}")
            got = len(body)
            while got < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure("timeout")
                s.settimeout(left)
                part = s.recv(262144)
                if not part:
                    raise Failure("closed early")
                got += len(part)
    except (OSError, Failure) as e:
        err = str(e) or type(e).__name__
    return {"requested": n, "received": got, "seconds": round(time.monotonic() - t0, 3),
            "error": err}


# ---------------------------------------------------------------- pcap

def pcap_payload(path: Path, local_ip: str, since: float | None = None,
                 until: float | None = None) -> dict:
    """Sums wire length and TCP payload (IPv4 total length - IP and TCP headers,
    so snaplen does not matter) per direction as seen by local_ip, and the
    sequence space each connection covered ("tcp_stream_bytes": payload without
    retransmitted duplicates, which is what the peer's socket delivered once).
    Packets outside [since, until] (Unix seconds, when given) are skipped.
    The per-connection state lives only in this function's memory."""
    me = socket.inet_aton(local_ip)
    r = {"in": {"wire": 0, "tcp_payload": 0, "tcp_stream_bytes": 0, "packets": 0},
         "out": {"wire": 0, "tcp_payload": 0, "tcp_stream_bytes": 0, "packets": 0},
         "other_packets": 0}
    span: dict[bytes, list[int]] = {}  # 4-tuple -> [first seq, bytes beyond it]
    with open(path, "rb") as f:
        gh = f.read(24)
        if len(gh) < 24:
            raise Failure(f"{path}: not a pcap file")
        magic = gh[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            e = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            e = ">"
        else:
            raise Failure(f"{path}: not a pcap file")
        nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        linktype = struct.unpack(e + "I", gh[20:24])[0]
        if linktype != 1:
            raise Failure(f"{path}: link type {linktype}, expected Ethernet")
        while True:
            ph = f.read(16)
            if len(ph) < 16:
                break
            sec, frac, incl, orig = struct.unpack(e + "IIII", ph)
            pkt = f.read(incl)
            if len(pkt) < incl:
                break
            at = sec + frac / (1e9 if nano else 1e6)
            if (since is not None and at < since) or (until is not None and at > until):
                continue
            if len(pkt) < 34 or pkt[12:14] != b"\x08\x00" or pkt[23] != 6:
                r["other_packets"] += 1
                continue
            ihl = (pkt[14] & 0x0F) * 4
            total = struct.unpack(">H", pkt[16:18])[0]
            if len(pkt) < 14 + ihl + 13:
                r["other_packets"] += 1
                continue
            thl = (pkt[14 + ihl + 12] >> 4) * 4
            side = "out" if pkt[26:30] == me else "in" if pkt[30:34] == me else None
            if side is None:
                r["other_packets"] += 1
                continue
            plen = max(0, total - ihl - thl)
            r[side]["wire"] += orig
            r[side]["tcp_payload"] += plen
            r[side]["packets"] += 1
            tcp = 14 + ihl
            key = pkt[26:34] + pkt[tcp:tcp + 4]
            seq = struct.unpack(">I", pkt[tcp + 4:tcp + 8])[0]
            syn = pkt[tcp + 13] & 0x02
            if key not in span or syn:
                span[key] = [(seq + (1 if syn else 0)) & 0xFFFFFFFF, 0]
            if plen:
                first, far = span[key]
                end = (seq + plen - first) & 0xFFFFFFFF  # modular: wrap is harmless
                if far < end < (1 << 31):
                    span[key][1] = end
    for key, (_, far) in span.items():
        side = "out" if key[:4] == me else "in"
        r[side]["tcp_stream_bytes"] += far
    return r


# ---------------------------------------------------------------- commands

def wait_for(pred, timeout: float, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def log_has(path: Path, text: str) -> bool:
    return path.exists() and text in path.read_text(errors="replace")


def cmd_up(d: Path, max_bytes: str, rate: str, count_private: int, timeout: float) -> dict:
    if os.geteuid() != 0:
        raise Failure("must run as root (network namespaces)")
    for tool in ("ip", "tor", "tor-gencert", "tcpdump"):
        if not shutil.which(tool):
            raise Failure(f"{tool}: not installed (apt-get install -y iproute2 tor tcpdump)")
    d.mkdir(parents=True, exist_ok=True)
    if (d / "net.json").exists() or load_json(d / "pids.json", {}):
        raise Failure(f"{d} was used before (keys, logs, pcap): give `up` a fresh DIR")
    try:
        return start_network(d, max_bytes, rate, count_private, timeout)
    except BaseException:
        cmd_down(d)  # leave nothing running; logs stay in DIR
        raise


def start_network(d: Path, max_bytes: str, rate: str, count_private: int,
                  timeout: float) -> dict:
    t0 = time.time()
    timings = {"started_unix": round(t0, 3)}
    make_network(d)
    info = write_torrcs(d, max_bytes, rate, count_private)
    timings["network_and_keys_s"] = round(time.time() - t0, 2)
    start(d, "tcpdump", ns_name(d, "exit"),
          ["tcpdump", "-i", "eth0", "-s", "128", "-U", "-w", str(d / "exit.pcap"),
           "-Z", "root", "tcp"])
    if not wait_for(lambda: (d / "exit.pcap").exists(), 10, 0.1):
        raise Failure("tcpdump did not start")
    start(d, "web", ns_name(d, "web"),
          [sys.executable, os.path.abspath(__file__), "_serve", str(WEB_PORT), str(1 << 31)])
    for role in ("auth", "mid", "exit", "cli"):
        start(d, role, ns_name(d, role), ["tor", "-f", str(d / f"{role}.torrc")])
    t_tor = time.time()
    # One bounded loop watches the log lines and, once the client is bootstrapped,
    # probes a real stream through the exit.
    marks = {
        "first_consensus_s": (d / "auth" / "notice.log", "Published microdesc consensus"),
        "exit_descriptor_uploaded_s": (d / "exit" / "notice.log",
                                       "Self-testing indicates your ORPort"),
        "client_bootstrapped_s": (d / "cli" / "notice.log", "Bootstrapped 100%"),
    }
    for key in marks:
        timings[key] = None
    timings["first_stream_through_exit_s"] = None
    res = None
    for _ in range(int(timeout * 2) + 1):
        elapsed = time.time() - t_tor
        if elapsed > timeout:
            break
        for key, (log, text) in marks.items():
            if timings[key] is None and log_has(log, text):
                timings[key] = round(elapsed, 2)
        if timings["client_bootstrapped_s"] is not None:
            p = in_ns(d, "cli", ["_fetch", "1024", "5"], timeout=15)
            try:
                res = json.loads(p.stdout)
            except json.JSONDecodeError:
                res = {"error": p.stderr.strip()}
            if not res.get("error"):
                timings["first_stream_through_exit_s"] = round(time.time() - t_tor, 2)
                break
        time.sleep(0.5)
    timings["up_total_s"] = round(time.time() - t0, 2)
    timings["last_probe"] = res
    save_json(d / "timings.json", timings)
    if timings["first_stream_through_exit_s"] is None:
        raise Failure(f"no stream through the exit within {timeout}s (logs in {d}/*/notice.log); "
                      f"last probe: {res}")
    return {"dir": str(d), "namespaces": load_json(d / "netns.json", []),
            "fingerprints": info["fingerprints"], "timings": timings}


def cmd_push(d: Path, n: int, timeout: float) -> dict:
    p = in_ns(d, "cli", ["_fetch", str(n), str(timeout)], timeout=timeout + 15)
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        raise Failure(f"push failed: {p.stderr.strip()}")


STATUS_KEYS = ["accounting/enabled", "accounting/hibernating", "accounting/bytes",
               "accounting/bytes-left", "accounting/interval-start",
               "accounting/interval-wake", "accounting/interval-end",
               "traffic/read", "traffic/written"]


def cmd_status(d: Path) -> dict:
    p = in_ns(d, "exit", ["_getinfo", str(d / "exit")] + STATUS_KEYS, timeout=20)
    try:
        raw = json.loads(p.stdout)
    except json.JSONDecodeError:
        raise Failure(f"status failed: {p.stderr.strip()}")
    out = {"getinfo": raw}
    if "accounting/bytes" in raw:
        rd, wr = (int(x) for x in raw["accounting/bytes"].split())
        lr, lw = (int(x) for x in raw["accounting/bytes-left"].split())
        out.update(accounting_read=rd, accounting_written=wr, accounting_sum=rd + wr,
                   bytes_left_read=lr, bytes_left_written=lw,
                   hibernating=raw["accounting/hibernating"],
                   traffic_read=int(raw["traffic/read"]),
                   traffic_written=int(raw["traffic/written"]))
    out["retransmitted_segments"] = retransmitted_segments(d)
    out["unread_bytes"] = unread_bytes(d)
    t = load_json(d / "timings.json", {})
    for key, text in (("soft_limit", SOFT_LIMIT_LINE), ("hard_limit", HARD_LIMIT_LINE)):
        out[key] = log_line_time(d, text)
        if out[key] and out[key]["unix"] and t.get("started_unix"):
            out[key]["s_after_up"] = round(out[key]["unix"] - t["started_unix"], 1)
    return out


def retransmitted_segments(d: Path) -> int:
    """TCP segments sent again, summed over the network's namespaces (the
    kernel's TcpRetransSegs). A retransmitted segment's payload is on the
    wire twice but read once by tor, so a loaded machine that drops packets
    between the namespaces makes wire payload exceed tor's accounting."""
    total = 0
    for n in load_json(d / "netns.json", []):
        p = run(["ip", "netns", "exec", n, "cat", "/proc/net/snmp"], check=False)
        lines = [l.split() for l in p.stdout.splitlines() if l.startswith("Tcp:")]
        if len(lines) == 2 and "RetransSegs" in lines[0]:
            total += int(lines[1][lines[0].index("RetransSegs")])
    return total


def unread_bytes(d: Path) -> int | None:
    """Bytes the exit's kernel has received on its interface and tor has not
    read: the sum of Recv-Q over its TCP sockets there (None if `ss` failed).
    tor reads at its BandwidthRate while a sender fills the receive window,
    and the hard limit closes the connections with that data unread: it was
    on the wire, so FlowMeter counts it, but tor never does. The kernel grows
    the window when tor reads in bursts (a loaded machine), so this can be
    100 KB or 1.4 MB (measured, 2026-11-28). Only the sum leaves this function."""
    p = run(["ip", "netns", "exec", ns_name(d, "exit"), "ss", "-tnH"], check=False)
    if p.returncode != 0:
        return None
    total = 0
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) >= 4 and f[1].isdigit() and f[3].startswith(addr("exit") + ":"):
            total += int(f[1])
    return total


def cmd_measure(d: Path, since: float | None = None, until: float | None = None) -> dict:
    """Live status when the network runs, else the one `down` saved last."""
    try:
        st = cmd_status(d)
    except Failure:
        st = load_json(d / "final_status.json", None)
        if st is None:
            raise Failure(f"network in {d} is down and left no final_status.json")
    pc = pcap_payload(d / "exit.pcap", addr("exit"), since, until)
    res = {"pcap": pc, "status": {k: st.get(k) for k in (
        "accounting_read", "accounting_written", "accounting_sum",
        "traffic_read", "traffic_written", "hibernating")}}
    if st.get("accounting_sum"):
        pay = pc["in"]["tcp_payload"] + pc["out"]["tcp_payload"]
        wire = pc["in"]["wire"] + pc["out"]["wire"]
        res["tcp_payload_over_accounting"] = round(pay / st["accounting_sum"], 4)
        res["wire_over_accounting"] = round(wire / st["accounting_sum"], 4)
        res["stream_bytes_over_accounting"] = round(
            (pc["in"]["tcp_stream_bytes"] + pc["out"]["tcp_stream_bytes"]) / st["accounting_sum"], 4)
        res["in_payload_over_accounting_read"] = round(
            pc["in"]["tcp_payload"] / max(1, st["accounting_read"]), 4)
        res["out_payload_over_accounting_written"] = round(
            pc["out"]["tcp_payload"] / max(1, st["accounting_written"]), 4)
    return res


def alive_as(pid: int, name: str) -> bool:
    """True if pid still runs the program we started (guards against PID reuse)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    want = {"tcpdump": b"tcpdump", "web": b"_serve"}.get(name, b"tor")
    return any(want in part for part in cmd)


def cmd_down(d: Path) -> dict:
    pids = load_json(d / "pids.json", {})
    if alive_as(pids.get("exit", 0), "exit"):
        try:  # best effort: keep the exit's last counters for `measure` after `down`
            save_json(d / "final_status.json", cmd_status(d))
        except Failure:
            pass
    killed = []
    for name, pid in pids.items():
        if alive_as(pid, name):
            try:
                os.kill(pid, signal.SIGTERM)
                killed.append(name)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    for name, pid in pids.items():
        while alive_as(pid, name) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive_as(pid, name):
            os.kill(pid, signal.SIGKILL)
    # Reap our children if we are their parent (same process ran `up`); else init does.
    save_json(d / "pids.json", {})
    deleted = []
    for n in load_json(d / "netns.json", []):
        if not n.startswith(PREFIX):
            continue
        if run(["ip", "netns", "del", n], check=False).returncode == 0:
            deleted.append(n)
    save_json(d / "netns.json", [])
    return {"killed": killed, "deleted_namespaces": deleted}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up")
    p.add_argument("dir")
    p.add_argument("--max-bytes", default="20 MBytes",
                   help="exit's AccountingMax, in tor's units (default: 20 MBytes)")
    p.add_argument("--rate", default="256 KBytes",
                   help="exit's BandwidthRate and Burst per direction, tor's units; "
                        "0 = none (default: 256 KBytes, so 20 MBytes sum take ~40 s)")
    p.add_argument("--count-private-bandwidth", type=int, choices=(0, 1), default=1,
                   help="exit's CountPrivateBandwidth (default 1, as TestingTorNetwork)")
    p.add_argument("--timeout", type=float, default=120, help="bootstrap wait, s (max 300)")
    p = sub.add_parser("push")
    p.add_argument("dir")
    p.add_argument("bytes", type=int)
    p.add_argument("--timeout", type=float, default=90, help="s (max 300)")
    for c in ("status", "down"):
        sub.add_parser(c).add_argument("dir")
    p = sub.add_parser("measure")
    p.add_argument("dir")
    p.add_argument("--since", type=float, help="first packet time kept, Unix seconds")
    p.add_argument("--until", type=float, help="last packet time kept, Unix seconds")
    p = sub.add_parser("_serve")
    p.add_argument("port", type=int)
    p.add_argument("max", type=int)
    p = sub.add_parser("_fetch")
    p.add_argument("bytes", type=int)
    p.add_argument("timeout", type=float)
    p = sub.add_parser("_getinfo")
    p.add_argument("data")
    p.add_argument("keys", nargs="+")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "_serve":
            serve(a.port, a.max)
            return 0
        if a.cmd == "_fetch":
            print(json.dumps(socks_fetch(a.bytes, a.timeout)))
            return 0
        if a.cmd == "_getinfo":
            print(json.dumps(getinfo(Path(a.data), a.keys)))
            return 0
        d = Path(a.dir).resolve()
        if a.cmd != "up" and not (d / "net.json").is_file():
            raise Failure(f"{d}: no network was set up here (run `up {d}` first)")
        if a.cmd in ("push", "status") and not load_json(d / "netns.json", []):
            raise Failure(f"{d}: the network is down (run `up {d}` again)")
        if a.cmd == "up":
            if not 0 < a.timeout <= 300:
                raise ValueError("--timeout must be in (0, 300]")
            if not re.fullmatch(r"\d+(\.\d+)? ?[A-Za-z]*", a.max_bytes):
                raise ValueError("--max-bytes: a number and a tor unit, e.g. '20 MBytes'")
            if a.rate != "0" and not re.fullmatch(r"\d+(\.\d+)? ?[A-Za-z]*", a.rate):
                raise ValueError("--rate: a number and a tor unit, e.g. '256 KBytes', or 0")
            out = cmd_up(d, a.max_bytes, a.rate, a.count_private_bandwidth, a.timeout)
        elif a.cmd == "push":
            if not 0 < a.bytes <= (1 << 31):
                raise ValueError("BYTES must be in 1 ... 2^31")
            if not 0 < a.timeout <= 300:
                raise ValueError("--timeout must be in (0, 300]")
            out = cmd_push(d, a.bytes, a.timeout)
        elif a.cmd == "status":
            out = cmd_status(d)
        elif a.cmd == "measure":
            out = cmd_measure(d, a.since, a.until)
        else:
            out = cmd_down(d)
    except ValueError as e:
        print(f"tor_testnet: {e}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"tor_testnet: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=2))
    return 0 if not (isinstance(out, dict) and out.get("error")) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
