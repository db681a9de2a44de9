#!/usr/bin/env python3
"""Writes a copy of the Swift toolchain's static ICU library whose packaged
data keeps only what FlowMeter's Foundation calls read: time zones (rules,
types, metazones), calendar and number basics, normalization, and the root
and English locales (`en_US_POSIX` formats its dates). Dropped: collation
tailorings, break-iterator dictionaries, converters for legacy encodings,
transliterators, and every other locale's names, units and currencies;
a lookup of a dropped locale falls back to root, as ICU does for any locale
it lacks. That is 34 MB of the 75 MB binary (BENCHMARKS.md, "Binary size").

  scripts/icu_data_filter.py OUT_DIR
writes OUT_DIR/icu_data.o, the smaller data as `__wrap_SYMBOL`, and
OUT_DIR/icu_data.symbol, SYMBOL (`icudt76_dat`). scripts/package.sh links the
object with `--wrap=SYMBOL`: every reference to the toolchain's data then
resolves to the smaller copy, so the linker never fetches the archive member
that holds the full one (an object of the same name would clash with it:
the archive is read first). Prints the kept and dropped sizes.
"""
import os, re, shutil, struct, subprocess, sys, tempfile

KEPT_LOCALES = {"root", "en", "en_US", "en_US_POSIX", "pool", "res_index"}
KEPT_TREES = {"zone", "curr", "lang", "region", "unit", "rbnf", "coll", "brkitr"}


def kept(name):
    """name: 'icudt76l/zoneinfo64.res', 'icudt76l/coll/de.res', ..."""
    parts = name.split("/")[1:]
    leaf = parts[-1]
    stem = leaf.rsplit(".", 1)[0]
    if len(parts) == 1:
        if leaf.endswith(".cnv"):
            return False  # legacy encodings: Foundation converts UTF-8/16/32 itself
        if re.fullmatch(r"[a-z]{2,3}(_[A-Za-z0-9]+)*\.res", leaf):
            return stem in KEPT_LOCALES  # a locale's own data
        return True  # time zones, supplemental data, normalization, properties
    if parts[0] in KEPT_TREES and len(parts) == 2:
        if parts[0] == "coll" and leaf == "ucadata.icu":
            return True  # the root collation the root locale needs
        return leaf.endswith(".res") and stem in KEPT_LOCALES
    return False  # transliterators and the rest


def filtered(data):
    header = struct.unpack_from("<H", data, 0)[0]
    toc = data[header:]
    count = struct.unpack_from("<I", toc, 0)[0]
    entries = [struct.unpack_from("<II", toc, 4 + 8 * i) for i in range(count)]
    ends = [e[1] for e in entries[1:]] + [len(toc)]
    items = []
    for (name_at, data_at), end in zip(entries, ends):
        name = toc[name_at:toc.index(b"\0", name_at)]
        items.append((name, toc[data_at:end]))
    keep = [(n, d) for n, d in items if kept(n.decode())]
    dropped = sum(len(d) for n, d in items) - sum(len(d) for n, d in keep)
    # The layout ICU reads (udata's offset TOC): count, (name, data) offsets
    # from the TOC's start, the names, then each item 16-byte aligned.
    names = b""
    name_offsets = []
    base = 4 + 8 * len(keep)
    for n, _ in keep:
        name_offsets.append(base + len(names))
        names += n + b"\0"
    at = base + len(names)
    at += -at % 16
    body = b""
    data_offsets = []
    for _, d in keep:
        body += b"\0" * (-(at + len(body)) % 16)
        data_offsets.append(at + len(body))
        body += d
    out = struct.pack("<I", len(keep))
    for no, do in zip(name_offsets, data_offsets):
        out += struct.pack("<II", no, do)
    out += names
    out += b"\0" * (at - len(out))
    return data[:header] + out + body, len(keep), len(items), dropped


def main():
    out_dir = os.path.abspath(sys.argv[1])
    swiftc = shutil.which("swiftc")
    lib = os.path.join(os.path.dirname(os.path.realpath(swiftc)), "..", "lib", "swift_static", "linux", "lib_FoundationICU.a")
    lib = os.path.normpath(lib)
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        member = "icu_packaged_data.cpp.o"
        subprocess.run(["ar", "x", lib, member], cwd=work, check=True)
        symbols = subprocess.run(["nm", member], cwd=work, check=True, capture_output=True, text=True).stdout
        symbol = re.search(r"\bR (icudt\d+_dat)\b", symbols).group(1)
        subprocess.run(["objcopy", "-O", "binary", "--only-section=.rodata", member, "full.dat"], cwd=work, check=True)
        data = open(os.path.join(work, "full.dat"), "rb").read()
        small, kept_count, total, dropped = filtered(data)
        open(os.path.join(work, "kept.dat"), "wb").write(small)
        with open(os.path.join(work, "data.S"), "w") as s:
            s.write(f'.section .rodata\n.globl __wrap_{symbol}\n.type __wrap_{symbol}, @object\n.balign 16\n__wrap_{symbol}:\n'
                    f'.incbin "kept.dat"\n.size __wrap_{symbol}, . - __wrap_{symbol}\n.section .note.GNU-stack,"",@progbits\n')
        clang = os.path.join(os.path.dirname(os.path.realpath(swiftc)), "clang")
        subprocess.run([clang, "-c", "data.S", "-o", os.path.join(out_dir, "icu_data.o")], cwd=work, check=True)
        with open(os.path.join(out_dir, "icu_data.symbol"), "w") as f:
            f.write(symbol + "\n")
        target = os.path.join(out_dir, "icu_data.o")
    print(f"{symbol}: kept {kept_count} of {total} items, {len(small)} of {len(data)} bytes ({dropped} dropped) -> {target}")


if __name__ == "__main__":
    main()
