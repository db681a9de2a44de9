import FlowMeterFormat
import Foundation
import GRDB
import Testing
@testable import FlowMeterTestSupport

/// Accounting databases damaged the ways an adversarial run damaged them,
/// each read by the real binary: `db check` and `report` (with a quota, whose
/// period walk is what looped) must end with a clear error, exit 1 or 2,
/// never a trap or a loop. Every case builds a sound store with the writer,
/// then breaks it with plain SQLite statements or by flipping one byte.
@Suite struct HostileDatabaseTests {
    /// A sound store: hour and day buckets for two relays, and one gap.
    static func soundStore() throws -> String {
        let path = makeTemporaryDirectory("hostile-db") + "/acct.db"
        let store = try AccountingStore(path: path)
        var batch = FlushBatch(clockUTC: 1_772_330_400)
        for (resolution, start) in [(BucketResolution.hour, Int64(1_772_326_800)), (.day, 1_772_323_200)] {
            for relay in ["host", "relay1"] {
                batch.deltas.append(BucketDelta(resolution: resolution, startUTC: start,
                                                cell: Cell(relay: relay, category: .orInbound, direction: .inbound,
                                                           CellCounts(packets: 10, bytes: 15_000, payloadBytes: 14_000))))
            }
        }
        batch.gaps.append(GapRecord(startUTC: 1_772_326_800, endUTC: 1_772_327_000, reason: .agentCrashed))
        try store.write(batch)
        try store.close()
        return path
    }

    /// Runs statements on the file as any SQLite client would; each string is
    /// its own connection, so a `writable_schema` edit is seen by the next.
    static func damage(_ path: String, _ steps: [String]) throws {
        for sql in steps {
            let q = try DatabaseQueue(path: path)
            try q.writeWithoutTransaction { try $0.execute(sql: sql) }
            try q.close()
        }
    }

    /// Lets NULL into a NOT NULL column, then puts the schema text back as it was.
    static func nullSteps(column: String) -> [String] {
        let relaxed = "replace(sql, '\(column) INTEGER NOT NULL', '\(column) INTEGER')"
        return ["PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = \(relaxed) WHERE name = 'bucket'",
                "UPDATE bucket SET \(column) = NULL WHERE resolution_seconds = 3600 AND relay = 'relay1'",
                "PRAGMA writable_schema = ON; UPDATE sqlite_master SET sql = replace(sql, '\(column) INTEGER DEFAULT', '\(column) INTEGER NOT NULL DEFAULT') WHERE name = 'bucket'"]
    }

    static let rowCases: [(name: String, steps: [String], mentions: String)] = [
        ("NULL in a counter", nullSteps(column: "packets"), "bucket.packets holds NULL"),
        ("text in a counter", ["UPDATE bucket SET bytes = 'lots' WHERE relay = 'relay1'"], "bucket.bytes holds the text"),
        ("a blob in a counter", ["UPDATE bucket SET payload_bytes = X'DEADBEEF' WHERE relay = 'relay1'"], "bucket.payload_bytes holds a 4-byte blob"),
        ("1e19 in a counter", ["UPDATE bucket SET bytes = 1e19 WHERE relay = 'relay1'"], "bucket.bytes holds the real number"),
        ("start_utc as text", ["UPDATE bucket SET start_utc = 'yesterday' WHERE relay = 'relay1'"], "bucket.start_utc holds the text"),
        ("start_utc = -2^63", ["UPDATE bucket SET start_utc = -9223372036854775808 WHERE relay = 'relay1' AND resolution_seconds = 3600"],
         "bucket.start_utc holds the instant -9223372036854775808"),
        ("start_utc = 2^63-1", ["UPDATE bucket SET start_utc = 9223372036854775807 WHERE relay = 'relay1' AND resolution_seconds = 86400"],
         "bucket.start_utc holds the instant 9223372036854775807"),
        ("a gap ending as text", ["UPDATE gap SET end_utc = 'later'"], "gap.end_utc holds the text"),
        ("text with an escape in a counter", ["UPDATE bucket SET bytes = 'x' || char(27) || ']52;c;aGk=' || char(7) WHERE relay = 'relay1'"],
         "bucket.bytes holds the text 'x]52;c;aGk='"),
        // A label that would clear the screen of whoever reads the report.
        ("an escape in a relay label", ["UPDATE bucket SET relay = 'relay1' || char(27) || '[2J' WHERE relay = 'relay1'"],
         "bucket.relay holds text with control or format characters (\"relay1[2J\")"),
        ("a right-to-left override in a gap's reason", ["UPDATE gap SET reason = 'agent_' || char(8238) || 'stopped'"],
         "gap.reason holds text with control or format characters"),
    ]

