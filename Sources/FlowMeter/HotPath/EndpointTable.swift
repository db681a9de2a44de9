/// A read-only open-addressing hash table from (address, port) to a small
/// value, built once by the control plane and probed on the hot path without
/// allocating or hashing through `Hasher` (SipHash costs more than the whole
/// lookup here). Port 0 in a key is an ordinary value; callers that mean "any
/// port" insert and probe with port 0.
///
/// Invariant: capacity is a power of two and at least twice the entry count,
/// so every probe sequence reaches an empty slot.
public struct EndpointTable: Sendable {
    struct Slot: Sendable {
        var hi: UInt64
        var lo: UInt64
        var port: UInt16
        var used: Bool
        var value: Int32
    }

    private var slots: [Slot]
    private let mask: Int
    public private(set) var count = 0

    public init(minimumCapacity: Int = 8) {
        var n = 16
        while n < minimumCapacity * 2 { n <<= 1 }
        slots = Array(repeating: Slot(hi: 0, lo: 0, port: 0, used: false, value: 0), count: n)
        mask = n - 1
    }

    public init(_ entries: [(IPAddress, Port, Int32)]) {
        self.init(minimumCapacity: entries.count)
        for (a, p, v) in entries { insert(a, p, v) }
    }

    @inline(__always)
    static func hash(_ a: IPAddress, _ p: UInt16) -> Int {
        var h = (a.lo ^ (a.hi &* 0x9E37_79B9_7F4A_7C15)) &+ UInt64(p) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 29
        return Int(truncatingIfNeeded: h)
    }

    /// Inserts or replaces; the first insert of a key wins when `keepFirst`.
    public mutating func insert(_ a: IPAddress, _ p: Port, _ value: Int32, keepFirst: Bool = true) {
        precondition(count * 2 < slots.count, "EndpointTable sized too small")
        var i = EndpointTable.hash(a, p.rawValue) & mask
        while slots[i].used {
            if slots[i].hi == a.hi && slots[i].lo == a.lo && slots[i].port == p.rawValue {
                if !keepFirst { slots[i].value = value }
                return
            }
            i = (i + 1) & mask
        }
        slots[i] = Slot(hi: a.hi, lo: a.lo, port: p.rawValue, used: true, value: value)
        count += 1
    }

    /// The value stored for (address, port), or -1.
    @inline(__always)
    public func lookup(_ a: IPAddress, _ p: Port) -> Int32 {
        if count == 0 { return -1 }
        return slots.withUnsafeBufferPointer { buf in
            var i = EndpointTable.hash(a, p.rawValue) & mask
            while true {
                // Safe: i is masked by `mask`, which is buf.count - 1.
                let s = buf[i]
                if !s.used { return -1 }
                if s.lo == a.lo && s.hi == a.hi && s.port == p.rawValue { return s.value }
                i = (i + 1) & mask
            }
        }
    }

    public var bytesReserved: Int { slots.count * MemoryLayout<Slot>.stride }
}
