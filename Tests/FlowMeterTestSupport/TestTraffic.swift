import Foundation

/// A small relay-host capture written by the test, with its ground truth:
/// every frame is built for a known (relay, category, direction) or
/// undecoded reason, so the expected counters come from construction, not
/// from FlowMeter's own classifier. Addresses are documentation ranges
/// (RFC 5737); the frames only ever cross the test's own veth pair, and the
/// meter namespace has no route for them, so nothing answers.
struct TestTraffic {
    static let relayAddress = "198.51.100.10"
    struct Key: Hashable, CustomStringConvertible {
        var relay: String
        var category: String
        var direction: String
        var description: String { "\(relay)/\(category)/\(direction)" }
    }

    private(set) var frames: [[UInt8]] = []
    private(set) var expected: [Key: (packets: UInt64, bytes: UInt64)] = [:]
    private(set) var expectedUndecoded: [String: UInt64] = [:]

    var packetCount: UInt64 { UInt64(frames.count) }

    /// `rounds` copies of every kind of frame, payload sizes varying per round.
    static func relayHost(rounds: Int) -> TestTraffic {
        var t = TestTraffic()
        let relay = ip(198, 51, 100, 10)
        let client = ip(203, 0, 113, 5), peerRelay = ip(203, 0, 113, 7)
        let resolver = ip(203, 0, 113, 53), admin = ip(203, 0, 113, 9)
        for round in 0..<rounds {
            let n = 20 + (round * 37) % 900
            t.add(tcp(client, 40000, relay, 9001, payload: n), .init(relay: "guard1", category: "or_inbound", direction: "in"))
            t.add(tcp(relay, 9001, client, 40000, payload: n + 3), .init(relay: "guard1", category: "or_inbound", direction: "out"))
            t.add(tcp(relay, 45000, peerRelay, 9001, payload: n / 2), .init(relay: "guard1", category: "or_outbound", direction: "out"))
            t.add(tcp(peerRelay, 9001, relay, 45000, payload: n / 3), .init(relay: "guard1", category: "or_outbound", direction: "in"))
            t.add(udp(relay, 50000, resolver, 53, payload: 30), .init(relay: "host", category: "dns", direction: "out"))
            t.add(udp(resolver, 53, relay, 50000, payload: 90), .init(relay: "host", category: "dns", direction: "in"))
            t.add(tcp(admin, 50001, relay, 22, payload: 48), .init(relay: "host", category: "other", direction: "in"))
            if round % 4 == 0 {
                t.add(arp(), .init(relay: "host", category: "non_ip", direction: "in"))
                var bad = tcp(client, 40000, relay, 9001, payload: 10)
                bad[14] = 0x44  // IHL 4: shorter than the fixed header
                t.frames.append(bad)
                t.expectedUndecoded["ipv4_header_length_invalid", default: 0] += 1
            }
        }
        return t
    }

    mutating func add(_ frame: [UInt8], _ key: Key) {
        frames.append(frame)
        let v = expected[key] ?? (0, 0)
        expected[key] = (v.packets + 1, v.bytes + UInt64(frame.count))
    }

    /// Writes a classic pcap (microseconds, Ethernet); with `vlan`, every
    /// frame carries an 802.1Q tag with that id.
    func write(to path: String, vlan: UInt16? = nil) throws {
        var out: [UInt8] = []
        func le32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func le16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        le32(0xA1B2_C3D4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(1)
        for (i, untagged) in frames.enumerated() {
            var f = untagged
            if let vlan { f.insert(contentsOf: [0x81, 0x00, UInt8(vlan >> 8), UInt8(vlan & 0xFF)], at: 12) }
            le32(1_700_000_000 + UInt32(i / 1000)); le32(UInt32(i % 1000) * 1000)
            le32(UInt32(f.count)); le32(UInt32(f.count))
            out.append(contentsOf: f)
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    // MARK: Frames

    static func ip(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> [UInt8] { [a, b, c, d] }
    private static let macA: [UInt8] = [0x02, 0, 0, 0, 0, 0x0A]
    private static let macB: [UInt8] = [0x02, 0, 0, 0, 0, 0x0B]

    private static func ipv4(_ src: [UInt8], _ dst: [UInt8], proto: UInt8, l4: [UInt8]) -> [UInt8] {
        let total = 20 + l4.count
        var h: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, proto, 0, 0]
        h += src + dst
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(h[i]) << 8 | UInt32(h[i + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        let c = ~UInt16(sum)
        h[10] = UInt8(c >> 8); h[11] = UInt8(c & 0xFF)
        return macB + macA + [0x08, 0x00] + h + l4
    }

    static func tcp(_ src: [UInt8], _ sp: UInt16, _ dst: [UInt8], _ dp: UInt16, payload: Int) -> [UInt8] {
        var l4: [UInt8] = [UInt8(sp >> 8), UInt8(sp & 0xFF), UInt8(dp >> 8), UInt8(dp & 0xFF),
                           0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
        l4 += [UInt8](repeating: 0x5A, count: payload)
        return ipv4(src, dst, proto: 6, l4: l4)
    }

    static func udp(_ src: [UInt8], _ sp: UInt16, _ dst: [UInt8], _ dp: UInt16, payload: Int) -> [UInt8] {
        let len = 8 + payload
        var l4: [UInt8] = [UInt8(sp >> 8), UInt8(sp & 0xFF), UInt8(dp >> 8), UInt8(dp & 0xFF),
                           UInt8(len >> 8), UInt8(len & 0xFF), 0, 0]
        l4 += [UInt8](repeating: 0x33, count: payload)
        return ipv4(src, dst, proto: 17, l4: l4)
    }

    /// An ARP request for an address nobody in the test has.
    static func arp() -> [UInt8] {
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + macA + [0x08, 0x06,
         0, 1, 0x08, 0, 6, 4, 0, 1] + macA + [198, 51, 100, 77] + [0, 0, 0, 0, 0, 0] + [198, 51, 100, 78]
    }
}
