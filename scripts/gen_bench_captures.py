#!/usr/bin/env python3
"""Benchmark captures for FlowMeter, generated fast and deterministically.

    python3 scripts/gen_bench_captures.py --out DIR [--seed N] [--only tor-mix|syn-flood]
                                          [--tor-mix-packets N] [--syn-packets N]

* tor-mix.pcap: 2,000,000 packets (Ethernet, microseconds, snaplen 128) of a
  relay's mix over ~6,200 concurrent connections: guardA ORPort inbound,
  guardA ORPort outbound (consensus relays, one on 443), exitB exit connections
  and UDP DNS to the resolver. Mostly 1514-byte frames (1448 payload bytes,
  caplen 128) and 66-byte ACKs, a few DNS datagrams. All connections are
  mid-stream (no handshakes): the file measures the per-packet path.
* syn-flood.pcap: 5,000,000 64-byte TCP SYN frames to 203.0.113.10:9001 from
  spoofed sources in 198.18.0.0/15 (RFC 2544's benchmarking range), every
  (source, port) pair distinct by construction.
* The same host-model files as gen_relay_capture.py (torrc, yaml, consensus)
  and bench-expected.json: the counters per file, by construction (each
  template belongs to one cell), in the schema of expected.json.

Speed: records are copied from per-connection templates and only timestamps
are written per packet (tor-mix); syn-flood writes every varying byte lane
across all records at once with strided slice assignment. Both run in a few
seconds; the time is printed.
"""

import argparse
import array
import json
import os
import random
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_relay_capture as grc  # noqa: E402  (shares the host model and header builders)

ACK_PSH = grc.ACK | grc.PSH


def eth(ip, outgoing):
    macs = grc.GW_MAC + grc.OUR_MAC if outgoing else grc.OUR_MAC + grc.GW_MAC
    frame = macs + (b"\x08\x00" if ip[0] >> 4 == 4 else b"\x86\xdd") + ip
    return frame + b"\0" * max(0, 60 - len(frame))


def record_tail(frame):
    """caplen, len and the captured bytes: everything of a record but its timestamp."""
    cap = min(len(frame), grc.SNAPLEN)
    return struct.pack("<II", cap, len(frame)) + frame[:cap]


def tcp_frame(src, sport, dst, dport, payload, outgoing, rng):
    body = grc.tcp_header(sport, dport, rng.getrandbits(32), rng.getrandbits(32), ACK_PSH if payload else grc.ACK,
                          grc.TS_OPTIONS) + rng.randbytes(min(payload, 80)) + b"\xa5" * max(0, payload - 80)
    return eth(grc.ipv4(src, dst, 6, body, ident=rng.getrandbits(16)), outgoing)


def udp_frame(src, sport, dst, dport, payload, outgoing, rng):
    body = grc.udp_header(sport, dport, 8 + payload) + rng.randbytes(payload)
    return eth(grc.ipv4(src, dst, 17, body, ident=rng.getrandbits(16)), outgoing)


def bench_source(rng):
    return "198.%d.%d.%d" % (18 + rng.getrandbits(1), rng.getrandbits(8), 1 + rng.randrange(254))


