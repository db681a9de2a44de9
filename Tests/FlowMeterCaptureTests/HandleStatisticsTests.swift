import Testing
@testable import FlowMeterCapture

struct HandleStatisticsTests {
    @Test func underTrafficTheStatisticsAreReadEveryQuarterSecond() {
        var s = HandleStatistics()
        let quarter = HandleStatistics.intervalNanos
        let answers = [s.due(now: quarter, afterReading: 10), s.due(now: quarter + quarter / 2, afterReading: 10),
                       s.due(now: 2 * quarter, afterReading: 10)]
        #expect(answers == [true, false, true])
    }

    @Test func aHandleGoingIdleReadsItsStatisticsBeforeWaitingOnlyIfItReadPacketsSince() {
        var s = HandleStatistics()
        let quarter = HandleStatistics.intervalNanos
        let first = s.due(now: quarter, afterReading: 10)
        // Packets read after that reading: a wait without a timeout must not keep them stale.
        let notYetDue = s.due(now: quarter + 1_000, afterReading: 5)
        let beforeWaiting = s.staleBeforeWaiting(now: quarter + 2_000)
        // Nothing read since: the next wait reads nothing, and neither does an empty read.
        let nextWait = s.staleBeforeWaiting(now: quarter + 3_000)
        let emptyRead = s.due(now: quarter + 4_000, afterReading: 0)
        let afterEmptyRead = s.staleBeforeWaiting(now: quarter + 5_000)
        #expect([first, notYetDue, beforeWaiting, nextWait, emptyRead, afterEmptyRead] == [true, false, true, false, false, false])
    }

    @Test func dropsAndReceivedPacketsAreReportedAsTheirIncreaseAcrossTheKernelsThirtyTwoBitWrap() {
        var s = HandleStatistics()
        let a = s.observe(received: 100, dropped: 3)
        let b = s.observe(received: UInt32.max, dropped: UInt32.max)
        let c = s.observe(received: 4, dropped: 1)
        #expect(a == (3, 100))
        #expect(b == (UInt64(UInt32.max) - 3, UInt64(UInt32.max) - 100))
        #expect(c == (2, 5))
    }
}
