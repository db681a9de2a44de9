#!/usr/bin/env python3
"""Counts what tshark sees in capture files, the way FlowMeter counts them.

For each file: packets and wire bytes (frame.len), and the OUTERMOST IP layer's
family and the transport directly above it (FlowMeter decodes outer headers
only; tshark's own `tcp` filter would also match tunnelled or ICMP-quoted
headers). IP reassembly is switched off so each fragment is its own packet.

Usage: tshark_counts.py [--jobs N] [--cache FILE] FILE...   → JSON on stdout:
  {"FILE": {"status": "ok"|"error", "packets":…, "bytes":…, "ipv4":…, "ipv6":…,
            "tcp":…, "udp":…, "message": …}}
"""
import concurrent.futures
import hashlib
import json
import os
import subprocess
import sys

IPV6_EXTENSIONS = {"ipv6.hopopts", "ipv6.routing", "ipv6.fraghdr", "ipv6.dstopts",
                   "ipv6.shim6", "ipv6.mipv6", "ah"}


def outer_counts(protocols):
    layers = protocols.split(":")
    for i, name in enumerate(layers):
        if name in ("ip", "ipv6"):
            family = "ipv4" if name == "ip" else "ipv6"
            j = i + 1
            while j < len(layers) and layers[j] in IPV6_EXTENSIONS:
                j += 1
            transport = layers[j] if j < len(layers) else None
            return family, transport
    return None, None


def count(path):
    cmd = ["tshark", "-n", "-r", path, "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
           "-T", "fields", "-E", "separator=/t", "-e", "frame.len", "-e", "frame.protocols"]
    proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    result = {"packets": 0, "bytes": 0, "ipv4": 0, "ipv6": 0, "tcp": 0, "udp": 0}
    for line in proc.stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        result["packets"] += 1
        result["bytes"] += int(parts[0])
        family, transport = outer_counts(parts[1])
        if family:
            result[family] += 1
            if transport in ("tcp", "udp"):
                result[transport] += 1
    messages = [l for l in proc.stderr.splitlines() if "Running as user" not in l and l.strip()]
    result["status"] = "ok" if proc.returncode == 0 else "error"
    result["message"] = " ".join(messages)[:300]
    return path, result


def main():
    args = sys.argv[1:]
    jobs = os.cpu_count() or 1
    cache_path = None
    while args and args[0].startswith("--"):
        if args[0] == "--jobs":
            jobs = int(args[1]); args = args[2:]
        elif args[0] == "--cache":
            cache_path = args[1]; args = args[2:]
        else:
            sys.exit(f"unknown option {args[0]}")
    cache = {}
    if cache_path and os.path.exists(cache_path):
        with open(cache_path) as f:
            cache = json.load(f)

    def key(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    out, todo = {}, []
    for p in args:
        k = key(p)
        if k in cache:
            out[p] = cache[k]
        else:
            todo.append((p, k))
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for (p, k), (_, r) in zip(todo, pool.map(lambda t: count(t[0]), todo)):
            out[p] = r
            cache[k] = r
    if cache_path:
        os.makedirs(os.path.dirname(cache_path) or ".", exist_ok=True)
        with open(cache_path, "w") as f:
            json.dump(cache, f)
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
