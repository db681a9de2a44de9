#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Zero-filled memory for a large table that is probed at random, asking the
/// kernel for 2 MiB pages where it can (Linux transparent huge pages, which
/// Debian leaves in `madvise` mode).
///
/// Why: a SYN flood touches a random bucket of a 60 MiB flow table on every
/// packet — its bucket's tags and ranks and an entry, two different 4 KiB pages,
/// each a TLB miss and a page walk. With 2 MiB pages the whole table needs
/// about 30 TLB entries (the effect is measured in BENCHMARKS.md).
///
/// Anonymous `mmap` memory is zero-filled by the kernel, so a table whose
/// empty state is all zero bytes needs no initialising pass of its own. With
/// `prefault` (live capture) the pages are faulted in once, up front (one
/// write per 4 KiB), so that no capture thread takes a page fault
/// mid-stream. Without it (replay, which can wait) a page is faulted in when
/// first touched, so a small capture pays only for the pages its flows use,
/// not for the whole table. Where `mmap` is refused, falls back to an
/// ordinary zeroed allocation.
struct TableMemory {
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    private let mapped: Bool

    private static let hugePage = 2 << 20

    init(byteCount: Int, prefault: Bool = true) {
        let size = max(byteCount, 1)
        #if os(Linux)
        // Small tables (tests, tiny configurations) are not worth a huge page
        // each, unless the pages are left to fault lazily (no zeroing pass).
        if size >= Self.hugePage || !prefault, let mapping = Self.mapHuge(size, prefault: prefault) {
            (base, self.byteCount, mapped) = (mapping.base, mapping.byteCount, true)
            return
        }
        #endif
        base = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        self.byteCount = size
        mapped = false
    }

    #if os(Linux)
    private static func mapHuge(_ size: Int, prefault: Bool) -> (base: UnsafeMutableRawPointer, byteCount: Int)? {
        // Over-map by one huge page and trim, so the table starts 2 MiB aligned
        // (the kernel backs only aligned 2 MiB ranges with huge pages).
        let rounded = (size + hugePage - 1) / hugePage * hugePage
        let span = rounded + hugePage
        if let p = mmap(nil, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
           p != MAP_FAILED {
            let address = UInt(bitPattern: p)
            let aligned = (address + UInt(hugePage) - 1) & ~UInt(hugePage - 1)
            let head = Int(aligned - address)
            if head > 0 { _ = munmap(p, head) }
            let tail = span - head - rounded
            if tail > 0 { _ = munmap(p + head + rounded, tail) }
            // Advisory: where transparent huge pages are off this fails harmlessly.
            _ = madvise(p + head, rounded, MADV_HUGEPAGE)
            // Fault every page in now, while nothing is being captured: a
            // first touch later (a zeroed 2 MiB page, perhaps after compaction)
            // would stall a live capture thread mid-stream. Writing zeros keeps
            // the memory zero-filled. Safe: every offset is inside the mapping.
            if prefault {
                for offset in stride(from: 0, to: rounded, by: 4096) {
                    (p + head + offset).storeBytes(of: 0, as: UInt8.self)
                }
            }
            return (p + head, rounded)
        }
        return nil
    }
    #endif

    /// Returns the memory; the table must not be used afterwards.
    func release() {
        #if os(Linux)
        if mapped {
            _ = munmap(base, byteCount)
            return
        }
        #endif
        base.deallocate()
    }
}
