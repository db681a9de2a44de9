import Foundation
import Testing
@testable import FlowMeterTestSupport

struct RestartGapLogTests {
    /// A person reads this line in the journal: times as ISO 8601 and the
    /// span in words, never seconds since 1970.
    @Test func theRestartGapIsLoggedWithIsoTimesAndItsLength() throws {
        let db = makeTemporaryDirectory("restart-log") + "/acct.db"
        let start = Date(timeIntervalSince1970: 1_796_615_300)  // 2026-12-07T03:48:20Z
        let first = try BucketAccumulator(path: db, relayLabels: ["host"])
        first.observe(CounterSnapshot(layout: CounterLayout(relayCount: 1)), at: start)
        try first.close()
        let log = CollectedLog()
        let second = try BucketAccumulator(path: db, relayLabels: ["host"], logger: log.logger)
        second.observe(CounterSnapshot(layout: CounterLayout(relayCount: 1)), at: start.addingTimeInterval(600))
        try second.close()
        let gap = log.messages(atLeast: .notice).first { $0.contains("no counts from") }
        #expect(gap?.hasSuffix("no counts from 2026-12-07T03:48:20Z to 2026-12-07T03:58:20Z (10 minutes): recorded as agent_stopped") == true,
                "\(log.messages(atLeast: .notice))")
        #expect(gap.map { !$0.contains("1796615") } == true)
    }
}
