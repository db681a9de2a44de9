import Foundation
import Testing
import Yams
@testable import FlowMeterAccounting
@testable import FlowMeterConfig
@testable import FlowMeterCore

/// The surge detector driven tick by tick with synthetic counters.
@Suite struct SurgeDetectorTests {
    /// Fast constants, as the live test uses them.
    static var fast: SurgeSettings {
        var s = SurgeSettings()
        s.currentWindowSeconds = 2
        s.baselineWindowSeconds = 60
        s.warmupSeconds = 5
        s.holdSeconds = 3
        s.floorBytesPerSecond = 100_000
        s.floorPacketsPerSecond = 500
        s.floorAttemptsPerSecond = 20
        return s
    }

    /// Cumulative counters of one relay "host"; `add` feeds one second.
    struct Feed {
        var bytes = [UInt64](repeating: 0, count: Category.count * Direction.count)
        var packets = [UInt64](repeating: 0, count: Category.count * Direction.count)
        var attempts = [UInt64](repeating: 0, count: Category.count)
        var udp: UInt64 = 0
        var all: UInt64 = 0
        var t = Date(timeIntervalSince1970: 1_800_000_000)

        mutating func second(_ d: inout SurgeDetector, _ c: Category = .orInbound, _ dir: Direction = .inbound,
                             bytes b: UInt64, packets p: UInt64, attempts a: UInt64 = 0, udp u: UInt64 = 0) {
            let i = SurgeInput.index(c, dir)
            bytes[i] += b; packets[i] += p; attempts[Int(c.rawValue)] += a; udp += u; all += p
            // A steady trickle in another cell, which must never alarm.
            let other = SurgeInput.index(.dir, .outbound)
            bytes[other] += 2000; packets[other] += 5; all += 5
            t = t.addingTimeInterval(1)
            var input = SurgeInput()
            input.cells = [("host", bytes, packets)]
            input.attempts = ["host": attempts]
            input.udpPackets = udp
            input.packets = all
            d.tick(input, now: t)
        }
    }

    func active(_ d: SurgeDetector) -> [String] {
        d.statuses.filter(\.active).map { "\($0.relay)/\($0.category.label)/\($0.direction.label)" }
    }

    @Test func aFloodFarAboveTheBaselineStartsASurgeInItsCellOnlyAndEndsAfterTheHold() throws {
        var d = SurgeDetector(settings: Self.fast)
        var f = Feed()
        for _ in 0..<10 { f.second(&d, bytes: 20_000, packets: 40) }
        #expect(active(d).isEmpty)
        var startedAfter: Int? = nil
        for s in 1...10 {
            f.second(&d, bytes: 5_000_000, packets: 8000)
            if startedAfter == nil, !active(d).isEmpty { startedAfter = s }
        }
        #expect(startedAfter == 1)
        #expect(active(d) == ["host/or_inbound/in"])
        var endedAfter: Int? = nil
        for s in 1...30 {
            f.second(&d, bytes: 20_000, packets: 40)
            if endedAfter == nil, active(d).isEmpty { endedAfter = s }
        }
        let ended = try #require(endedAfter)
        #expect(ended >= 3 && ended <= 15)
        let cell = d.statuses.first { $0.category == .orInbound && $0.direction == .inbound }!
        #expect(cell.events == 1)
        // Every flood second's bytes, plus the few quiet seconds before it ended.
        #expect(cell.bytes >= 50_000_000 && cell.bytes < 50_000_000 + 20 * 20_000)
        #expect(d.statuses.filter { $0.events > 0 }.count == 1)
        let spans = d.drainSpans()
        #expect(spans.count == 1)
        #expect(spans.first?.end != nil)
        #expect(spans.first?.kind == .rate)
        #expect(d.drainSpans().isEmpty, "an ended span is handed over once")
    }

    @Test func aQuietHostDoesNotAlarmOnAFewPacketsBelowTheFloor() {
        var d = SurgeDetector(settings: Self.fast)
        var f = Feed()
        for _ in 0..<10 { f.second(&d, bytes: 100, packets: 1) }
        for _ in 0..<10 { f.second(&d, bytes: 50_000, packets: 400) }  // 500× the baseline, under both floors
        #expect(active(d).isEmpty)
    }

    @Test func noSurgeIsCalledDuringWarmUp() {
        var d = SurgeDetector(settings: Self.fast)
        var f = Feed()
        for _ in 0..<3 { f.second(&d, bytes: 5_000_000, packets: 8000) }
        #expect(active(d).isEmpty)
    }

    @Test func unansweredAttemptsFloodMarksTheInboundCellAsAttempts() {
        var d = SurgeDetector(settings: Self.fast)
        var f = Feed()
        for _ in 0..<10 { f.second(&d, .other, .inbound, bytes: 1000, packets: 10, attempts: 1) }
        for _ in 0..<5 { f.second(&d, .other, .inbound, bytes: 1000, packets: 10, attempts: 300) }
        #expect(active(d) == ["host/other/in"])
        #expect(d.openSpans.first?.kind == .attempts)
    }

    @Test func aUDPFloodInTheOtherCategoryIsKindUDP() {
        var d = SurgeDetector(settings: Self.fast)
        var f = Feed()
        for _ in 0..<10 { f.second(&d, .other, .inbound, bytes: 1000, packets: 10) }
        for _ in 0..<3 { f.second(&d, .other, .inbound, bytes: 3_000_000, packets: 5000, udp: 5000) }
        #expect(active(d) == ["host/other/in"])
        #expect(d.openSpans.first?.kind == .udp)
    }

    @Test func aLongPauseBetweenTicksOnlyResetsTheReference() {
        var d = SurgeDetector(settings: Self.fast)
        var f = Feed()
        for _ in 0..<10 { f.second(&d, bytes: 20_000, packets: 40) }
        f.t = f.t.addingTimeInterval(3600)  // suspend: an hour's counts in one step must not look like a flood
        f.second(&d, bytes: 72_000_000, packets: 144_000)
        #expect(active(d).isEmpty)
    }

    @Test func disabledDetectsNothing() {
        var s = Self.fast
        s.enabled = false
        var d = SurgeDetector(settings: s)
        var f = Feed()
        for _ in 0..<10 { f.second(&d, bytes: 20_000, packets: 40) }
        for _ in 0..<5 { f.second(&d, bytes: 5_000_000, packets: 8000) }
        #expect(d.statuses.isEmpty)
    }

    @Test func theSurgeSectionParsesAndRejectsBadValues() throws {
        let file = "test.yaml"
        let node = try #require(try Yams.compose(yaml: "current_window_seconds: 2\nbaseline_window_seconds: 60\nfactor: 5\nfloor_packets_per_second: 0\n"))
        let s = try SurgeSettings.parse(node, file: file)
        #expect(s.currentWindowSeconds == 2 && s.baselineWindowSeconds == 60 && s.factor == 5 && s.floorPacketsPerSecond == 0)
        for bad in ["factor: -1", "nonsense: 1", "current_window_seconds: 100\nbaseline_window_seconds: 50", "factor: 2\nend_factor: 3"] {
            let n = try #require(try Yams.compose(yaml: bad))
            #expect(throws: ConfigError.self) { try SurgeSettings.parse(n, file: file) }
        }
    }
}
