import FlowMeterCore
import Foundation

/// A small relay-host capture written by the test, with its ground truth:
/// every frame is built for a known (relay, category, direction) or
/// undecoded reason, so the expected counters come from construction, not
/// from FlowMeter's own classifier. Addresses are documentation ranges
/// (RFC 5737); the frames only ever cross the test's own veth pair, and the
/// meter namespace has no route for them, so nothing answers.
public struct TestTraffic {
    public static let relayAddress = "198.51.100.10"
    /// The relay host's IPv6 address (RFC 3849 documentation range).
    public static let relayAddress6 = "2001:db8::10"
    public struct Key: Hashable, CustomStringConvertible {
        public var relay: String
        public var category: String
        public var direction: String
        public var description: String { "\(relay)/\(category)/\(direction)" }
        public init(relay: String, category: String, direction: String) {
            self.relay = relay; self.category = category; self.direction = direction
        }
    }

    public private(set) var frames: [[UInt8]] = []
    public private(set) var expected: [Key: (packets: UInt64, bytes: UInt64)] = [:]
    public private(set) var expectedUndecoded: [String: UInt64] = [:]
    public private(set) var expectedUndecodedBytes: [String: UInt64] = [:]

    /// Wire bytes of every frame.
    public var byteCount: UInt64 { frames.reduce(0) { $0 + UInt64($1.count) } }

    public var packetCount: UInt64 { UInt64(frames.count) }

    /// No frames: a test composes its own with `add` and the frame builders.
    public init() {}