def tor_mix(path, n, seed):
    rng = random.Random(seed)
    used = set()

    def eph(addr):
        while True:
            p = rng.randint(*grc.EPHEMERAL)
            if (addr, p) not in used:
                used.add((addr, p))
                return p

    relays = [(r[1], r[2]) for r in grc.REMOTE_RELAYS if r[1] != grc.DEAD_RELAY[0]]
    # kinds: (relay, category, direction, payload, weight, [record tails per connection])
    kinds = []

    def kind(relay, cat, direction, payload, weight):
        kinds.append([relay, cat, direction, payload, weight, []])
        return kinds[-1][5]

    orin = [kind("guardA", "or_inbound", d, p, w) for d, p, w in
            (("in", 1448, 14), ("in", 0, 9), ("out", 1448, 14), ("out", 0, 8))]
    orout = [kind("guardA", "or_outbound", d, p, w) for d, p, w in
             (("in", 1448, 10), ("in", 0, 5), ("out", 1448, 10), ("out", 0, 5))]
    ex = [kind("exitB", "exit", d, p, w) for d, p, w in
          (("in", 1448, 10), ("in", 0, 3), ("out", 1448, 3), ("out", 0, 5))]
    dns = [kind("host", "dns", d, p, w) for d, p, w in (("out", 40, 2), ("in", 160, 2))]
    for _ in range(3000):
        c, cp = bench_source(rng), rng.randint(10000, 65000)
        orin[0].append(record_tail(tcp_frame(c, cp, grc.GUARD_V4, grc.ORPORT, 1448, False, rng)))
        orin[1].append(record_tail(tcp_frame(c, cp, grc.GUARD_V4, grc.ORPORT, 0, False, rng)))
        orin[2].append(record_tail(tcp_frame(grc.GUARD_V4, grc.ORPORT, c, cp, 1448, True, rng)))
        orin[3].append(record_tail(tcp_frame(grc.GUARD_V4, grc.ORPORT, c, cp, 0, True, rng)))
    for i in range(1500):
        r, rp = grc.HTTPS_RELAY if i % 10 == 0 else rng.choice(relays)
        p = eph(grc.GUARD_V4)
        orout[0].append(record_tail(tcp_frame(r, rp, grc.GUARD_V4, p, 1448, False, rng)))
        orout[1].append(record_tail(tcp_frame(r, rp, grc.GUARD_V4, p, 0, False, rng)))
        orout[2].append(record_tail(tcp_frame(grc.GUARD_V4, p, r, rp, 1448, True, rng)))
        orout[3].append(record_tail(tcp_frame(grc.GUARD_V4, p, r, rp, 0, True, rng)))
    for i in range(1500):
        d, dp = bench_source(rng), rng.choice([443, 443, 80])
        p = eph(grc.EXITB_OUT)
        ex[0].append(record_tail(tcp_frame(d, dp, grc.EXITB_OUT, p, 1448, False, rng)))
        ex[1].append(record_tail(tcp_frame(d, dp, grc.EXITB_OUT, p, 0, False, rng)))
        ex[2].append(record_tail(tcp_frame(grc.EXITB_OUT, p, d, dp, 1448, True, rng)))
        ex[3].append(record_tail(tcp_frame(grc.EXITB_OUT, p, d, dp, 0, True, rng)))
    for i in range(200):
        p = eph(grc.HOST_V4)
        dns[0].append(record_tail(udp_frame(grc.HOST_V4, p, grc.RESOLVER, 53, 40, True, rng)))
        dns[1].append(record_tail(udp_frame(grc.RESOLVER, 53, grc.HOST_V4, p, 160, False, rng)))

    picks = rng.choices(range(len(kinds)), weights=[k[4] for k in kinds], k=n)
    conns = array.array("I", rng.randbytes(4 * n))
    tails = [k[5] for k in kinds]
    sizes = [len(t) for t in tails]
    per_kind = [0] * len(kinds)
    pack = struct.Struct("<II").pack
    parts = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, grc.SNAPLEN, 1)]
    append = parts.append
    base = grc.EPOCH * 1_000_000
    for i in range(n):
        k = picks[i]
        per_kind[k] += 1
        us = base + i * 5                        # 200,000 packets per second
        append(pack(us // 1_000_000, us % 1_000_000))
        append(tails[k][conns[i] % sizes[k]])
    with open(path, "wb") as f:
        f.write(b"".join(parts))

    cells = {}
    protos = dict.fromkeys(grc.PROTOCOLS, 0)
    total_bytes = 0
    for k, count in zip(kinds, per_kind):
        relay, cat, direction, payload, _, tl = k
        wire = struct.unpack_from("<I", tl[0], 4)[0]  # every tail of a kind has the same length
        v = cells.setdefault((relay, cat, direction), [0, 0, 0, 0])
        v[0] += count; v[1] += count * wire; v[2] += count * payload; v[3] += count * payload
        total_bytes += count * wire
        protos["ipv4"] += count
        protos["udp" if cat == "dns" else "tcp"] += count
    return summary(n, total_bytes, cells, protos, [])


def syn_flood(path, n, seed):
    """Every varying byte lane is written across all records with one slice assignment."""
    rng = random.Random(seed)
    tcp = grc.tcp_header(0, grc.ORPORT, 0, 0, grc.SYN, b"\x02\x04\x05\xb4")
    ip = grc.ipv4("198.18.0.0", grc.GUARD_V4, 6, tcp, ident=0, frag=0x4000)
    frame = eth(ip, False) + b"\0" * 4                     # 58 bytes + 6 of padding = 64
    frame = frame[:64]
    assert len(frame) == 64
    rec = struct.pack("<IIII", 0, 0, 64, 64) + frame
    size = len(rec)
    buf = bytearray(rec * n)
    E, I, T = 16, 16 + 14, 16 + 34                          # Ethernet, IPv4 and TCP offsets in a record

    def lanes(offset, data, width):
        """data holds `width` bytes per record, big-endian field order as on the wire."""
        for b in range(width):
            buf[offset + b::size] = data[b::width]

    # Timestamps: one SYN per microsecond.
    usec = array.array("I", range(1_000_000)) * (n // 1_000_000 + 1)
    del usec[n:]
    lanes(4, usec.tobytes(), 4)                             # ts_usec, little-endian like the header
    secs = bytearray()
    for s in range(n // 1_000_000 + 1):
        secs += struct.pack("<I", grc.EPOCH + s) * min(1_000_000, n - s * 1_000_000)
    lanes(0, bytes(secs), 4)
    # (source, port) pairs: a bijection of the record index over 32 bits, so all distinct.
    mult, add = 0x9E3779B1, rng.getrandbits(32)
    keys = [(i * mult + add) & 0xFFFFFFFF for i in range(n)]
    src_hi = bytes(18 | (k >> 31) for k in keys)            # 198.18 or 198.19
    src_lo = array.array("H", [(k >> 15) & 0xFFFF for k in keys])
    sport = array.array("H", [1024 + (k & 0x7FFF) for k in keys])
    del keys
    ident = array.array("H", rng.randbytes(2 * n))
    # IPv4 header checksum from the words that vary.
    const = sum(struct.unpack("!10H", ip[:20])) - struct.unpack("!H", ip[10:12])[0]
    const -= sum(struct.unpack("!H", ip[12:14]))            # template source 198.18.0.0, replaced below
    csum = array.array("H", [0]) * n
    for i, (a, b, c) in enumerate(zip(ident, src_hi, src_lo)):
        s = const + a + (0xC600 | b) + c
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        csum[i] = ~s & 0xFFFF
    for arr in (ident, src_lo, sport, csum):
        if sys.byteorder == "little":
            arr.byteswap()
    lanes(E + 14 + 4, ident.tobytes(), 2)
    lanes(E + 14 + 10, csum.tobytes(), 2)
    buf[E + 14 + 13::size] = src_hi
    lanes(E + 14 + 14, src_lo.tobytes(), 2)
    lanes(T, sport.tobytes(), 2)
    lanes(T + 4, rng.randbytes(4 * n), 4)                   # sequence numbers
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, grc.SNAPLEN, 1))
        f.write(buf)
    cells = {("guardA", "or_inbound", "in"): [n, 64 * n, 0, 0]}
    protos = dict.fromkeys(grc.PROTOCOLS, 0)
    protos["ipv4"] = protos["tcp"] = n
    conns = [{"relay": "guardA", "category": "or_inbound", "opened": 0, "unanswered": n, "closed": 0}]
    return summary(n, 64 * n, cells, protos, conns)


def summary(n, total_bytes, cells, protos, conns):
    key = lambda c: (grc.RELAYS.index(c[0]), grc.CATEGORIES.index(c[1]), grc.DIRECTIONS.index(c[2]))
    return {
        "totals": {"packets": n, "bytes": total_bytes},
        "categories": [{"relay": c[0], "category": c[1], "direction": c[2], "packets": v[0], "bytes": v[1],
                        "payload_bytes": v[2], "tor_payload_bytes": v[3]}
                       for c, v in sorted(cells.items(), key=lambda kv: key(kv[0]))],
        "undecoded": [],
        "protocols": protos,
        "connections": conns,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=["tor-mix", "syn-flood"])
    ap.add_argument("--tor-mix-packets", type=int, default=2_000_000)
    ap.add_argument("--syn-packets", type=int, default=5_000_000)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    grc.write_host_model(args.out)
    expected_path = os.path.join(args.out, "bench-expected.json")
    files = {}
    if os.path.exists(expected_path):
        files = json.load(open(expected_path)).get("files", {})
    jobs = [("tor-mix.pcap", tor_mix, args.tor_mix_packets), ("syn-flood.pcap", syn_flood, args.syn_packets)]
    for name, fn, n in jobs:
        if args.only and not name.startswith(args.only):
            continue
        t0 = time.monotonic()
        files[name] = fn(os.path.join(args.out, name), n, args.seed)
        print("%s: %d packets, %d bytes on the wire, generated in %.1f s"
              % (name, n, files[name]["totals"]["bytes"], time.monotonic() - t0))
    expected = {
        "schema_version": 1,
        "generator": {"script": "scripts/gen_bench_captures.py", "seed": args.seed},
        "args": {"torrc": grc.TORRC_ARGS, "consensus": "cached-microdesc-consensus", "config": "flowmeter.yaml"},
        "files": files,
    }
    with open(expected_path, "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
