import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterStore

/// Surge spans in the store (schema v3) and what report and forecast read from them.
@Suite struct SurgeStoreTests {
    func span(start: Double, end: Double?, bytes: UInt64) -> SurgeSpan {
        SurgeSpan(relay: "relay1", category: .orInbound, direction: .inbound, kind: .rate,
                  start: epoch.addingTimeInterval(start), end: end.map { epoch.addingTimeInterval($0) }, bytes: bytes)
    }

    @Test func anOpenSpanIsRewrittenAtEachFlushUntilItEndsAndIsReadBackWithItsBytes() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("acct.db")
        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        let c = SyntheticCounters()
        c.add(10)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(100))
        acc.recordSurges([span(start: 100, end: nil, bytes: 1000)])
        #expect(acc.flush(reason: .interval))
        let open = try AccountingReader(path: path).surgeSpans(from: everything.0, to: everything.1)
        #expect(open.count == 1 && open[0].bytes == 1000)
        #expect(open[0].end == epoch.addingTimeInterval(100), "an open span ends at the flush's clock")

        acc.recordSurges([span(start: 100, end: 400, bytes: 9000)])
        c.add(10)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(500))
        try acc.close()
        let reader = try AccountingReader(path: path)
        let spans = try reader.surgeSpans(from: everything.0, to: everything.1)
        #expect(spans == [span(start: 100, end: 400, bytes: 9000)])
        // Half the span lies in [250, 1000): half its bytes.
        #expect(try reader.surgeBytes(from: epoch.addingTimeInterval(250), to: epoch.addingTimeInterval(1000)) == 4500)
        #expect(try reader.surgeBytes(from: everything.0, to: everything.1, include: { $0.relay == "host" }) == 0)
        #expect(try reader.relayLabels() == ["relay1"])
        #expect(try reader.integrityCheck() == ["ok"])
    }

    @Test func withoutSurgesTheirBytesAreTakenOutOfTheirCellsBuckets() throws {
        let counts = CellCounts(packets: 100, bytes: 10_000, payloadBytes: 5000, torPayloadBytes: 5000)
        let bucket = UsageBucket(start: epoch, durationSeconds: 3600,
                                 cell: Cell(relay: "relay1", category: .orInbound, direction: .inbound, counts))
        let other = UsageBucket(start: epoch, durationSeconds: 3600,
                                cell: Cell(relay: "relay1", category: .orOutbound, direction: .inbound, counts))
        struct Fixed: UsageHistorySource {
            var list: [UsageBucket]
            func buckets(from: Date, to: Date) throws -> [UsageBucket] { list }
            func gaps(from: Date, to: Date) throws -> [DateInterval] { [] }
        }
        let history = SurgeExcludedHistory(base: Fixed(list: [bucket, other]), spans: [span(start: 600, end: 1200, bytes: 4000)])
        let out = try history.buckets(from: everything.0, to: everything.1)
        #expect(out[0].bytes == 6000 && out[0].payloadBytes == 3000 && out[0].packets == 60)
        #expect(out[1] == other)
    }
}