    /// `rounds` copies of every kind of frame, payload sizes varying per round.
    public static func relayHost(rounds: Int) -> TestTraffic {
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
                t.addUndecoded(bad, "ipv4_header_length_invalid")
            }
        }
        return t
    }

    /// Fragments as an exit sees them: large DNS answers and NTP datagrams
    /// cut in several fragments (IPv4 and IPv6, in order, with an
    /// overlapping repeat), and lone later fragments whose first fragment
    /// never comes. A datagram's fragments count in its category; a lone
    /// one under `fragment_first_not_seen`, with its wire bytes either way.
    public static func fragments(rounds: Int) -> TestTraffic {
        var t = TestTraffic()
        let relay = ip(198, 51, 100, 10), resolver = ip(203, 0, 113, 53), clock = ip(203, 0, 113, 123)
        let relay6 = ip6(0x10), resolver6 = ip6(0x53)
        let dnsIn = Key(relay: "host", category: "dns", direction: "in")
        let otherOut = Key(relay: "host", category: "other", direction: "out")
        for round in 0..<rounds {
            let id = UInt16(truncatingIfNeeded: 0x1000 + round)
            for f in udpFragments(resolver, 53, relay, 50000 + UInt16(round % 7), payload: 2900 + round % 200, id: id) {
                t.add(f, dnsIn)
            }
            let ntp = udpFragments(relay, 123, clock, 123, payload: 1600, id: id &+ 0x800)
            for f in ntp { t.add(f, otherOut) }
            t.add(ntp[1], otherOut)  // a repeated later fragment: its range overlaps the first copy
            for f in udp6Fragments(resolver6, 53, relay6, 50000, payload: 3100, id: 0x7000 + UInt32(round)) {
                t.add(f, dnsIn)
            }
            // Later fragments whose first one is never sent (as in a fragment flood).
            t.addUndecoded(loneFragment(resolver, relay, id: 0xE000 &+ id, offsetWords: 185, payload: 400), "fragment_first_not_seen")
            t.addUndecoded(loneFragment6(resolver6, relay6, id: 0xE000_0000 + UInt32(round), offsetWords: 181, payload: 600), "fragment_first_not_seen")
        }
        return t
    }

    /// `count` connections from one client address to the relay's ORPort,
    /// each from its own port: handshake, then data both ways.
    public static func connectionsFromOneAddress(count: Int) -> TestTraffic {
        var t = TestTraffic()
        let relay = ip(198, 51, 100, 10), client = ip(203, 0, 113, 5)
        let inbound = Key(relay: "guard1", category: "or_inbound", direction: "in")
        let outbound = Key(relay: "guard1", category: "or_inbound", direction: "out")
        for i in 0..<count {
            let port = UInt16(20000 + i)
            t.add(tcp(client, port, relay, 9001, payload: 0, flags: 0x02), inbound)
            t.add(tcp(relay, 9001, client, port, payload: 0, flags: 0x12), outbound)
            t.add(tcp(client, port, relay, 9001, payload: 0, flags: 0x10), inbound)
            t.add(tcp(client, port, relay, 9001, payload: 200), inbound)
            t.add(tcp(relay, 9001, client, port, payload: 500), outbound)
        }
        return t
    }

    /// DNS exchanges as an exit's resolvers answer them: a small query from
    /// the relay, then an answer too large for one frame, in fragments (IPv4
    /// and IPv6, over 16 resolver addresses so the flows spread over the
    /// capture handles). Each exchange is one UDP flow with packets both ways.
    public static func fragmentedAnswers(exchanges: Int) -> TestTraffic {
        var t = TestTraffic()
        let relay = ip(198, 51, 100, 10), relay6 = ip6(0x10)
        let dnsIn = Key(relay: "host", category: "dns", direction: "in")
        let dnsOut = Key(relay: "host", category: "dns", direction: "out")
        for i in 0..<exchanges {
            let port = UInt16(33000 + i)
            if i % 2 == 0 {
                let resolver = ip(203, 0, 113, UInt8(60 + i % 16))
                t.add(udp(relay, port, resolver, 53, payload: 40), dnsOut)
                for f in udpFragments(resolver, 53, relay, port, payload: 3000, id: UInt16(0x3000 + i)) { t.add(f, dnsIn) }
            } else {
                let resolver6 = ip6(UInt8(0x60 + i % 16))
                t.add(udp6(relay6, port, resolver6, 53, payload: 40), dnsOut)
                for f in udp6Fragments(resolver6, 53, relay6, port, payload: 3000, id: UInt32(0x3000 + i)) { t.add(f, dnsIn) }
            }
        }
        return t
    }

    /// Frames the receiving stack discards after the packet tap has seen
    /// them: a protocol nobody handles, IPv4 for another host's MAC, IPv6
    /// to an interface where IPv6 is disabled (the test's namespaces).
    public static func strayFrames(rounds: Int) -> TestTraffic {
        var t = TestTraffic()
        let relay = ip(198, 51, 100, 10), stranger = ip(203, 0, 113, 5)
        for round in 0..<rounds {
            t.add([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + macA + [0x88, 0xB5] + [UInt8](repeating: UInt8(round & 0xFF), count: 46),
                  Key(relay: "host", category: "non_ip", direction: "in"))
            var otherMAC = udp(stranger, 40000, relay, 9, payload: 20 + round % 30)
            otherMAC.replaceSubrange(0..<6, with: [0x02, 0, 0, 0, 0, 0x99])
            t.add(otherMAC, Key(relay: "host", category: "other", direction: "in"))
            let payload = [UInt8](repeating: 0x11, count: 16)
            let udp6: [UInt8] = [0x9C, 0x40, 0, 9, 0, 24, 0, 0] + payload
            let header: [UInt8] = [0x60, 0, 0, 0, 0, UInt8(udp6.count), 17, 64] + ip6(0x99) + ip6(0x10)
            t.add([0x33, 0x33, 0, 0, 0, 1] + macA + [0x86, 0xDD] + header + udp6, Key(relay: "host", category: "other", direction: "in"))
        }
        return t
    }

    /// `count` lone later fragments, as a fragment flood sends them.
    public static func fragmentFlood(count: Int) -> TestTraffic {
        var t = TestTraffic()
        let target = ip(198, 51, 100, 10)
        for i in 0..<count {
            let attacker = ip(203, 0, 113, UInt8(1 + i % 200))
            t.addUndecoded(loneFragment(attacker, target, id: UInt16(truncatingIfNeeded: i), offsetWords: UInt16(1 + i % 1000), payload: 8 * (1 + i % 60)),
                           "fragment_first_not_seen")
        }
        return t
    }

    public mutating func addUndecoded(_ frame: [UInt8], _ reason: String) {
        frames.append(frame)
        expectedUndecoded[reason, default: 0] += 1
        expectedUndecodedBytes[reason, default: 0] += UInt64(frame.count)
    }

    public mutating func add(_ frame: [UInt8], _ key: Key) {
        frames.append(frame)
        let v = expected[key] ?? (0, 0)
        expected[key] = (v.packets + 1, v.bytes + UInt64(frame.count))
    }

    /// Writes a classic pcap (microseconds, Ethernet) whose every frame
    /// carries `vlanTags`, outermost first: one is 802.1Q, two are QinQ (an
    /// 802.1ad outer tag).
    public func write(to path: String, vlanTags: [UInt16] = []) throws {
        var out: [UInt8] = []
        func le32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func le16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        le32(0xA1B2_C3D4); le16(2); le16(4); le32(0); le32(0); le32(65535); le32(1)
        for (i, untagged) in frames.enumerated() {
            var f = untagged
            for (n, id) in vlanTags.enumerated().reversed() {
                let tpid: [UInt8] = n == 0 && vlanTags.count > 1 ? [0x88, 0xA8] : [0x81, 0x00]
                f.insert(contentsOf: tpid + [UInt8(id >> 8), UInt8(id & 0xFF)], at: 12)
            }
            le32(1_700_000_000 + UInt32(i / 1000)); le32(UInt32(i % 1000) * 1000)
            le32(UInt32(f.count)); le32(UInt32(f.count))
            out.append(contentsOf: f)
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    // MARK: Frames

    public static func ip(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> [UInt8] { [a, b, c, d] }
    private static let macA: [UInt8] = [0x02, 0, 0, 0, 0, 0x0A]
    private static let macB: [UInt8] = [0x02, 0, 0, 0, 0, 0x0B]

    /// 2001:db8::`last` (the documentation prefix).
    public static func ip6(_ last: UInt8) -> [UInt8] { [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [last] }

    /// An IPv4 frame; `fragment` is the flags-and-offset field (default: DF, whole).
    private static func ipv4(_ src: [UInt8], _ dst: [UInt8], proto: UInt8, l4: [UInt8],
                             id: UInt16 = 1, fragment: UInt16 = 0x4000) -> [UInt8] {
        let total = 20 + l4.count
        var h: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), UInt8(id >> 8), UInt8(id & 0xFF),
                          UInt8(fragment >> 8), UInt8(fragment & 0xFF), 64, proto, 0, 0]
        h += src + dst
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(h[i]) << 8 | UInt32(h[i + 1]) }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        let c = ~UInt16(sum)
        h[10] = UInt8(c >> 8); h[11] = UInt8(c & 0xFF)
        return macB + macA + [0x08, 0x00] + h + l4
    }

    /// A TCP segment; `flags` default PSH|ACK (0x02 SYN, 0x12 SYN|ACK, 0x10 ACK).
    public static func tcp(_ src: [UInt8], _ sp: UInt16, _ dst: [UInt8], _ dp: UInt16, payload: Int,
                           flags: UInt8 = 0x18) -> [UInt8] {
        var l4: [UInt8] = [UInt8(sp >> 8), UInt8(sp & 0xFF), UInt8(dp >> 8), UInt8(dp & 0xFF),
                           0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xFF, 0xFF, 0, 0, 0, 0]
        l4 += [UInt8](repeating: 0x5A, count: payload)
        return ipv4(src, dst, proto: 6, l4: l4)
    }

    public static func udp(_ src: [UInt8], _ sp: UInt16, _ dst: [UInt8], _ dp: UInt16, payload: Int) -> [UInt8] {
        let len = 8 + payload
        var l4: [UInt8] = [UInt8(sp >> 8), UInt8(sp & 0xFF), UInt8(dp >> 8), UInt8(dp & 0xFF),
                           UInt8(len >> 8), UInt8(len & 0xFF), 0, 0]
        l4 += [UInt8](repeating: 0x33, count: payload)
        return ipv4(src, dst, proto: 17, l4: l4)
    }

    /// A whole UDP datagram over IPv6 (no fragment header).
    public static func udp6(_ src: [UInt8], _ sp: UInt16, _ dst: [UInt8], _ dp: UInt16, payload: Int) -> [UInt8] {
        let l4 = udpHeader(sp, dp, payload: payload) + [UInt8](repeating: 0x33, count: payload)
        let header: [UInt8] = [0x60, 0, 0, 0, UInt8(l4.count >> 8), UInt8(l4.count & 0xFF), 17, 64] + src + dst
        return macB + macA + [0x86, 0xDD] + header + l4
    }

    /// A UDP datagram as IPv4 fragments of at most 1,480 bytes of IP payload.
    public static func udpFragments(_ src: [UInt8], _ sp: UInt16, _ dst: [UInt8], _ dp: UInt16,
                             payload: Int, id: UInt16) -> [[UInt8]] {
        let data = udpHeader(sp, dp, payload: payload) + [UInt8](repeating: 0x44, count: payload)
        return stride(from: 0, to: data.count, by: 1480).map { start in
            let end = min(start + 1480, data.count)
            let more: UInt16 = end < data.count ? 0x2000 : 0
            return ipv4(src, dst, proto: 17, l4: Array(data[start..<end]), id: id, fragment: more | UInt16(start / 8))
        }
    }

    /// A later IPv4 fragment (offset in 8-byte words) of a datagram whose first fragment is never sent.
    public static func loneFragment(_ src: [UInt8], _ dst: [UInt8], id: UInt16, offsetWords: UInt16, payload: Int) -> [UInt8] {
        ipv4(src, dst, proto: 17, l4: [UInt8](repeating: 0x55, count: payload), id: id, fragment: 0x2000 | offsetWords)
    }

    /// A UDP datagram as IPv6 fragments (fragment header, at most 1,448 bytes each).
    public static func udp6Fragments(_ src: [UInt8], _ sp: UInt16, _ dst: [UInt8], _ dp: UInt16,
                              payload: Int, id: UInt32) -> [[UInt8]] {
        let data = udpHeader(sp, dp, payload: payload) + [UInt8](repeating: 0x66, count: payload)
        return stride(from: 0, to: data.count, by: 1448).map { start in
            let end = min(start + 1448, data.count)
            return ipv6Fragment(src, dst, id: id, offsetWords: UInt16(start / 8), more: end < data.count, Array(data[start..<end]))
        }
    }

    public static func loneFragment6(_ src: [UInt8], _ dst: [UInt8], id: UInt32, offsetWords: UInt16, payload: Int) -> [UInt8] {
        ipv6Fragment(src, dst, id: id, offsetWords: offsetWords, more: true, [UInt8](repeating: 0x77, count: payload))
    }

    private static func ipv6Fragment(_ src: [UInt8], _ dst: [UInt8], id: UInt32, offsetWords: UInt16, more: Bool,
                                     _ piece: [UInt8]) -> [UInt8] {
        let length = 8 + piece.count
        let field = offsetWords << 3 | (more ? 1 : 0)
        let header: [UInt8] = [0x60, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 44, 64] + src + dst
        let fragment: [UInt8] = [17, 0, UInt8(field >> 8), UInt8(field & 0xFF),
                                 UInt8(id >> 24), UInt8(id >> 16 & 0xFF), UInt8(id >> 8 & 0xFF), UInt8(id & 0xFF)]
        return macB + macA + [0x86, 0xDD] + header + fragment + piece
    }

    private static func udpHeader(_ sp: UInt16, _ dp: UInt16, payload: Int) -> [UInt8] {
        let len = 8 + payload
        return [UInt8(sp >> 8), UInt8(sp & 0xFF), UInt8(dp >> 8), UInt8(dp & 0xFF), UInt8(len >> 8), UInt8(len & 0xFF), 0, 0]
    }

    /// An ARP request for an address nobody in the test has.
    public static func arp() -> [UInt8] {
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + macA + [0x08, 0x06,
         0, 1, 0x08, 0, 6, 4, 0, 1] + macA + [198, 51, 100, 77] + [0, 0, 0, 0, 0, 0] + [198, 51, 100, 78]
    }
}
