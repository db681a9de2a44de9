import Testing
@testable import FlowMeterCore

/// The decoder's one-pass common case (Ethernet/IPv4/TCP-or-UDP) must write
/// exactly what the general path writes, and decline everything else.
@Suite struct DecoderCommonCaseTests {
    /// Every stored field of a summary, for comparing two of them.
    static func fields(_ s: PacketSummary) -> [String] {
        [String(s.timestampNanos), String(s.src.hi), String(s.src.lo), String(s.dst.hi), String(s.dst.lo),
         String(s.wireLength), String(s.payloadLength), String(s.srcPort.rawValue), String(s.dstPort.rawValue),
         String(s.proto.rawValue), String(s.tcpFlags), String(s.family), String(s.outcome.rawValue),
         String(s.failure.rawValue), String(s.linkSaysOutgoing), String(s.linkSaysIncoming),
         String(s.transportHeaderPresent)]
    }

    /// An Ethernet/IPv4 frame whose bytes 12…60 come from the generator, mostly
    /// well formed so that the common case is taken often.
    static func frame(_ x: inout UInt64) -> [UInt8] {
        func next() -> UInt64 { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x }
        var f = (0..<70).map { _ in UInt8(truncatingIfNeeded: next()) }
        let r = next()
        if r & 7 != 0 { f[12] = 0x08; f[13] = 0x00 }
        if r & 0x38 != 0 { f[14] = 0x45 }
        if r & 0x1C0 != 0 { f[20] &= 0x40; f[21] = 0 }
        if r & 0x600 != 0 { f[23] = r & 0x800 != 0 ? 6 : 17 }
        if r & 0x3000 != 0 { f[16] = 0; f[17] = UInt8(truncatingIfNeeded: 20 + (r >> 16) % 60) }
        if r & 0xC000 != 0 { f[46] = 0x50 | (f[46] & 0x0F) }
        let length = Int(r >> 24 % 71)
        return Array(f.prefix(max(1, length % 71)))
    }

    @Test func theCommonCaseWritesWhatTheGeneralPathWrites() {
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        var taken = 0
        for i in 0..<20_000 {
            let f = Self.frame(&x)
            let wire = UInt32(f.count + (i % 3 == 0 ? 0 : i % 200))
            f.withUnsafeBytes { raw in
                let b = WireBytes(base: raw.baseAddress!, count: raw.count)
                var fast = PacketSummary()
                fast.wireLength = wire
                fast.timestampNanos = Int64(i)
                var general = fast
                var decoder = PacketDecoder(linkType: .ethernet)
                if decoder.decodeEthernetIPv4Common(b, &fast) {
                    taken += 1
                    decoder.decodeLink(b, &general)
                    #expect(Self.fields(fast) == Self.fields(general), "frame \(i): \(f)")
                } else {
                    #expect(Self.fields(fast) == Self.fields(general), "declined frame \(i) was written to")
                }
            }
        }
        // Both sides were exercised.
        #expect(taken > 2_000 && taken < 19_000, "common case taken \(taken) times of 20,000")
    }
}
