import Foundation
import GRDB
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterStore

/// Every query of an attached database is bounded in time, whatever the
/// file makes SQLite do.
@Suite struct QueryTimeLimitTests {
    @Test func aQueryThatWouldRunForEverIsStoppedAtItsLimitWithAClearError() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("acct.db")
        try AccountingStore(path: path).close()
        let reader = try AccountingReader(path: path, timeLimit: QueryTimeLimit(seconds: 0.5))
        let started = Date()
        do {
            _ = try reader.read { db in
                try Int64.fetchOne(db, sql: "WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n) SELECT max(x) FROM n")
            }
            Issue.record("an endless query returned")
        } catch let e as StoreError {
            #expect(e.description.contains("ran for more than 0.5 s and was stopped"), "\(e)")
        }
        #expect(Date().timeIntervalSince(started) < 5)
        // The reader is still usable afterwards, and the limit does not fire on a later query.
        #expect(try reader.resolutions().isEmpty)
        Thread.sleep(forTimeInterval: 0.6)
        #expect(try reader.info()["schema_version"] == "5")
    }
}
