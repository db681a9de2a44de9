import Foundation
import GRDB
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterStore

@Suite struct AccountingStoreTests {
    @Test func aNewDatabaseIsCreatedAtTheCurrentSchemaInWALMode() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let store = try AccountingStore(path: dir.path("a.db"))
        try store.close()
        let q = try DatabaseQueue(path: dir.path("a.db"))
        let (version, journal, stamped) = try q.read { db in
            (try Int.fetchOne(db, sql: "PRAGMA user_version"), try String.fetchOne(db, sql: "PRAGMA journal_mode"),
             try String.fetchOne(db, sql: "SELECT value FROM info WHERE name = 'schema_version'"))
        }
        #expect(version == StoreSchema.currentVersion)
        #expect(journal == "wal")
        #expect(stamped == "\(StoreSchema.currentVersion)")
        #expect(try AccountingReader(path: dir.path("a.db")).info()["clean_shutdown"] == "1")
    }

    /// A v1 file as FlowMeter's first schema wrote it: the frozen v1 SQL and
    /// GRDB's record of it, written directly, so today's migrator is not involved.
    static func makeVersionOne(_ path: String) throws {
        let q = try DatabaseQueue(path: path)
        try q.writeWithoutTransaction { db in
            try db.execute(sql: """
                CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                INSERT INTO grdb_migrations VALUES ('v1');
                """ + StoreSchema.versionOne + """
                INSERT INTO info(name, value) VALUES ('last_flush_utc', '1772323500'), ('clean_shutdown', '1');
                INSERT INTO bucket VALUES (3600, 1772323200, 'relay1', 'or_inbound', 'in', 10, 1000, 500, 500);
                """)
        }
        try q.close()
    }

    @Test func aVersionOneDatabaseIsMigratedAndKeepsItsBuckets() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("v1.db")
        try Self.makeVersionOne(path)
        #expect(throws: StoreError.olderSchema(path: path, found: 1, supported: StoreSchema.currentVersion)) { try AccountingReader(path: path) }

        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        let c = SyntheticCounters()
        c.add(5)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(1800))  // the same hour as the v1 row
        try acc.close()

        let reader = try AccountingReader(path: path)
        #expect(reader.schemaVersion == StoreSchema.currentVersion)
        let hour = try reader.buckets(from: epoch, to: epoch.addingTimeInterval(3600), resolution: .hour)
        #expect(hour.count == 1)
        #expect(hour.first?.packets == 15)
        #expect(hour.first?.bytes == 1500)
        // v2's tables exist and work: the restart after the v1 writer's clean stop is a gap.
        #expect(try reader.gapRecords(from: everything.0, to: everything.1).map(\.reason) == [.agentStopped])
        let integrity = try reader.integrityCheck()
        #expect(integrity == ["ok"], "\(integrity)")
    }

    @Test func aDatabaseFromANewerFlowMeterIsRefusedAndLeftUnchanged() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let newer = StoreSchema.currentVersion + 1
        let path = dir.path("new.db")
        try AccountingStore(path: path).close()
        let q = try DatabaseQueue(path: path)
        try q.writeWithoutTransaction { db in
            try db.execute(sql: "INSERT INTO grdb_migrations VALUES ('future'); CREATE TABLE future(x); PRAGMA user_version = \(newer)")
        }
        try q.close()
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        #expect(throws: StoreError.newerSchema(path: path, found: newer, supported: StoreSchema.currentVersion)) { try AccountingStore(path: path) }
        #expect(throws: StoreError.newerSchema(path: path, found: newer, supported: StoreSchema.currentVersion)) { try AccountingReader(path: path) }
        #expect(throws: StoreError.newerSchema(path: path, found: newer, supported: StoreSchema.currentVersion)) {
            try BucketAccumulator(path: path, relayLabels: relayLabels)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(StoreError.newerSchema(path: "x", found: 4, supported: 3).description.contains("newer than this FlowMeter understands"))
    }

    @Test func aForeignSQLiteFileIsRefused() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("other.db")
        let q = try DatabaseQueue(path: path)
        try q.write { try $0.execute(sql: "CREATE TABLE t(x)") }
        try q.close()
        #expect(throws: StoreError.notAFlowMeterDatabase(path: path)) { try AccountingStore(path: path) }
    }

    @Test func aSecondWriterIsRefusedWhileTheFirstHoldsTheDatabase() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("a.db")
        let first = try AccountingStore(path: path)
        #expect(throws: StoreError.writerBusy(path: path)) { try AccountingStore(path: path) }
        try first.close()
        try AccountingStore(path: path).close()
    }

    @Test func aReaderSeesEachCommittedFlushWhileTheWriterRuns() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("a.db")
        let acc = try BucketAccumulator(path: path, configuration: hourly(), relayLabels: relayLabels)
        let c = SyntheticCounters()
        c.add(3)
        acc.observe(c.snapshot, at: epoch)
        #expect(acc.flush(reason: .interval))
        let reader = try AccountingReader(path: path)
        #expect(try storedPackets(path) == 3)
        c.add(4)
        acc.observe(c.snapshot, at: epoch.addingTimeInterval(10))
        #expect(acc.flush(reason: .interval))
        #expect(try reader.buckets(from: everything.0, to: everything.1, resolution: .hour).first?.packets == 7)
        try acc.close()
    }

    @Test func theAuditListsEveryPersistedColumnAndNoOther() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("a.db")
        try AccountingStore(path: path).close()
        let live = try AccountingReader(path: path).liveColumns().map { "\($0.table).\($0.column)" }
        #expect(Set(live) == Set(StoreSchema.audit.map { "\($0.table).\($0.column)" }))
        for forbidden in ["addr", "ip", "port", "peer", "flow", "host_address"] {
            #expect(!live.contains { $0.split(separator: ".")[1] == forbidden })
        }
    }

    @Test func docsStorageListsEveryPersistedColumn() throws {
        let root = Repo.root
        let doc = try String(contentsOf: root.appendingPathComponent("docs/storage.md"), encoding: .utf8)
        for a in StoreSchema.audit {
            #expect(doc.contains("| `\(a.table)` | `\(a.column)` |"), "docs/storage.md does not list \(a.table).\(a.column)")
        }
    }

    @Test func retentionPrunesOldHoursWhileDayBucketsStillCoverThemOnce() throws {
        let dir = try TempDir(); defer { dir.cleanup() }
        let path = dir.path("a.db")
        let config = StoreConfiguration(resolutions: [ResolutionRetention(.hour, keepDays: 2), ResolutionRetention(.day, keepDays: nil)],
                                        flushIntervalSeconds: 60)
        let acc = try BucketAccumulator(path: path, configuration: config, relayLabels: relayLabels)
        let c = SyntheticCounters()
        // One packet every 10 minutes for 5 days.
        for step in 0..<(5 * 144) {
            c.add(1)
            acc.observe(c.snapshot, at: epoch.addingTimeInterval(Double(step) * 600 + 30))
        }
        try acc.close()
        let reader = try AccountingReader(path: path)
        let hours = try reader.buckets(from: everything.0, to: everything.1, resolution: .hour)
        #expect(hours.first.map { $0.start >= epoch.addingTimeInterval(2 * 86_400) } == true)
        let merged = try reader.buckets(from: everything.0, to: everything.1)
        #expect(merged.reduce(0) { $0 + $1.packets } == 5 * 144)
        #expect(merged.contains { $0.durationSeconds == 86_400 })
        #expect(merged.contains { $0.durationSeconds == 3600 })
    }
}