    static let quota = ["--quota", "provider 1TiB month 1 00:00 sum provider tz=UTC"]

    func expectClearFailure(_ r: ProcessResult, _ what: String, mentions: String, _ command: String) {
        // A trap ends the process by a signal (SIGILL 4, SIGTRAP 5), which
        // Foundation reports as that number: 3 is the exit code of a store that cannot be used.
        #expect(r.status == 3, "\(what): `\(command)` exit \(r.status): \(r.stderr)")
        #expect((r.stdout + r.stderr).contains(mentions), "\(what): `\(command)` said \(r.stdout) \(r.stderr)")
        for line in (r.stdout + r.stderr).split(separator: "\n") {
            #expect(Format.isPrintable(String(line)), "\(what): `\(command)` wrote \(line.debugDescription)")
        }
    }

    @Test(arguments: 0..<rowCases.count)
    func aDamagedRowIsAClearErrorForEveryReader(_ index: Int) throws {
        let c = Self.rowCases[index]
        let db = try Self.soundStore()
        defer { try? FileManager.default.removeItem(atPath: (db as NSString).deletingLastPathComponent) }
        try Self.damage(db, c.steps)

        let check = try runProcess(Repo.flowmeterBinary, ["db", "check", "--db", db], timeout: 30)
        expectClearFailure(check, c.name, mentions: c.mentions, "db check")
        let report = try runProcess(Repo.flowmeterBinary, ["report", "--db", db] + Self.quota, timeout: 30)
        expectClearFailure(report, c.name, mentions: String(c.mentions.prefix(while: { $0 != " " })), "report --quota")
        let export = try runProcess(Repo.flowmeterBinary, ["db", "export", "--db", db], timeout: 30)
        #expect(export.status == 3, "\(c.name): `db export` exit \(export.status): \(export.stderr)")
    }

    /// Flips one bit of the schema text stored in the file (after the writer
    /// checkpointed it there) and returns the path.
    static func flip(in path: String, at text: String, offset: Int, bit: UInt8) throws {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let needle = Array(text.utf8)
        let at = try #require((0...(bytes.count - needle.count)).first { bytes[$0..<($0 + needle.count)].elementsEqual(needle) })
        bytes[at + offset] ^= bit
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    @Test func aFlippedByteInACheckIsAMalformedSchemaNotOk() throws {
        // "end_utc" → "dnd_utc" inside gap's CHECK: it still parses, so
        // integrity_check says ok, but sqlite3 calls the schema malformed.
        let db = try Self.soundStore()
        defer { try? FileManager.default.removeItem(atPath: (db as NSString).deletingLastPathComponent) }
        try Self.flip(in: db, at: "CHECK (end_utc >= start_utc)", offset: 7, bit: 0x01)
        let r = try runProcess(Repo.flowmeterBinary, ["db", "check", "--db", db], timeout: 30)
        expectClearFailure(r, "flipped CHECK", mentions: "malformed database schema", "db check")
        #expect(!r.stdout.contains("resolution 1h"), "a damaged file's rows are not listed as sound")
    }

    @Test func aFlippedByteThatBreaksTheSyntaxIsAMalformedSchema() throws {
        let db = try Self.soundStore()
        defer { try? FileManager.default.removeItem(atPath: (db as NSString).deletingLastPathComponent) }
        try Self.flip(in: db, at: "PRIMARY KEY (resolution_seconds", offset: 3, bit: 0x41)
        for args in [["db", "check", "--db", db], ["report", "--db", db]] {
            let r = try runProcess(Repo.flowmeterBinary, args, timeout: 30)
            expectClearFailure(r, "flipped PRIMARY", mentions: "malformed database schema", args.prefix(2).joined(separator: " "))
        }
    }

    @Test func aSoundStoreStillChecksOk() throws {
        let db = try Self.soundStore()
        defer { try? FileManager.default.removeItem(atPath: (db as NSString).deletingLastPathComponent) }
        let r = try runProcess(Repo.flowmeterBinary, ["db", "check", "--db", db], timeout: 30)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("integrity: ok; quick check: ok"))
        #expect(r.stdout.contains("resolution 1h: 2 rows"))
        let report = try runProcess(Repo.flowmeterBinary, ["report", "--db", db] + Self.quota, timeout: 30)
        #expect(report.status == 0, "\(report.stderr)")
    }

    // MARK: Bounded work

