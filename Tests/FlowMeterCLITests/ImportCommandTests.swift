import Foundation
import GRDB
import Testing
@testable import FlowMeterTestSupport

/// `flowmeter import` from tor's state file and from databases written by
/// Debian's vnstat 2.x, through the real binary where it matters.
@Suite struct ImportCommandTests {
    /// A state file as tor 0.4.x writes it (`or_state_save()`): comment
    /// header, keys sorted, MEMUNITs as plain byte counts rounded up to 1 KiB.
    static let torStateText = """
        # Tor state file last generated on 2026-11-10 12:00:05 local time
        # Other times below are in UTC
        # You *do not* need to edit this file.

        AccountingBytesAtSoftLimit 0
        AccountingBytesReadInInterval 629145600
        AccountingBytesWrittenInInterval 524288000
        AccountingExpectedUsage 1048576
        AccountingIntervalStart 2026-11-01 00:00:00
        AccountingSecondsActive 10 hours
        AccountingSecondsToReachSoftLimit 0
        AccountingSoftLimitHitAt 2026-11-01 00:00:00
        BWHistoryReadEnds 2026-11-10 11:59:37
        BWHistoryReadInterval 86400
        Dormant 0
        LastWritten 2026-11-10 12:00:05
        TorVersion Tor 0.4.9.11

        """
    static let quota = "p 1TiB month 1 00:00 sum provider tz=UTC"

    static func tool(_ name: String) -> String? {
        ["/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"].map { $0 + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test func aTorStateFileSeedsThePeriodAndTheForecastSaysSo() throws {
        let dir = makeTemporaryDirectory("import-tor")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state", db = dir + "/acct.db"
        try Self.torStateText.write(toFile: state, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.modificationDate: TorTime.parse("2026-11-10 12:00:05")!], ofItemAtPath: state)
        try AccountingStore(path: db).close()

        let r = try runProcess(Repo.flowmeterBinary, ["import", "--db", db, "--tor-state", state, "--relay", "guardA"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("629145600 bytes read"), "\(r.stdout)")

        let f = try runProcess(Repo.flowmeterBinary, ["forecast", "--json", "--db", db, "--quota", Self.quota, "--now", "2026-11-10T12:00:05Z"])
        #expect(f.status == 0, "\(f.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(f.stdout.utf8)) as? [[String: Any]])
        let q = try #require(list.first)
        #expect((q["used_bytes"] as? NSNumber)?.uint64Value == 629_145_600 + 524_288_000)
        let imported = try #require(q["imported"] as? [String: Any])
        #expect(imported["source"] as? String == "tor-state")
        #expect(imported["relay"] as? String == "guardA")
        #expect(q["used_is_lower_bound"] as? Bool == false)

        let text = try runProcess(Repo.flowmeterBinary, ["forecast", "--db", db, "--quota", Self.quota, "--now", "2026-11-10T12:00:05Z"])
        #expect(text.stdout.contains("imported from tor-state for guardA"), "\(text.stdout)")
    }

    @Test func aStateFileWithoutAccountingIsAClearError() throws {
        #expect(throws: ImportError.self) {
            try UsageImporter.torState("TorVersion Tor 0.4.9.11\n", relay: "r", writtenAt: Date())
        }
        #expect(throws: ImportError.self) {
            try UsageImporter.torState("AccountingBytesReadInInterval lots\n", relay: "r", writtenAt: Date())
        }
    }

    /// tor itself (with DisableNetwork, so nothing leaves the host) writes the state file.
    @Test func aStateFileWrittenByTorItselfIsRead() throws {
        guard let tor = Self.tool("tor") else {
            Issue.record("skipped: tor is not installed (scripts/install-deps.sh --test installs it)")
            return
        }
        let dir = makeTemporaryDirectory("import-realtor")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try """
            DataDirectory \(dir)/data
            DisableNetwork 1
            ORPort 127.0.0.1:auto
            SocksPort 0
            PublishServerDescriptor 0
            AssumeReachable 1
            AccountingMax 10 GBytes
            AccountingStart month 1 00:00
            Log notice stdout
            """.write(toFile: dir + "/torrc", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tor)
        p.arguments = ["-f", dir + "/torrc"]
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        // Up for a few seconds, then two SIGINTs: tor saves its state and exits.
        Thread.sleep(forTimeInterval: 5)
        for _ in 0..<2 where p.isRunning { kill(p.processIdentifier, SIGINT); Thread.sleep(forTimeInterval: 1) }
        let deadline = Date().addingTimeInterval(10)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }

