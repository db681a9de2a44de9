import FlowMeterFormat
import Foundation
import GRDB
import Testing
@testable import FlowMeterTestSupport

/// `flowmeter import` fed what an adversarial run fed it: every input ends
/// in a clear error or an exact import, never a trap, a silent clamp or a
/// long wait. Each hostile file is built here.
@Suite struct HostileImportTests {
    static let now = Int64(Date().timeIntervalSince1970)

    struct Run { var result: ProcessResult; var seconds: Double; var stored: [Row] }

    /// Imports into a fresh store and returns what it said and stored.
    static func runImport(_ args: [String], in dir: String) throws -> Run {
        let db = dir + "/acct.db"
        try? FileManager.default.removeItem(atPath: db)
        let started = Date()
        let r = try runProcess(Repo.flowmeterBinary, ["import", "--db", db] + args, timeout: 120)
        let seconds = Date().timeIntervalSince(started)
        var stored: [Row] = []
        if FileManager.default.fileExists(atPath: db) {
            let q = try DatabaseQueue(path: db)
            stored = try q.read { try Row.fetchAll($0, sql: "SELECT * FROM imported_usage") }
            try q.close()
        }
        return Run(result: r, seconds: seconds, stored: stored)
    }

    func expectRefused(_ run: Run, mentions: String, _ what: String) {
        // A trap ends the process by a signal (SIGILL 4, SIGTRAP 5): 1 is a real exit.
        #expect(run.result.status == 1, "\(what): exit \(run.result.status): \(run.result.stderr)")
        #expect(run.result.stderr.contains(mentions), "\(what): said \(run.result.stderr)")
        for line in run.result.stderr.split(separator: "\n") {
            #expect(Format.isPrintable(String(line)), "\(what): \(line.debugDescription)")
        }
        #expect(run.stored.isEmpty, "\(what): stored \(run.stored)")
    }

    // MARK: vnstat --json

    static func vnstatJSON(monthTimestamp: String = "1772323200", updated: String = "1772409600", rx: String = "1000") -> String {
        """
        {"vnstatversion":"2.10","jsonversion":"2","interfaces":[{"name":"eth0","alias":"","created":{},
         "updated":{"timestamp":\(updated)},"traffic":{"total":{"rx":1,"tx":1},
         "month":[{"id":1,"date":{"year":2026,"month":3},"timestamp":\(monthTimestamp),"rx":\(rx),"tx":2000}]}}]}
        """
    }

    static let jsonCases: [(name: String, json: String, mentions: String)] = [
        ("updated at 2^63-1", vnstatJSON(updated: "9223372036854775807"), "9223372036854775807 is not an instant"),
        ("a month at -2^63", vnstatJSON(monthTimestamp: "-9223372036854775808"), "-9223372036854775808 is not an instant"),
        ("rx -5", vnstatJSON(rx: "-5"), "rx is -5, not a byte count"),
        ("rx 1e300", vnstatJSON(rx: "1e300"), "not vnstat 2.x"),
        ("rx 2^64", vnstatJSON(rx: "18446744073709551616"), "not vnstat 2.x"),
        ("updated before the month", vnstatJSON(updated: "1772000000"), "before their period starts"),
        // Interface names are vnstat's text, quoted back to the terminal.
        ("an escape in an interface's name",
         vnstatJSON().replacingOccurrences(of: "\"interfaces\":[{\"name\":\"eth0\"",
                                           with: "\"interfaces\":[{\"name\":\"eth1\\u001b]52;c;aGk=\\u0007\",\"updated\":{\"timestamp\":1},\"traffic\":{}},{\"name\":\"eth0\""),
         "several interfaces (eth1]52;c;aGk=, eth0)"),
    ]

    @Test(arguments: 0..<jsonCases.count)
    func hostileVnstatJSONIsAClearErrorNeverATrap(_ index: Int) throws {
        let c = Self.jsonCases[index]
        let dir = makeTemporaryDirectory("hostile-vnstat-json")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try c.json.write(toFile: dir + "/v.json", atomically: true, encoding: .utf8)
        expectRefused(try Self.runImport(["--vnstat-json", dir + "/v.json"], in: dir), mentions: c.mentions, c.name)
    }

    // MARK: vnstat's database

    /// vnstat 2.x's two tables as far as the import reads them, one
    /// interface, one month, each value as the case puts it (SQL text).
    static func vnstatDatabase(_ path: String, date: String = "'2026-03-01'", rx: String = "1000",
                               updated: String = "'2026-03-02 00:00:00'") throws {
        let q = try DatabaseQueue(path: path)
        try q.write { db in
            try db.execute(sql: """
                CREATE TABLE interface(id INTEGER PRIMARY KEY, name TEXT NOT NULL, updated DATE);
                CREATE TABLE month(id INTEGER PRIMARY KEY, interface INTEGER, date DATE, rx INTEGER, tx INTEGER);
                INSERT INTO interface(id, name, updated) VALUES (1, 'eth0', \(updated));
                INSERT INTO month(interface, date, rx, tx) VALUES (1, \(date), \(rx), 2000);
                """)
        }
        try q.close()
    }

