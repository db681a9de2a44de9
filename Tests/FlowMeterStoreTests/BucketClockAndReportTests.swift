import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterStore

/// Counts every packet into one slot chosen by its length: enough of a
/// pipeline to check where the clock puts each packet.
struct SlotSink: PacketSink {
    let block: CounterBlock
    mutating func consume(_ s: PacketSummary) {
        block.count(s, into: CounterSlot(relay: 1, category: s.wireLength > 500 ? .exit : .orInbound, direction: .inbound),
                    peerIsTorInternal: false)
    }
}

/// The engine's clocked sink without threads: counts synchronously and hands
/// the clock exact counters at each edge, as `ReplayEngine` does after draining.
struct ClockedTestSink<Inner: PacketSink>: PacketSink {
    var inner: Inner
    let block: CounterBlock
    let clock: BucketClock
    var windowStart: Int64 = 0
    var windowLength: UInt64 = 0
    var last: Int64?

    init(inner: Inner, block: CounterBlock, accumulator: BucketAccumulator) {
        self.inner = inner; self.block = block; clock = BucketClock(accumulator: accumulator)
    }

    mutating func consume(_ s: PacketSummary) {
        let ts = s.timestampNanos
        if UInt64(bitPattern: ts &- windowStart) >= windowLength {
            (windowStart, windowLength) = clock.cross(counters: last == nil ? nil : block.snapshot(),
                                                      lastTimestampNanos: last, nextNanos: ts)
        }
        last = ts
        inner.consume(s)
    }

    @discardableResult
    func finish() -> Bool {
        clock.finish(counters: block.snapshot(), lastTimestampNanos: last)
        return clock.flushed
    }
}

@Suite struct BucketClockTests {
    @Test func replayThroughTheBucketClockPutsEveryPacketInTheHourOfItsTimestamp() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("replay.db")
        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        let block = CounterBlock(layout: CounterLayout(relayCount: 2))
        var sink = ClockedTestSink(inner: SlotSink(block: block), block: block, accumulator: acc)
        // Ten hours of a synthetic capture; packets land on both sides of each edge.
        var truth: [Int64: UInt64] = [:]
        let start = Int64(epoch.timeIntervalSince1970) * 1_000_000_000
        var rng = SystemRandomNumberGenerator()
        var ts = start
        for _ in 0..<50_000 {
            ts += Int64.random(in: 0...1_400_000_000, using: &rng)
            var s = PacketSummary()
            s.timestampNanos = ts
            s.wireLength = 100
            sink.consume(s)
            truth[BucketResolution.hour.start(of: ts / 1_000_000_000), default: 0] += 1
        }
        let finished = sink.finish()
        #expect(finished)
        try acc.close()
        let hours = try AccountingReader(path: path).buckets(from: everything.0, to: everything.1, resolution: .hour)
        var stored: [Int64: UInt64] = [:]
        for h in hours { stored[Int64(h.start.timeIntervalSince1970), default: 0] += h.packets }
        #expect(stored == truth)
        #expect(acc.stats.backwardClockJumps == 0)
    }

    @Test func aCaptureThatStepsBackIsNoticedAtTheFirstEarlierPacket() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("replay.db")
        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        let block = CounterBlock(layout: CounterLayout(relayCount: 2))
        var sink = ClockedTestSink(inner: SlotSink(block: block), block: block, accumulator: acc)
        let base = Int64(epoch.timeIntervalSince1970) * 1_000_000_000
        for (hour, count) in [(5, 3), (1, 2)] {  // a second file that starts four hours earlier
            for k in 0..<count {
                var s = PacketSummary()
                s.timestampNanos = base + Int64(hour) * 3_600_000_000_000 + Int64(k) * 1_000_000_000
                s.wireLength = 100
                sink.consume(s)
            }
        }
        sink.finish()
        try acc.close()
        let hours = try AccountingReader(path: path).buckets(from: everything.0, to: everything.1, resolution: .hour)
        #expect(hours.map(\.packets) == [2, 3])
        #expect(acc.stats.backwardClockJumps == 1)
    }
}

@Suite struct UsageReportTests {
    /// Two days of hour buckets in UTC, read back as days of Europe/Berlin.
    static func twoDays(_ path: String) throws {
        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        let c = SyntheticCounters()
        for hour in 0..<48 {
            c.add(1, bytes: 1000)
            acc.observe(c.snapshot, at: epoch.addingTimeInterval(Double(hour) * 3600 + 60))
        }
        acc.recordGap(from: epoch.addingTimeInterval(30 * 3600), to: epoch.addingTimeInterval(31 * 3600), reason: .captureDrops)
        try acc.close()
    }