        let text = try String(contentsOfFile: dir + "/data/state", encoding: .utf8)
        #expect(text.contains("AccountingIntervalStart"), "\(text)")
        let seed = try UsageImporter.torState(text, relay: "r", writtenAt: Date())
        #expect(seed.start < Date() && seed.start > Date().addingTimeInterval(-32 * 86_400))
        // Nothing was relayed: tor omits zero counters, which read as 0.
        #expect(seed.read == 0 && seed.written == 0)
    }

    /// vnstatd creates the database (its own schema), `vnstat --add` the
    /// interface; the month is filled in as vnstatd would, then `vnstat --json`
    /// renders it. Both importers must read the same seed.
    @Test func aVnstatDatabaseAndItsJSONGiveTheSameSeed() throws {
        guard let vnstatd = Self.tool("vnstatd"), let vnstat = Self.tool("vnstat") else {
            Issue.record("skipped: vnstat is not installed (scripts/install-deps.sh --test installs it)")
            return
        }
        let dir = makeTemporaryDirectory("import-vnstat")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let conf = dir + "/vnstat.conf"
        try "DatabaseDir \"\(dir)\"\nUseLogging 0\n".write(toFile: conf, atomically: true, encoding: .utf8)
        #expect(try runProcess(vnstatd, ["--config", conf, "--initdb"], timeout: 30).status == 0)
        #expect(try runProcess(vnstat, ["--config", conf, "--add", "-i", "fmtest0", "--force"], timeout: 30).status == 0)
        let q = try DatabaseQueue(path: dir + "/vnstat.db")
        try q.write { db in
            // vnstat keeps the host's local time; this month began at local midnight on the 1st.
            try db.execute(sql: """
                INSERT INTO month(interface, date, rx, tx) SELECT id, strftime('%Y-%m-01', 'now', 'localtime'), 123456789012, 98765432100
                FROM interface WHERE name = 'fmtest0'
                """)
        }
        try q.close()

        let fromDB = try UsageImporter.vnstatDatabase(path: dir + "/vnstat.db", interface: "fmtest0", relay: "host")
        #expect(fromDB.read == 123_456_789_012 && fromDB.written == 98_765_432_100)
        let json = try runProcess(vnstat, ["--config", conf, "--json", "m", "-i", "fmtest0"], timeout: 30)
        #expect(json.status == 0, "\(json.stderr)")
        let fromJSON = try UsageImporter.vnstatJSON(Data(json.stdout.utf8), interface: nil, relay: "host")
        #expect(fromJSON.read == fromDB.read && fromJSON.written == fromDB.written)
        #expect(fromJSON.start == fromDB.start)
        #expect(abs(fromJSON.end.timeIntervalSince(fromDB.end)) < 60)
        #expect(throws: ImportError.self) { try UsageImporter.vnstatDatabase(path: dir + "/vnstat.db", interface: "eth9", relay: "host") }

        // Through the binary, into a store, and out again marked as imported.
        let store = dir + "/acct.db"
        try AccountingStore(path: store).close()
        let r = try runProcess(Repo.flowmeterBinary, ["import", "--db", store, "--vnstat-db", dir + "/vnstat.db", "--interface", "fmtest0"])
        #expect(r.status == 0, "\(r.stderr)")
        let seeds = try AccountingReader(path: store).importedUsage(overlapping: DateInterval(start: fromDB.start, end: fromDB.end.addingTimeInterval(1)))
        #expect(seeds.map(\.source) == [.vnstatDB])
    }

    @Test func badVnstatInputIsAClearError() throws {
        #expect(throws: ImportError.self) { try UsageImporter.vnstatJSON(Data("{}".utf8), interface: nil, relay: "host") }
        #expect(throws: ImportError.self) {
            try UsageImporter.vnstatJSON(Data(#"{"jsonversion":"1","interfaces":[]}"#.utf8), interface: nil, relay: "host")
        }
        #expect(throws: ImportError.self) { try UsageImporter.vnstatDatabase(path: "/nonexistent/vnstat.db", interface: "x", relay: "host") }
    }
}
