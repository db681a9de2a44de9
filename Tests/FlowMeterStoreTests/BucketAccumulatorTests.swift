import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterStore

@Suite struct BucketAccumulatorTests {
    @Test func flushesOnceEverySixtySecondsOfInjectedClockTime() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let acc = try BucketAccumulator(path: dir.path("a.db"), configuration: hourly(60), relayLabels: relayLabels)
        let c = SyntheticCounters()
        for s in 0...600 {  // 10 minutes, one observation a second, all inside one hour
            c.add(1)
            acc.observe(c.snapshot, at: epoch.addingTimeInterval(Double(s) + 0.5))
        }
        #expect(acc.stats.flushes == 10)
        #expect(try storedPackets(dir.path("a.db")) == 601)
        c.add(1)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(601.5))
        #expect(acc.pendingPackets == 1)  // waits for the next interval
        try acc.close()
        #expect(try storedPackets(dir.path("a.db")) == 602)
    }

    @Test func aMonthOfSyntheticTimeIsStoredExactlyInSeconds() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("month.db")
        let acc = try BucketAccumulator(path: path, configuration: hourly(60), relayLabels: relayLabels)
        let c = SyntheticCounters()
        let minutes = 31 * 24 * 60
        for m in stride(from: 0, to: minutes, by: 10) {  // an observation every 10 minutes of clock time
            c.add(20, slot: CounterSlot(relay: m % 2, category: m % 3 == 0 ? .exit : .orOutbound, direction: .outbound))
            acc.observe(c.snapshot, at: epoch.addingTimeInterval(Double(m) * 60 + 599))
        }
        try acc.close()
        let reader = try AccountingReader(path: path)
        let hours = try reader.buckets(from: everything.0, to: everything.1, resolution: .hour)
        let days = try reader.buckets(from: everything.0, to: everything.1, resolution: .day)
        #expect(hours.reduce(0) { $0 + $1.packets } == UInt64(2 * minutes))
        #expect(days.reduce(0) { $0 + $1.packets } == UInt64(2 * minutes))
        #expect(Set(hours.map(\.start)).count == 31 * 24)
        #expect(Set(days.map(\.start)).count == 31)
        #expect(acc.stats.failedFlushes == 0)
        let integrity = try reader.integrityCheck()
        #expect(integrity == ["ok"], "\(integrity)")
    }

    @Test func aBackwardClockJumpCountsIntoTheBucketOfTheNewTimeAndNeverSubtracts() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("a.db")
        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        let c = SyntheticCounters()
        c.add(10)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(5 * 3600 + 10))
        c.add(3)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(2 * 3600 + 10))  // stepped back three hours
        #expect(acc.stats.backwardClockJumps == 1)
        #expect(acc.pendingBucketCount == 0)  // a jump flushes at once
        c.add(1)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(2 * 3600 + 20))
        try acc.close()
        let hours = try AccountingReader(path: path).buckets(from: everything.0, to: everything.1, resolution: .hour)
        #expect(hours.map(\.packets) == [4, 10])
        #expect(hours.map(\.start) == [epoch.addingTimeInterval(2 * 3600), epoch.addingTimeInterval(5 * 3600)])
    }

    @Test func reorderingByAFewMillisecondsIsNotAClockJump() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let acc = try BucketAccumulator(path: dir.path("a.db"), configuration: hourly(), relayLabels: relayLabels)
        let c = SyntheticCounters()
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(100))
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(99.99))
        #expect(acc.stats.backwardClockJumps == 0)
        try acc.close()
    }

    @Test func aForwardClockJumpIsRecordedAsAGapAndSuspendsPruning() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("a.db")
        let config = StoreConfiguration(resolutions: [ResolutionRetention(.hour, keepDays: 2)], flushIntervalSeconds: 60)
        let acc = try BucketAccumulator(path: path, configuration: config, relayLabels: relayLabels)
        let c = SyntheticCounters()
        c.add(7)
        acc.observe(c.snapshot, at: epoch)
        let future = epoch.addingTimeInterval(24 * 366 * 86_400)  // someone set the clock to 2050
        c.add(1)
        acc.observe(c.snapshot, at: future)
        // Days pass in the future: pruning would delete the real history; it must not.
        for h in 1...72 { acc.advanceClock(to: future.addingTimeInterval(Double(h) * 3600)) }
        try acc.close()
        let reader = try AccountingReader(path: path)
        #expect(acc.stats.forwardClockJumps == 1)
        #expect(try reader.gapRecords(from: everything.0, to: everything.1).map(\.reason) == [.clockJump])
        #expect(try storedPackets(path) == 8)
    }

    @Test func anInstantNoClockCanMeanIsIgnoredRatherThanFatal() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let acc = try BucketAccumulator(path: dir.path("a.db"), configuration: hourly(), relayLabels: relayLabels)
        let c = SyntheticCounters()
        c.add(2)
        acc.observe(c.snapshot, at: Date(timeIntervalSince1970: .infinity))
        acc.observe(c.snapshot, at: Date(timeIntervalSince1970: .nan))
        acc.observe(c.snapshot, at: epoch)
        try acc.close()
        #expect(acc.stats.ignoredInstants == 2)
        #expect(try storedPackets(dir.path("a.db")) == 2)
    }

    @Test func aRestartMidPeriodContinuesTheSameBuckets() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("a.db")
        do {
            let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
            let c = SyntheticCounters()
            c.add(40)
            acc.observe(c.snapshot, at: epoch.addingTimeInterval(600))
            try acc.close()
        }
        do {  // a new process: new counters from zero, same hour, same day
            let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
            let c = SyntheticCounters()
            c.add(2)
            acc.observe(c.snapshot, at: epoch.addingTimeInterval(1200))
            try acc.close()
        }
        let reader = try AccountingReader(path: path)
        #expect(try reader.buckets(from: everything.0, to: everything.1, resolution: .hour).map(\.packets) == [42])
        #expect(try reader.buckets(from: everything.0, to: everything.1, resolution: .day).map(\.packets) == [42])
        let gaps = try reader.gapRecords(from: everything.0, to: everything.1)
        #expect(gaps == [GapRecord(startUTC: 1_772_323_800, endUTC: 1_772_324_400, reason: .agentStopped)])
    }

    @Test func aWriterThatNeverClosedIsSeenAsCrashedOnRestart() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("a.db")
        do {
            let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
            let c = SyntheticCounters()
            c.add(5)
            acc.observe(c.snapshot, at: epoch)
            #expect(acc.flush(reason: .interval))
            // no close(): what kill -9 leaves
        }
        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        acc.advanceClock(to: epoch.addingTimeInterval(300))
        try acc.close()
        #expect(try AccountingReader(path: path).gapRecords(from: everything.0, to: everything.1).map(\.reason) == [.agentCrashed])
    }

    @Test func countersThatRestartFromZeroAreTakenAsNewCounts() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let acc = try BucketAccumulator(path: dir.path("a.db"), configuration: hourly(), relayLabels: relayLabels)
        let first = SyntheticCounters()
        first.add(100)
        acc.observe(first.snapshot, at: epoch)
        let second = SyntheticCounters()  // e.g. the next replayed file's counter block
        second.add(7)
        acc.observe(second.snapshot, at: epoch.addingTimeInterval(1))
        try acc.close()
        #expect(acc.stats.counterResets == 1)
        #expect(try storedPackets(dir.path("a.db")) == 107)
    }

    @Test func labelsNameRelayCategoryAndDirectionOnly() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let acc = try BucketAccumulator(path: dir.path("a.db"), configuration: hourly(), relayLabels: relayLabels)
        let c = SyntheticCounters()
        c.add(1, slot: CounterSlot(relay: 0, category: .dns, direction: .outbound))
        c.add(1, slot: CounterSlot(relay: 1, category: .exit, direction: .inbound))
        var bad = PacketSummary()
        bad.wireLength = 60
        c.block.countFailure(bad)
        acc.observe(c.snapshot, at: epoch)
        try acc.close()
        let labels = try AccountingReader(path: dir.path("a.db")).buckets(from: everything.0, to: everything.1, resolution: .hour)
            .map { "\($0.relay)/\($0.category)/\($0.direction)" }
        #expect(labels == ["host/dns/out", "host/undecoded/none", "relay1/exit/in"])
    }

    @Test func aResolutionFinerThanAnHourMustBeAllowedOnPurpose() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        var fine = StoreConfiguration(resolutions: [ResolutionRetention(.fiveMinutes, keepDays: 2)])
        #expect(fine.problem()?.contains("finer than 1h") == true)
        #expect(throws: StoreError.self) { try BucketAccumulator(path: dir.path("a.db"), configuration: fine, relayLabels: relayLabels) }
        fine.allowFineResolution = true
        #expect(fine.problem() == nil)
        #expect(try BucketAccumulator(path: dir.path("a.db"), configuration: fine, relayLabels: relayLabels).openError == nil)
        #expect(StoreConfiguration().problem() == nil)
        #expect(StoreConfiguration(flushIntervalSeconds: 0).problem() != nil)
    }

    @Test func aNewCounterBlockAnnouncedAsRestartedIsCountedInFull() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let acc = try BucketAccumulator(path: dir.path("a.db"), configuration: hourly(), relayLabels: relayLabels)
        let first = SyntheticCounters()
        first.add(5)
        acc.observe(first.snapshot, at: epoch)
        let second = SyntheticCounters()  // only higher values: no drop to detect
        second.add(9)
        acc.countersRestarted()
        acc.observe(second.snapshot, at: epoch.addingTimeInterval(1))
        try acc.close()
        #expect(try storedPackets(dir.path("a.db")) == 14)
    }
}
