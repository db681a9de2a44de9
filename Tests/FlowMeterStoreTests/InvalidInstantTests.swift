import Foundation
import GRDB
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterStore

/// Nothing FlowMeter writes can make its store unreadable: an instant the
/// readers would refuse is ignored by the accumulator and, should a bug let
/// one through, refused by the store with the whole batch.
@Suite struct InvalidInstantTests {
    @Test func theStoreRefusesABatchHoldingAnInstantBefore1970Whole() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("acct.db")
        let store = try AccountingStore(path: path)
        let cell = Cell(relay: "host", category: .exit, direction: .outbound, CellCounts(packets: 1, bytes: 100))
        for bad in [(-3600, 0), (3600, -1), (1_772_326_800 + 1, 0)] as [(Int64, Int64)] {
            var batch = FlushBatch(clockUTC: 1_772_330_400)
            batch.deltas = [BucketDelta(resolution: .hour, startUTC: 1_772_326_800, cell: cell),
                            BucketDelta(resolution: .hour, startUTC: bad.0, cell: cell)]
            batch.gaps = [GapRecord(startUTC: bad.1, endUTC: 10, reason: .clockJump)]
            #expect(throws: StoreError.self) { try store.write(batch) }
        }
        try store.close()
        #expect(try storedPackets(path) == 0, "a refused batch left rows behind")
        let reader = try AccountingReader(path: path)
        #expect(try reader.gapRecords(from: Date(timeIntervalSince1970: -100_000), to: Date()).isEmpty)
    }

    @Test func theAccumulatorIgnoresInstantsBefore1970AndCountsThemLater() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("acct.db")
        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        let c = SyntheticCounters()
        c.add(3)
        acc.observe(c.snapshot, atNanos: -1_000)
        acc.observe(c.snapshot, at: Date(timeIntervalSince1970: -86_400))
        acc.advanceClock(toNanos: Int64.min)
        #expect(acc.stats.ignoredInstants == 3)
        c.add(2)
        acc.observe(c.snapshot, at: epoch)
        try acc.close()
        #expect(try storedPackets(path) == 5)
        let q = try DatabaseQueue(path: path)
        defer { try? q.close() }
        #expect(try q.read { try Int64.fetchOne($0, sql: "SELECT min(start_utc) FROM bucket") } == 1_772_323_200)
    }
}
