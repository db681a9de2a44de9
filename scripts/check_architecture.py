#!/usr/bin/env python3
"""docs/architecture.md's table of targets says what Package.swift says.

Every library and executable target under Sources/ has a row, every row is a
target, and a row's "may import" column names exactly the target's declared
dependencies: the project's own targets by their short names (Core, Config…,
"the two shims"), and the packages' products (Yams, Crypto, GRDB, Logging,
NIO, ArgumentParser). The system's modules (Foundation, Glibc,
Synchronization, libpcap, libc) are not declared and are not checked; a row
that says "everything above" is checked only for existing. Needs `swift
package dump-package` (no build). Exit 1 naming each difference.
"""
import json, os, re, subprocess, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
package = json.loads(subprocess.run(["swift", "package", "dump-package"], cwd=root, check=True,
                                    capture_output=True, text=True).stdout)
declared = {}
for t in package["targets"]:
    if t["type"] not in ("regular", "executable") or (t.get("path") or "").startswith("Tests"):
        continue
    deps = set()
    for d in t["dependencies"]:
        if "byName" in d: deps.add(d["byName"][0])
        elif "target" in d: deps.add(d["target"][0])
        elif "product" in d: deps.add(d["product"][0])
    declared[t["name"]] = deps

text = open(os.path.join(root, "docs", "architecture.md"), encoding="utf-8").read()
rows = {}
for line in text.splitlines():
    m = re.match(r"^\|\s*`([A-Za-z]+)`\s*\|.*\|\s*([^|]*)\|\s*$", line)
    if m:
        rows[m.group(1)] = m.group(2).strip()

system = {"Foundation", "Glibc", "Synchronization", "libpcap", "libc", "Dispatch"}
products = {"Yams", "Crypto", "GRDB", "Logging", "ArgumentParser"}
problems = []
for name in sorted(set(declared) - set(rows)):
    problems.append(f"{name}: a target of Package.swift with no row in docs/architecture.md")
for name in sorted(set(rows) - set(declared)):
    problems.append(f"{name}: a row of docs/architecture.md that is no target")
for name, column in rows.items():
    if name not in declared or "everything above" in column:
        continue
    said = set()
    for word in re.findall(r"[A-Za-z]+", column.replace("the two shims", "CPcapShim CLinuxShim")):
        if word in system or word in ("the", "two", "and"):
            continue
        if word == "NIO":
            said |= {d for d in declared[name] if d.startswith("NIO")} or {"NIO"}
        elif word in products or word.startswith("C") and word.endswith("Shim"):
            said.add(word)
        else:
            said.add("FlowMeter" + word)
    if said != declared[name]:
        missing, extra = declared[name] - said, said - declared[name]
        problems.append(f"{name}: may import says {sorted(said)}; Package.swift declares {sorted(declared[name])}"
                        + (f" (not in the row: {sorted(missing)})" if missing else "")
                        + (f" (not declared: {sorted(extra)})" if extra else ""))
if problems:
    print("check_architecture: docs/architecture.md and Package.swift disagree:")
    print("\n".join(problems))
    sys.exit(1)
print(f"check_architecture: the table's {len(rows)} targets and their imports match Package.swift")
