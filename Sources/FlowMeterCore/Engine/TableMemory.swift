#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Zero-filled memory for a large table that is probed at random.
///
/// Anonymous `mmap` memory is zero-filled by the kernel, so a table whose
/// empty state is all zero bytes needs no initialising pass of its own, and
/// a page costs memory only once it is touched. Two uses:
///
/// * `whole` (replay): the table uses all of it from the start; pages fault
///   in when first touched, so a small capture pays only for the pages its
///   flows use, and the kernel is asked for 2 MiB pages (Linux transparent
///   huge pages, which Debian leaves in `madvise` mode). Why huge pages: a
///   SYN flood touches a random bucket of a 60 MiB table on every packet, two
///   different 4 KiB pages, each a TLB miss and a page walk; with 2 MiB pages
///   the whole table needs about 30 TLB entries (BENCHMARKS.md).
/// * `growing` (live capture): address space for all of it is reserved, the
///   first `initial` bytes are faulted in now (off the packet path), and the
///   rest as the table grows into it, one 4 KiB page at a time. Huge pages
///   are asked for only over 2 MiB ranges the table already fills
///   (`adviseHugePages`): the kernel's khugepaged then merges them in the
///   background, where asking first would make one first touch fault a
///   whole zeroed 2 MiB page on a capture thread, and would make a small
///   table cost 2 MiB.
///
/// Where `mmap` is refused, falls back to an ordinary zeroed allocation.
struct TableMemory {
    enum Use: Sendable {
        case whole
        case growing(initial: Int)
    }

    let base: UnsafeMutableRawPointer
    let byteCount: Int
    private let mapped: Bool

    static let hugePage = 2 << 20
    static let page = 4096

    init(byteCount: Int, use: Use) {
        let size = max(byteCount, 1)
        #if os(Linux)
        if let p = Self.map(size) {
            (base, self.byteCount, mapped) = (p, size, true)
            switch use {
            case .whole:
                // Advisory: where transparent huge pages are off this fails harmlessly.
                _ = madvise(p, Self.roundUp(size, Self.hugePage), MADV_HUGEPAGE)
            case .growing(let initial):
                // Where THP is `always`, small pages until a range is full (above).
                _ = madvise(p, Self.roundUp(size, Self.hugePage), MADV_NOHUGEPAGE)
                Self.faultIn(p, bytes: min(initial, size))
            }
            return
        }
        #endif
        base = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        self.byteCount = size
        mapped = false
    }

    static func roundUp(_ n: Int, _ unit: Int) -> Int { (n + unit - 1) / unit * unit }

    #if os(Linux)
    /// A 2 MiB aligned mapping of `size` bytes (rounded up to 2 MiB): the
    /// kernel backs only aligned 2 MiB ranges with huge pages, and each
    /// 64-byte bucket line stays within one cache line. Over-maps by one huge
    /// page and trims. MAP_NORESERVE: what is never touched is never charged.
    private static func map(_ size: Int) -> UnsafeMutableRawPointer? {
        let rounded = roundUp(size, hugePage)
        let span = rounded + hugePage
        guard let p = mmap(nil, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              p != MAP_FAILED else { return nil }
        let address = UInt(bitPattern: p)
        let aligned = (address + UInt(hugePage) - 1) & ~UInt(hugePage - 1)
        let head = Int(aligned - address)
        if head > 0 { _ = munmap(p, head) }
        let tail = span - head - rounded
        if tail > 0 { _ = munmap(p + head + rounded, tail) }
        return p + head
    }

    /// Faults the first `bytes` in now, while nothing is being captured.
    /// Writing zeros keeps the memory zero-filled. Safe: every offset is
    /// inside the mapping.
    private static func faultIn(_ p: UnsafeMutableRawPointer, bytes: Int) {
        for offset in stride(from: 0, to: bytes, by: page) {
            (p + offset).storeBytes(of: 0, as: UInt8.self)
        }
    }
    #endif

    /// The table now fills its first `used` bytes: asks for huge pages over
    /// the whole 2 MiB ranges among them from `from` on (the caller passes
    /// what it advised before), and returns the new mark. Advisory and off
    /// the packet's own work: the kernel merges the pages in the background.
    func adviseHugePages(used: Int, from: Int) -> Int {
        #if os(Linux)
        let end = min(used, byteCount) / Self.hugePage * Self.hugePage
        guard mapped, end > from else { return from }
        _ = madvise(base + from, end - from, MADV_HUGEPAGE)
        return end
        #else
        return from
        #endif
    }

    /// Returns the memory; the table must not be used afterwards.
    func release() {
        #if os(Linux)
        if mapped {
            _ = munmap(base, Self.roundUp(byteCount, Self.hugePage))
            return
        }
        #endif
        base.deallocate()
    }
}
