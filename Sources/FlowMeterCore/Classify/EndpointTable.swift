/// A read-only open-addressing hash table from (address, port) to a small
/// value, built once by the control plane and probed on the hot path without
/// allocating or hashing through `Hasher` (SipHash costs more than the whole
/// lookup here). Port 0 in a key is an ordinary value; callers that mean "any
/// port" insert and probe with port 0.
///
/// A final class over one allocation, immutable after `init`: a probe loads
/// one pointer and a mask. (A struct of `Array`s would have every table's
/// fields loaded and spilled at the top of each classification.)
///
/// Invariant: capacity is a power of two and at least twice the entry count,
/// so every probe sequence reaches an empty slot.
public final class EndpointTable: Sendable {
    struct Slot {
        var hi: UInt64
        var lo: UInt64
        var port: UInt16
        var used: Bool
        var value: Int32
    }

    // Safe (Sendable): written only inside `init`, read-only afterwards.
    private nonisolated(unsafe) let slots: UnsafeMutablePointer<Slot>
    private let mask: Int
    public let count: Int

    /// Builds the table; the first entry for a key wins.
    public init(_ entries: [(IPAddress, PortNumber, Int32)] = []) {
        var n = 16
        while n < entries.count * 2 { n <<= 1 }
        slots = .allocate(capacity: n)
        slots.initialize(repeating: Slot(hi: 0, lo: 0, port: 0, used: false, value: 0), count: n)
        mask = n - 1
        var count = 0
        for (a, p, v) in entries {
            var i = EndpointTable.hash(a, p.rawValue) & mask
            var present = false
            while slots[i].used {
                if slots[i].hi == a.hi && slots[i].lo == a.lo && slots[i].port == p.rawValue { present = true; break }
                i = (i + 1) & mask
            }
            if present { continue }
            slots[i] = Slot(hi: a.hi, lo: a.lo, port: p.rawValue, used: true, value: v)
            count += 1
        }
        self.count = count
    }

    deinit {
        slots.deinitialize(count: mask + 1)
        slots.deallocate()
    }

    @inline(__always)
    static func hash(_ a: IPAddress, _ p: UInt16) -> Int {
        var h = (a.lo ^ (a.hi &* 0x9E37_79B9_7F4A_7C15)) &+ UInt64(p) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 29
        return Int(truncatingIfNeeded: h)
    }

    /// The value stored for (address, port), or -1.
    @inline(__always)
    public func lookup(_ a: IPAddress, _ p: PortNumber) -> Int32 {
        var i = EndpointTable.hash(a, p.rawValue) & mask
        while true {
            // Safe: i is masked by `mask`, the allocation's size - 1; an empty
            // slot always exists (capacity ≥ 2 × count), so the loop ends.
            let s = slots + i
            if !s.pointee.used { return -1 }
            if s.pointee.lo == a.lo && s.pointee.hi == a.hi && s.pointee.port == p.rawValue { return s.pointee.value }
            i = (i + 1) & mask
        }
    }

    public var bytesReserved: Int { (mask + 1) * MemoryLayout<Slot>.stride }
}
