#!/bin/sh
# Generates the two benchmark inputs of BENCHMARKS.md into DIR (default out/bench):
#   tor-mix.pcap    2,000,000 packets: a Tor relay's ORPort, OR-to-OR and exit
#                   traffic over ~4,000 concurrent TCP connections that open and
#                   close; mostly full-size frames and bare ACKs, some DNS.
#   syn-flood.pcap  5,000,000 60-byte SYNs (64 on the wire with FCS) from random
#                   spoofed sources and ports to the relay's ORPort.
# Relay 198.51.100.10, ORPort 9001, DirPort 9030, exit (`flowmeter bench`'s
# defaults). Records keep the wire length and capture at most 96 bytes
# (headers), as a relay operator's `tcpdump -s 96` would. Deterministic (seeded).
# Usage: scripts/bench_captures.sh [DIR] [TOR_MIX_PACKETS] [FLOOD_PACKETS]
set -eu
dir=${1:-out/bench}
mkdir -p "$dir"
exec python3 - "$dir" "${2:-2000000}" "${3:-5000000}" <<'PY'
import random, struct, sys
out, mix_n, flood_n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
RELAY = bytes([198, 51, 100, 10])
SNAP = 96

def header(f):
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAP, 1))

def frame(src, dst, sport, dport, flags, payload, proto=6):
    l4 = 20 if proto == 6 else 8
    iplen = 20 + l4 + payload
    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, iplen, 0, 0x4000, 64, proto, 0, src, dst)
    if proto == 6:
        l4h = struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, flags, 65535, 0, 0)
    else:
        l4h = struct.pack("!HHHH", sport, dport, 8 + payload, 0)
    pkt = eth + ip + l4h
    wire = max(14 + iplen, 60)
    cap = min(wire, SNAP)
    pkt = (pkt + bytes(cap))[:cap]
    return pkt, wire

def record(f, t_us, pkt, wire):
    f.write(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(pkt), wire))
    f.write(pkt)

SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08
rng = random.Random(1)

def peer():
    # Public-looking peers outside every Tor-internal range.
    return bytes([rng.choice([23, 37, 45, 51, 62, 78, 85, 91, 104, 146, 176, 185, 193, 212]),
                  rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)])

class Conn:
    __slots__ = ("cs", "cp", "ss", "sp", "left", "phase")

def new_conn():
    c = Conn()
    kind = rng.random()
    if kind < 0.6:      # a client or relay connecting to our ORPort
        c.cs, c.cp, c.ss, c.sp = peer(), rng.randrange(32768, 61000), RELAY, 9001
    elif kind < 0.85:   # our OR connection to another relay
        c.cs, c.cp, c.ss, c.sp = RELAY, rng.randrange(32768, 61000), peer(), 9001
    else:               # exit traffic to a web server
        c.cs, c.cp, c.ss, c.sp = RELAY, rng.randrange(32768, 61000), peer(), 443
    c.left = int(rng.expovariate(1 / 500)) + 4
    c.phase = 0
    return c

with open(f"{out}/tor-mix.pcap", "wb") as f:
    header(f)
    t = 1_700_000_000_000_000
    conns = [new_conn() for _ in range(4000)]
    for c in conns:
        c.phase = 3  # already established when the capture starts
    n = 0
    while n < mix_n:
        t += 1 if n % 3 else 0
        if rng.random() < 0.01:  # DNS from the exit
            p, w = frame(RELAY, bytes([9, 9, 9, 9]), rng.randrange(32768, 61000), 53, 0, 40, proto=17)
            record(f, t, p, w); n += 1
            continue
        i = rng.randrange(len(conns))
        c = conns[i]
        up = rng.random() < 0.45
        if c.phase == 0:
            p, w = frame(c.cs, c.ss, c.cp, c.sp, SYN, 0); c.phase = 1
        elif c.phase == 1:
            p, w = frame(c.ss, c.cs, c.sp, c.cp, SYN | ACK, 0); c.phase = 2
        elif c.phase == 2:
            p, w = frame(c.cs, c.ss, c.cp, c.sp, ACK, 0); c.phase = 3
        elif c.left > 0:
            c.left -= 1
            full = rng.random() < 0.62
            if up:
                p, w = frame(c.cs, c.ss, c.cp, c.sp, ACK | (PSH if full else 0), 1448 if full else 0)
            else:
                p, w = frame(c.ss, c.cs, c.sp, c.cp, ACK | (PSH if full else 0), 1448 if full else 0)
        elif c.phase == 3:
            p, w = frame(c.cs, c.ss, c.cp, c.sp, FIN | ACK, 0); c.phase = 4
        else:
            p, w = frame(c.ss, c.cs, c.sp, c.cp, FIN | ACK, 0)
            conns[i] = new_conn()
        record(f, t, p, w); n += 1

with open(f"{out}/syn-flood.pcap", "wb") as f:
    header(f)
    t = 1_700_000_100_000_000
    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
    rb = rng.getrandbits
    pack = struct.pack
    rec = pack("<II", 0, 0)
    for i in range(flood_n):
        src = pack("!I", rb(32))
        ip = pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, 6, 0, src, RELAY)
        tcp = pack("!HHIIBBHHH", rb(16), 9001, rb(32), 0, 0x50, SYN, 1024, 0, 0)
        ts = t + i // 8
        f.write(pack("<IIII", ts // 1_000_000, ts % 1_000_000, 60, 60))
        f.write(eth + ip + tcp + b"\0\0\0\0\0\0")
PY
