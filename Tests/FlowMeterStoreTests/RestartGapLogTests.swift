import Foundation
import Logging
import Synchronization
import Testing
@testable import FlowMeterTestSupport

private final class Lines: Sendable { let value = Mutex<[String]>([]) }

/// Keeps every message at notice and above.
private struct KeepingHandler: LogHandler {
    let lines: Lines
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { nil } set {} }
    func log(event: LogEvent) { if event.level >= .notice { lines.value.withLock { $0.append("\(event.message)") } } }
}

struct RestartGapLogTests {
    /// A person reads this line in the journal: times as ISO 8601 and the
    /// span in words, never seconds since 1970.
    @Test func theRestartGapIsLoggedWithIsoTimesAndItsLength() throws {
        let db = makeTemporaryDirectory("restart-log") + "/acct.db"
        let start = Date(timeIntervalSince1970: 1_796_615_300)  // 2026-12-07T03:48:20Z
        let first = try BucketAccumulator(path: db, relayLabels: ["host"])
        first.observe(CounterSnapshot(layout: CounterLayout(relayCount: 1)), at: start)
        try first.close()
        let lines = Lines()
        let logger = Logger(label: "test") { _ in KeepingHandler(lines: lines) }
        let second = try BucketAccumulator(path: db, relayLabels: ["host"], logger: logger)
        second.observe(CounterSnapshot(layout: CounterLayout(relayCount: 1)), at: start.addingTimeInterval(600))
        try second.close()
        let gap = lines.value.withLock { $0 }.first { $0.contains("no counts from") }
        #expect(gap?.hasSuffix("no counts from 2026-12-07T03:48:20Z to 2026-12-07T03:58:20Z (10 minutes): recorded as agent_stopped") == true,
                "\(lines.value.withLock { $0 })")
        #expect(gap.map { !$0.contains("1796615") } == true)
    }
}
