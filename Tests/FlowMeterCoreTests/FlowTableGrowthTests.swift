import Testing
import FlowMeterCoreTestSupport
@testable import FlowMeterCore

/// A growing flow table (the live agent's) starts small and splits one
/// bucket at a time as flows come; it must find every flow it moved, count
/// connections exactly as a table of its whole capacity does, and stop at
/// its capacity.
@Suite struct FlowTableGrowthTests {
    /// `n` connections from distinct client ports: handshake, then data both ways.
    static func open(_ h: FlowHarness, _ n: Int) {
        for p in 0..<n { h.handshake(port: UInt16(1024 + p)) }
        for p in 0..<n {
            h.up([.ack, .psh], payload: 100, port: UInt16(1024 + p))
            h.down([.ack, .psh], payload: 100, port: UInt16(1024 + p))
        }
    }

    static func close(_ h: FlowHarness, _ n: Int) {
        for p in 0..<n {
            h.up([.fin, .ack], port: UInt16(1024 + p))
            h.down([.fin, .ack], port: UInt16(1024 + p))
        }
    }

    @Test func aGrowingTableFindsEveryFlowItMovedAndCountsAsAWholeTableDoes() {
        let growing = FlowHarness(capacity: 1 << 16)
        let whole = FlowHarness(capacity: 1 << 16, growth: .whole)
        #expect(growing.table.activeCapacity == FlowTable.startingCapacity)
        #expect(whole.table.activeCapacity == 1 << 16)
        for h in [growing, whole] { Self.open(h, 20_000) }
        // A flow lost in a split would be seen again mid-stream and opened a
        // second time. So would one evicted from a full bucket (a bucket not
        // yet split can fill while the table grows: a handful in 20,000), and
        // that one is counted as an eviction: the two must match.
        let evicted = growing.table.evictions
        #expect(evicted <= 10 && whole.table.evictions == 0)
        #expect(growing.opened == 20_000 + evicted && growing.active == 20_000)
        #expect(growing.table.occupancy == 20_000)
        #expect(growing.table.activeCapacity > 3 * 20_000 && growing.table.activeCapacity < 1 << 17, "\(growing.table.activeCapacity)")
        for h in [growing, whole] { Self.close(h, 20_000) }
        #expect(growing.closed == 20_000 + evicted && growing.active == 0)
        #expect(whole.opened == 20_000 && whole.closed == 20_000)
        #expect(growing.counter.block.snapshot() == whole.counter.block.snapshot())
    }

    @Test func aGrowingTableStopsAtItsCapacityAndThenEvictsAsAWholeOneDoes() {
        let growing = FlowHarness(capacity: 8192)
        let whole = FlowHarness(capacity: 8192, growth: .whole)
        // 10,000 unanswered SYNs: more than fit.
        for h in [growing, whole] {
            for p in 0..<10_000 { h.up(.syn, port: UInt16(1024 + p)) }
            h.table.finishReplay(now: h.t)
        }
        #expect(growing.table.activeCapacity == 8192)
        #expect(growing.table.evictions > 0)
        #expect(growing.unanswered == 10_000 && whole.unanswered == 10_000)
    }

    @Test func startingOverForgetsTheFlowsAndKeepsTheSizeTheTableGrewTo() {
        let h = FlowHarness(capacity: 1 << 16)
        Self.open(h, 5_000)
        let grown = h.table.activeCapacity
        #expect(grown > FlowTable.startingCapacity)
        let next = ConnectionCounters(relayCount: 2)
        h.table.startOver(connections: next)
        #expect(h.table.occupancy == 0 && h.table.activeCapacity == grown)
        // A connection from before is new to the table: seen mid-stream, it
        // opens (in the new counters) once data went both ways.
        h.up([.ack, .psh], payload: 10, port: 1024)
        h.down([.ack, .psh], payload: 10, port: 1024)
        #expect(next.snapshot().value(relay: 1, category: .orInbound, .opened) == 1)
        #expect(h.opened == 5_000)
    }

    @Test func aReloadThatKeepsTheTableSizesSharesTheTablesAndKeepsConnectionCountsApart() {
        let first = CountingGeneration(number: 1, model: HostModel(), workers: 2)
        let same = CountingGeneration(number: 2, model: HostModel(), workers: 2, reusing: first)
        #expect(zip(first.tables, same.tables).allSatisfy { $0 === $1 })
        #expect(first.connectionCounters[0] !== same.connectionCounters[0])
        let resized = CountingGeneration(number: 3, model: HostModel(), workers: 2,
                                         flowTable: FlowTableConfiguration(capacity: 1 << 16), reusing: same)
        #expect(resized.tables[0] !== same.tables[0])
        let moreWorkers = CountingGeneration(number: 4, model: HostModel(), workers: 3,
                                             flowTable: FlowTableConfiguration(capacity: 1 << 16), reusing: resized)
        #expect(moreWorkers.tables[0] !== resized.tables[0])
    }
}
