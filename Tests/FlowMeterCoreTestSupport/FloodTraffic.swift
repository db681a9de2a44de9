import FlowMeterCore
import Foundation

extension TestTraffic {
    /// `count` TCP SYNs of 64 bytes on the wire (a 54-byte frame padded as
    /// Ethernet pads short frames) to the relay's ORPort, each from another
    /// spoofed source in 203.0.113.0/24 and 198.18.0.0/15 (documentation and
    /// benchmark ranges): guard1/or_inbound/in.
    public static func synFlood(count: Int) -> TestTraffic {
        var t = TestTraffic()
        for i in 0..<count {
            var f = tcp(spoofed(i), UInt16(1024 + i % 60_000), ip(198, 51, 100, 10), 9001, payload: 0)
            f[14 + 20 + 13] = 0x02  // SYN only
            f += [UInt8](repeating: 0, count: 64 - f.count)
            t.add(f, .init(relay: "guard1", category: "or_inbound", direction: "in"))
        }
        return t
    }

    /// `count` UDP datagrams of `payload` bytes to port 5555 of the relay's
    /// address (no relay listens there), from spoofed sources: host/other/in.
    public static func udpFlood(count: Int, payload: Int = 100) -> TestTraffic {
        var t = TestTraffic()
        for i in 0..<count {
            t.add(udp(spoofed(i), UInt16(1024 + i % 60_000), ip(198, 51, 100, 10), 5555, payload: payload),
                  .init(relay: "host", category: "other", direction: "in"))
        }
        return t
    }

    /// Many different sources, none of them the relay's peers in `relayHost`.
    private static func spoofed(_ i: Int) -> [UInt8] {
        i % 2 == 0 ? ip(198, 18 + UInt8(i / 2 / 65_536 % 2), UInt8(i / 2 / 256 % 256), UInt8(i / 2 % 256))
                   : ip(203, 0, 113, UInt8(100 + i % 100))
    }
}
