import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterCore

/// Records whose time no clock can mean (a fraction of a second of one
/// second or more, an instant before 1970) are counted as
/// `timestamp_invalid` by every reader alike, never decoded, never taken as a
/// first or last time, and never shown to a replay clock.
@Suite struct ImpossibleTimeTests {
    /// A classic pcap of UDP frames with the given (seconds, fraction) stamps.
    static func capture(_ path: String, stamps: [(UInt32, UInt32)], nanosecond: Bool, swapped: Bool) throws {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: swapped ? v.bigEndian : v.littleEndian) { out.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: swapped ? v.bigEndian : v.littleEndian) { out.append(contentsOf: $0) } }
        u32(nanosecond ? 0xA1B2_3C4D : 0xA1B2_C3D4); u16(2); u16(4); u32(0); u32(0); u32(65535); u32(1)
        let frame = TestTraffic.udp(TestTraffic.ip(10, 0, 0, 1), 40000, TestTraffic.ip(10, 0, 0, 2), 53, payload: 20)
        for (seconds, fraction) in stamps {
            u32(seconds); u32(fraction); u32(UInt32(frame.count)); u32(UInt32(frame.count))
            out.append(contentsOf: frame)
        }
        try Data(out).write(to: URL(fileURLWithPath: path))
    }

    static let cases: [(name: String, nanosecond: Bool, swapped: Bool)] = [
        ("µs, host order", false, false), ("µs, swapped", false, true),
        ("ns, host order", true, false), ("ns, swapped", true, true),
    ]

    @Test(arguments: 0..<cases.count)
    func everyReaderCountsAnImpossibleFractionAsTimestampInvalid(_ index: Int) throws {
        let c = Self.cases[index]
        let limit: UInt32 = c.nanosecond ? 1_000_000_000 : 1_000_000
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("times.pcap")
        // Sound, the limit itself, sign-extended to a negative instant, sound, the largest field.
        try Self.capture(path, stamps: [(1_772_323_200, 5), (1_772_323_201, limit), (0, 0xFFFF_FFFF),
                                        (1_772_323_202, limit - 1), (1_772_323_203, UInt32.max / 2 + 7)],
                         nanosecond: c.nanosecond, swapped: c.swapped)
        for reader in OfflineReader.allCases {
            let result = replayOnce(files: [path], model: HostModel(), reader: reader)
            #expect(result.errors.isEmpty, "\(c.name), \(reader): \(result.errors)")
            #expect(result.totals.packets == 5)
            #expect(result.counters.reasonPackets(.timestampInvalid) == 3, "\(c.name), \(reader)")
            #expect(result.invariantHolds)
            let scale: Int64 = c.nanosecond ? 1 : 1000
            let first: Int64 = 1_772_323_200 * 1_000_000_000 + 5 * scale
            let last: Int64 = 1_772_323_202 * 1_000_000_000 + Int64(limit - 1) * scale
            #expect(result.totals.firstTimestampNanos == first, "\(c.name), \(reader)")
            #expect(result.totals.lastTimestampNanos == last, "\(c.name), \(reader)")
        }
    }

    /// Records every instant the replay shows its clock.
    final class RecordingClock: ReplayClock {
        var instants: [Int64] = []
        var finalPackets: UInt64 = 0
        func cross(counters: CounterSnapshot?, lastTimestampNanos: Int64?, nextNanos: Int64) -> (start: Int64, length: UInt64) {
            if let l = lastTimestampNanos { instants.append(l) }
            instants.append(nextNanos)
            return (nextNanos - nextNanos % 3_600_000_000_000, 3_600_000_000_000)
        }
        func finish(counters: CounterSnapshot, lastTimestampNanos: Int64?) {
            if let l = lastTimestampNanos { instants.append(l) }
            finalPackets = counters.accountedPackets
        }
    }

    @Test func theReplayClockNeverSeesAnImpossibleTimeAndItsRecordsAreStillCounted() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("times.pcap")
        // The first record is impossible too: no window is open when it comes.
        try Self.capture(path, stamps: [(0, 0xFFFF_FFFF), (1_772_323_200, 0), (7, 2_000_000), (1_772_326_800, 0)],
                         nanosecond: false, swapped: false)
        let clock = RecordingClock()
        let result = replayOnce(files: [path], model: HostModel(), clock: clock)
        #expect(result.totals.packets == 4)
        #expect(result.counters.reasonPackets(.timestampInvalid) == 2)
        #expect(clock.finalPackets == 4)
        #expect(!clock.instants.isEmpty && clock.instants.allSatisfy { $0 >= 1_772_323_200 * 1_000_000_000 }, "\(clock.instants)")
    }
}