    @Test func aReportGroupsHourBucketsIntoDaysOfTheConfiguredZone() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        try Self.twoDays(dir.path("a.db"))
        let reader = try AccountingReader(path: dir.path("a.db"))
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        let report = try UsageReport.build(from: reader, from: everything.0, to: everything.1, by: .day, timeZone: berlin)
        // Berlin is UTC+1 in March before the DST change: 23 hours on the 1st, 24 on the 2nd, 1 on the 3rd.
        #expect(report.rows.map(\.period) == ["2026-03-01", "2026-03-02", "2026-03-03"])
        #expect(report.rows.map(\.packets) == [23, 24, 1])
        let utc = try UsageReport.build(from: reader, from: everything.0, to: everything.1, by: .month, timeZone: TimeZone(identifier: "UTC")!)
        #expect(utc.rows.map(\.packets) == [48])
        #expect(utc.rows.first?.bytes == 48_000)
    }

    @Test func periodsOverlappingAGapAreMarkedAsALowerBound() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        try Self.twoDays(dir.path("a.db"))
        let report = try UsageReport.build(from: try AccountingReader(path: dir.path("a.db")), from: everything.0, to: everything.1,
                                           by: .day, timeZone: TimeZone(identifier: "UTC")!)
        #expect(report.rows.map(\.lowerBound) == [false, true])
        #expect(report.renderTable().contains("2026-03-02 ≥"))
    }

    @Test func csvAndJSONCarryExactCountsAndTheTableAHumanReadableOne() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        try Self.twoDays(dir.path("a.db"))
        var report = try UsageReport.build(from: try AccountingReader(path: dir.path("a.db")), from: everything.0, to: everything.1,
                                           by: .day, timeZone: TimeZone(identifier: "UTC")!)
        let csv = report.renderCSV().split(separator: "\n")
        #expect(csv[0] == "period,period_start_utc,period_end_utc,relay,category,direction,packets,bytes,payload_bytes,tor_payload_bytes,lower_bound")
        #expect(csv[1] == "2026-03-01,2026-03-01T00:00:00Z,2026-03-02T00:00:00Z,relay1,or_inbound,in,24,24000,12000,12000,false")
        let json = try report.renderJSON()
        #expect(json.contains("\"tor_payload_bytes\" : 12000"))
        #expect(json.contains("\"lower_bound\" : true"))
        report.sections.append(ReportSection(title: "Quotas", columns: ["quota", "used"], rows: [["provider", "48000"]]))
        let table = report.renderTable()
        #expect(table.contains("23.44 KiB"))
        #expect(table.contains("Quotas"))
        #expect(report.renderCSV().contains("# Quotas\nquota,used\nprovider,48000\n"))
    }
}

/// The replay path with a real capture: the engine with the store's clock.
@Suite struct ReplayIntoStoreTests {
    static let corpus = Repo.corpus.appendingPathComponent("tcpdump")

    @Test(arguments: ["afs.pcap", "mptcp-v0.pcap"])
    func replayingARealCaptureStoresEveryPacketAndByteItRead(_ name: String) throws {
        let file = Self.corpus.appendingPathComponent(name).path
        try #require(FileManager.default.fileExists(atPath: file), "corpus file missing: \(file)")
        let dir = try TempDir(); defer { dir.cleanup() }
        let model = HostModel()
        let acc = try BucketAccumulator(path: dir.path("r.db"), configuration: hourly(), relayLabels: model.relayLabels)
        let clock = BucketClock(accumulator: acc)
        let result = replayOnce(files: [file], model: model, clock: clock)
        let totals = result.totals
        #expect(result.errors.isEmpty && clock.flushed)
        try acc.close()
        let hours = try AccountingReader(path: dir.path("r.db")).buckets(from: everything.0, to: everything.1, resolution: .hour)
        #expect(hours.reduce(0) { $0 + $1.packets } == totals.packets)
        #expect(hours.reduce(0) { $0 + $1.bytes } == totals.bytes)
        let first = Date(timeIntervalSince1970: Double(totals.firstTimestampNanos! / 1_000_000_000))
        #expect(hours.first.map { $0.start <= first && first < $0.start.addingTimeInterval(3600) } == true)
    }
}
