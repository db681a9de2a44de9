#!/usr/bin/env python3
"""Every name a comment quotes in backticks must exist.

A comment that names a function or a type (`LiveBatchCounter.dispatch`,
`openInitialHandle()`) is read as a pointer; when the name is renamed or
removed, the pointer goes stale without the compiler noticing. This check
reads the comments of Sources/, Tests/, Fuzz/Sources and Benchmarks/, takes
every backticked span that looks like a Swift or C name (camelCase, or a
call `name()`), and requires each part to occur in code (not a comment)
somewhere in the repository or in the C headers the package builds against
(libpcap, libc, Linux), or be listed in scripts/comment-names-elsewhere.txt
(tor's and vnstat's names). Config keys (snake_case), commands and SQL are not
names and are left alone. Exit 1 listing the stale ones.
"""
import os, re, subprocess, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(root)
folders = ["Sources", "Tests", "Fuzz/Sources", "Benchmarks/Benchmarks"]
files = []
for folder in folders:
    for dirpath, _, names in os.walk(folder):
        files += [os.path.join(dirpath, n) for n in names if n.endswith((".swift", ".c", ".h"))]

comment = re.compile(r"^\s*(///?|\*|/\*)(.*)$")
trailing = re.compile(r"\s//+(.*)$")
span = re.compile(r"`([^`]+)`")
name = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\([^()]*\))?$")
words = set()
quoted = []  # (file, line, span)
for path in files:
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = comment.match(line)
            text = m.group(2) if m else None
            code = "" if m else line
            if not m:
                t = trailing.search(line)
                if t and '"' not in line[: t.start()]:
                    text, code = t.group(1), line[: t.start()]
            words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", code))
            if text:
                for s in span.findall(text):
                    quoted.append((path, n, s))

def is_name(s):
    if not name.match(s):
        return False
    base = s.split("(")[0]
    parts = base.split(".")
    # A call, a dotted member, or a camelCase / capitalised identifier; not snake_case keys.
    if s.endswith(")") or len(parts) > 1:
        return not all(p.islower() or "_" in p and p.lower() == p for p in parts)
    return any(c.isupper() for c in base[1:]) or base[0].isupper()

headers = ""
for h in ["/usr/include/pcap/pcap.h", "/usr/include/linux/if_packet.h", "/usr/include/sys/socket.h"]:
    if os.path.exists(h):
        headers += open(h, errors="replace").read()
header_words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", headers))
elsewhere = os.path.join(root, "scripts", "comment-names-elsewhere.txt")
with open(elsewhere) as f:
    header_words |= {l.strip() for l in f if l.strip() and not l.startswith("#")}

stale = []
for path, n, s in quoted:
    if not is_name(s):
        continue
    for part in re.sub(r"\(.*\)", "", s).split("."):
        if part and part not in words and part not in header_words:
            stale.append(f"{path}:{n}: `{s}` ({part} is not in any code)")
            break
if stale:
    print("check_comment_names: comments name what does not exist:")
    print("\n".join(stale))
    sys.exit(1)
print(f"check_comment_names: every name quoted in a comment exists ({len(quoted)} quoted spans read)")