    /// Every command that opens `--db`, as an operator would type it.
    static func commands(_ db: String, scratch: String) -> [[String]] {
        let quota = ["--quota", "provider 1TiB month 1 00:00 sum provider tz=UTC", "--system-root", scratch]
        return [["report", "--db", db], ["report", "--db", db] + quota, ["forecast", "--db", db] + quota,
                ["check", "--db", db] + quota, ["db", "check", "--db", db], ["db", "export", "--db", db],
                ["db", "audit", "--db", db], ["db", "migrate", "--db", db],
                ["import", "--db", db, "--tor-state", scratch + "/state", "--relay", "r1"],
                ["replay", "--db", db, Repo.corpus.appendingPathComponent("tcpdump/dns_tcp.pcap").path]]
    }

    /// Runs every command on `db`; each must end by itself well inside the
    /// timeout, with an error (never 0, never a signal) that mentions `mentions`.
    func expectEveryCommandRefuses(_ db: String, mentions: String, _ what: String) throws {
        let scratch = makeTemporaryDirectory("hostile-scratch")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try "AccountingBytesReadInInterval 1024\nAccountingIntervalStart 2026-03-01 00:00:00\n"
            .write(toFile: scratch + "/state", atomically: true, encoding: .utf8)
        for args in Self.commands(db, scratch: scratch) {
            let name = args.prefix(2).joined(separator: " ")
            let started = Date()
            let r = try runProcess(Repo.flowmeterBinary, args, timeout: 20)
            let seconds = Date().timeIntervalSince(started)
            #expect(seconds < 10, "\(what): `\(name)` took \(seconds) s")
            #expect([1, 2, 3].contains(r.status), "\(what): `\(name)` exit \(r.status): \(r.stdout) \(r.stderr)")
            #expect((r.stdout + r.stderr).contains(mentions), "\(what): `\(name)` said \(r.stdout) \(r.stderr)")
        }
    }

    @Test func aFIFOOrADeviceGivenAsTheDatabaseIsRefusedBeforeAnythingOpensIt() throws {
        let dir = makeTemporaryDirectory("hostile-fifo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/acct.db"
        try #require(mkfifo(fifo, 0o600) == 0)
        try expectEveryCommandRefuses(fifo, mentions: "FIFO", "a FIFO")
        try expectEveryCommandRefuses("/dev/zero", mentions: "device", "/dev/zero")
    }

    @Test func aBucketViewOverAnEndlessRecursionIsRefusedAtOnce() throws {
        let db = try Self.soundStore()
        defer { try? FileManager.default.removeItem(atPath: (db as NSString).deletingLastPathComponent) }
        try Self.damage(db, ["""
            DROP TABLE bucket;
            CREATE VIEW bucket AS WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n)
            SELECT 3600 AS resolution_seconds, 1772326800 AS start_utc, 'host' AS relay, 'exit' AS category,
                   'out' AS direction, 1 AS packets, x AS bytes, 0 AS payload_bytes, 0 AS tor_payload_bytes FROM n
            """])
        try expectEveryCommandRefuses(db, mentions: "'bucket' is a view, not a table", "an endless view")
    }

    @Test func aTriggerIsRefusedBeforeTheWriterCanFireIt() throws {
        let db = try Self.soundStore()
        defer { try? FileManager.default.removeItem(atPath: (db as NSString).deletingLastPathComponent) }
        try Self.damage(db, ["""
            CREATE TRIGGER spin AFTER INSERT ON bucket BEGIN
              SELECT count(*) FROM (WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n) SELECT x FROM n);
            END
            """])
        try expectEveryCommandRefuses(db, mentions: "trigger 'spin'", "a trigger")
    }

    /// 20,000 relays and one 50 KB relay label: the table once padded every
    /// line to the longest label (rows × 50 KB of output).
    @Test func thousandsOfRelaysAndAHugeLabelReportInLinearTimeAndSpace() throws {
        let path = makeTemporaryDirectory("hostile-wide") + "/acct.db"
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        let store = try AccountingStore(path: path)
        var batch = FlushBatch(clockUTC: 1_772_330_400)
        let labels = (0..<20_000).map { "relay\($0)" } + [String(repeating: "x", count: 50_000)]
        for relay in labels {
            batch.deltas.append(BucketDelta(resolution: .hour, startUTC: 1_772_326_800,
                                            cell: Cell(relay: relay, category: .orInbound, direction: .inbound,
                                                       CellCounts(packets: 1, bytes: 1500, payloadBytes: 1400))))
        }
        try store.write(batch)
        try store.close()
        for args in [["report", "--db", path], ["report", "--csv", "--db", path]] {
            let started = Date()
            let r = try runProcess(Repo.flowmeterBinary, args, timeout: 60)
            let seconds = Date().timeIntervalSince(started)
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.utf8.count < 20_001 * 200 + 50_000, "\(args): \(r.stdout.utf8.count) bytes of output")
            #expect(seconds < 8, "\(args): \(seconds) s")
        }
    }
}
