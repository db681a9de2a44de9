/// Identifies the datagram a fragment belongs to (RFC 791 / RFC 8200).
@usableFromInline
struct FragmentKey: Equatable {
    var src: IPAddress
    var dst: IPAddress
    var id: UInt32
    var proto: IPProtocol

    @inline(__always)
    var hash: UInt64 {
        var h = src.lo &* 0x9E37_79B9_7F4A_7C15 ^ dst.lo
        h = (h ^ src.hi ^ (dst.hi &* 0xC2B2_AE3D_27D4_EB4F)) &* 0xBF58_476D_1CE4_E5B9
        h ^= UInt64(id) &* 0x94D0_49BB_1331_11EB ^ UInt64(proto.rawValue)
        return h ^ (h >> 31)
    }
}

/// A small, bounded, direct-mapped cache from a datagram to the ports its first
/// fragment carried, so later fragments are counted with their flow. A newer
/// datagram that hashes to the same slot replaces the older one; entries older
/// than `maxAgeNanos` (Linux's `ipfrag_time`, 30 s) are not trusted. Memory is
/// fixed at creation: `slots * MemoryLayout<Entry>.stride` bytes.
@usableFromInline
final class FragmentCache {
    @usableFromInline
    struct Entry {
        var key = FragmentKey(src: .zero, dst: .zero, id: 0, proto: IPProtocol(rawValue: 0))
        var srcPort = PortNumber(0)
        var dstPort = PortNumber(0)
        var seenAt: Int64 = 0
        var used = false
    }

    static let maxAgeNanos: Int64 = 30_000_000_000
    private var entries: [Entry]
    private let mask: Int

    init(slots: Int) {
        var n = 1
        while n < max(slots, 1) { n <<= 1 }
        entries = Array(repeating: Entry(), count: n)
        mask = n - 1
    }

    var bytesReserved: Int { entries.count * MemoryLayout<Entry>.stride }

    @inline(__always)
    func remember(_ key: FragmentKey, srcPort: PortNumber, dstPort: PortNumber, at time: Int64) {
        entries[Int(truncatingIfNeeded: key.hash) & mask] =
            Entry(key: key, srcPort: srcPort, dstPort: dstPort, seenAt: time, used: true)
    }

    @inline(__always)
    func lookup(_ key: FragmentKey, at time: Int64) -> (src: PortNumber, dst: PortNumber)? {
        let e = entries[Int(truncatingIfNeeded: key.hash) & mask]
        guard e.used, e.key == key else { return nil }
        // Captures can run backwards in time; only an old entry is rejected.
        guard time &- e.seenAt <= FragmentCache.maxAgeNanos else { return nil }
        return (e.srcPort, e.dstPort)
    }
}