    static let databaseCases: [(name: String, date: String, rx: String, updated: String, mentions: String)] = [
        ("rx 'lots'", "'2026-03-01'", "'lots'", "'2026-03-02 00:00:00'", "month.rx for eth0 holds the text 'lots', not a byte count"),
        ("rx 1e300", "'2026-03-01'", "1e300", "'2026-03-02 00:00:00'", "month.rx for eth0 holds the real number"),
        ("rx -5", "'2026-03-01'", "-5", "'2026-03-02 00:00:00'", "month.rx for eth0 holds the integer -5, not a byte count"),
        ("date 9999-99-99", "'9999-99-99'", "1000", "'2026-03-02 00:00:00'", "month.date for eth0 holds the text '9999-99-99', not a date"),
        ("updated in year 99999", "'2026-03-01'", "1000", "'99999-12-31 23:59:59'", "interface.updated for eth0 holds the text '99999-12-31 23:59:59', not a date"),
    ]

    @Test(arguments: 0..<databaseCases.count)
    func hostileVnstatRowsAreAClearErrorNeverATrap(_ index: Int) throws {
        let c = Self.databaseCases[index]
        let dir = makeTemporaryDirectory("hostile-vnstat-db")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.vnstatDatabase(dir + "/vnstat.db", date: c.date, rx: c.rx, updated: c.updated)
        let run = try Self.runImport(["--vnstat-db", dir + "/vnstat.db", "--interface", "eth0"], in: dir)
        expectRefused(run, mentions: c.mentions, c.name)
    }

    @Test func aSoundVnstatDatabaseStillImports() throws {
        let dir = makeTemporaryDirectory("sound-vnstat-db")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.vnstatDatabase(dir + "/vnstat.db", rx: "9223372036854775807")
        let run = try Self.runImport(["--vnstat-db", dir + "/vnstat.db", "--interface", "eth0"], in: dir)
        #expect(run.result.status == 0, "\(run.result.stderr)")
        #expect(run.stored.map { $0["read_bytes"] as Int64 } == [Int64.max])
    }

    // MARK: tor's state file

    static func state(read: String, lineEnd: String = "\n", extra: String = "") -> String {
        ["# Tor state file", "AccountingBytesReadInInterval \(read)", "AccountingBytesWrittenInInterval 2048",
         "AccountingIntervalStart 2026-03-01 00:00:00", extra, "TorVersion Tor 0.4.9.11", ""].joined(separator: lineEnd)
    }

    func importState(_ text: String, _ what: String) throws -> Run {
        let dir = makeTemporaryDirectory("hostile-state")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/state"))
        return try Self.runImport(["--tor-state", dir + "/state", "--relay", "r1"], in: dir)
    }

    @Test func aByteCountIsStoredExactlyAsPrintedOrRefused() throws {
        let largest = try importState(Self.state(read: "9223372036854775807"), "2^63-1")
        #expect(largest.result.status == 0, "\(largest.result.stderr)")
        #expect(largest.result.stdout.contains("9223372036854775807 bytes read"))
        #expect(largest.stored.map { $0["read_bytes"] as Int64 } == [Int64.max])

        let beyond = try importState(Self.state(read: "18446744073709551615"), "2^64-1")
        expectRefused(beyond, mentions: "18446744073709551615 bytes read is more than the store holds", "2^64-1")
        #expect(!beyond.result.stdout.contains("18446744073709551615"), "printed a count it did not store")
    }

    /// The label would make the store unreadable to every report (its
    /// readers refuse such text): refused before anything is stored.
    @Test func aRelayLabelWithAnEscapeIsRefusedBeforeItIsStored() throws {
        let dir = makeTemporaryDirectory("hostile-label")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(Self.state(read: "1048576").utf8).write(to: URL(fileURLWithPath: dir + "/state"))
        let run = try Self.runImport(["--tor-state", dir + "/state", "--relay", "r1\u{1B}[2J"], in: dir)
        expectRefused(run, mentions: "the relay label \"r1[2J\" has control or format characters", "an escape in --relay")
    }

    @Test func aStateFileWithCRLFLineEndsIsRead() throws {
        let run = try importState(Self.state(read: "1048576", lineEnd: "\r\n"), "CRLF")
        #expect(run.result.status == 0, "\(run.result.stderr)")
        #expect(run.stored.map { $0["read_bytes"] as Int64 } == [1_048_576])
        #expect(run.stored.map { $0["written_bytes"] as Int64 } == [2048])
    }

    @Test func hugeLinesCostTimeLinearInTheirLength() throws {
        // 5 MB inside a value tor reads: refused at once, without echoing it.
        let value = try importState(Self.state(read: String(repeating: "1", count: 5_000_000)), "5 MB value")
        expectRefused(value, mentions: "AccountingBytesReadInInterval holds a 5000000-byte value", "5 MB value")
        #expect(value.result.stderr.utf8.count < 1000)
        #expect(value.seconds < 5, "5 MB value: \(value.seconds) s")
        // 50 MB in a line tor's accounting does not use: skipped, the import goes on.
        let other = try importState(Self.state(read: "4096", extra: "BWHistoryReadValues " + String(repeating: "9,", count: 25_000_000)),
                                    "50 MB line")
        #expect(other.result.status == 0, "\(other.result.stderr)")
        #expect(other.stored.map { $0["read_bytes"] as Int64 } == [4096])
        #expect(other.seconds < 10, "50 MB line: \(other.seconds) s")
    }
}
