#!/usr/bin/env bash
# What takes the space in the packaged binary: relinks the static release
# build's `flowmeter` (the link command SwiftPM recorded, plus -Map) and sums
# the linker's map by library and by output section, counting only what is
# loaded (no debug sections: the package strips them). Then the largest
# symbols (nm --size-sort).
#
#   scripts/binary_breakdown.sh [SCRATCH]   default .build-release-static
#                                           (scripts/package.sh builds it)
# env: EXTRA_LINK_FLAGS: more swiftc flags for the relink (to measure a cut
# before making it), KEEP: a directory for the map and the relinked binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=${1:-.build-release-static}
manifest="$scratch/release.yaml"
[ -f "$manifest" ] || { echo "no $manifest: build with scripts/package.sh (or swift build -c release --static-swift-stdlib --scratch-path $scratch) first" >&2; exit 2; }
work=${KEEP:-$(mktemp -d)}
mkdir -p "$work"
python3 - "$manifest" "$work" "${EXTRA_LINK_FLAGS:-}" <<'PY'
import json, re, subprocess, sys, shlex
manifest, work, extra = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(manifest).read()
i = text.index('"C.flowmeter-')
args = json.loads(re.search(r'\n    args: (\[.*?\])\n', text[i:]).group(1))
out = args.index("-o")
args[out + 1] = f"{work}/flowmeter"
subprocess.run(args + ["-Xlinker", f"-Map={work}/flowmeter.map"] + shlex.split(extra), check=True)
PY
cp "$work/flowmeter" "$work/flowmeter.stripped"
strip --remove-section=.comment --remove-section=.note "$work/flowmeter.stripped"
echo "# $(date -u +%FT%TZ) relinked: $(stat -c %s "$work/flowmeter") bytes, $(stat -c %s "$work/flowmeter.stripped") stripped as packaged"
python3 - "$work/flowmeter.map" <<'PY'
import re, sys, collections
by_lib = collections.Counter(); by_sec = collections.Counter(); cell = collections.Counter()
def owner(path):
    m = re.search(r'/([^/]+\.a)\(', path)
    if m: return m.group(1)
    m = re.search(r'/([^/]+)\.build/', path)
    if m: return m.group(1) + " (objects)"
    return path.rsplit('/', 1)[-1]
def family(sec):
    for f in ('.rodata', '.text', '.data.rel.ro', '.data', '.bss', '.eh_frame', '.init_array', '.tbss', '.tdata', '.gcc_except_table'):
        if sec == f or sec.startswith(f + '.'): return f
    return sec
def lld_lines(lines):
    """lld's map: VMA LMA Size Align, then the output section (indent 0),
    an input section `path:(section)` (indent 8) or a symbol (16)."""
    for line in lines:
        m = re.match(r'^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+ (\s*)(\S.*)$', line)
        if not m or len(m.group(3)) != 8: continue
        m2 = re.match(r'^(.*):\(([^)+]*)(\+0x[0-9a-f]+)?\)$', m.group(4))  # .eh_frame+0x18: a piece
        if m2: yield m2.group(2), int(m.group(1), 16), int(m.group(2), 16), m2.group(1)
def gnu_lines(lines):
    """GNU ld's and gold's map: ` section address size path`, the section
    alone on its line when its name is long."""
    started = False; pending = None
    for line in lines:
        if not started:
            started = line.startswith('Memory map'); continue
        m = re.match(r'^ (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$', line)
        if m:
            pending = None
            yield m.group(1), int(m.group(2), 16), int(m.group(3), 16), m.group(4); continue
        m1 = re.match(r'^ (\S+)\s*$', line)
        if m1: pending = m1.group(1); continue
        m2 = re.match(r'^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(/\S.*)$', line)
        if m2 and pending: yield pending, int(m2.group(1), 16), int(m2.group(2), 16), m2.group(3)
        pending = None
lines = open(sys.argv[1], errors='replace').read().splitlines()
parsed = lld_lines(lines) if 'VMA' in lines[0] else gnu_lines(lines)
for sec, addr, size, path in parsed:
    if addr == 0 or sec.startswith('.debug') or size == 0: continue
    lib, fam = owner(path), family(sec)
    by_lib[lib] += size; by_sec[fam] += size; cell[(lib, fam)] += size
total = sum(by_lib.values())
mb = lambda n: f"{n / 1e6:.2f}"
print(f"\nloaded input sections: {mb(total)} MB (plus the linker's own: dynamic symbols, relocations, .eh_frame_hdr)")
print("\n| library | MB | .rodata | .text | .eh_frame | other |\n|---|---|---|---|---|---|")
for lib, n in by_lib.most_common(25):
    r, t, e = cell[(lib, '.rodata')], cell[(lib, '.text')], cell[(lib, '.eh_frame')]
    print(f"| {lib} | {mb(n)} | {mb(r)} | {mb(t)} | {mb(e)} | {mb(n - r - t - e)} |")
rest = total - sum(n for _, n in by_lib.most_common(25))
print(f"| everything else | {mb(rest)} | | | | |")
print("\n| section (input) | MB |\n|---|---|")
for sec, n in by_sec.most_common(14): print(f"| {sec} | {mb(n)} |")
PY
echo
echo "size -A (the stripped binary, sections over 100 kB):"
size -A "$work/flowmeter.stripped" | awk 'NR > 2 && $2 > 100000 { printf "  %-22s %10d\n", $1, $2 }'
echo
echo "largest symbols (nm --size-sort, demangled):"
nm --size-sort -S -t d -C "$work/flowmeter" 2>/dev/null | tail -12 | awk '{ size = $2 + 0; $1 = ""; $2 = ""; printf "  %10d %s\n", size, substr($0, 1, 110) }'
[ -n "${KEEP:-}" ] || rm -rf "$work"
