import Foundation
import GRDB
import Testing
@testable import FlowMeterTestSupport

/// `forecast` and `check` on a store filled by `replay --db`, through the real binary.
@Suite struct QuotaCommandTests {
    static let store: String = {
        let oracle = GeneratedRelayHost.shared
        let db = makeTemporaryDirectory("quota-cli") + "/acct.db"
        let torrcs = (oracle.args["torrc"] as! [String]).flatMap { ["--torrc", oracle.path($0)] }
        let r = try! runProcess(Repo.flowmeterBinary, ["replay", "--db", db] + torrcs
                                + ["--config", oracle.path("flowmeter.yaml"), oracle.path("relay-host.pcap")])
        precondition(r.status == 0, r.stderr)
        return db
    }()

    func run(_ args: [String]) throws -> ProcessResult {
        try runProcess(Repo.flowmeterBinary, args)
    }

    @Test func forecastJSONHasTheContractFieldsForEveryQuotaAndTorsScheduleForTorQuotas() throws {
        let guardTorrc = GeneratedRelayHost.shared.path("guardA.torrc")
        let r = try run(["forecast", "--json", "--db", Self.store, "--torrc", guardTorrc,
                         "--quota", "provider 20TiB month 1 00:00 sum provider tz=UTC"])
        #expect(r.status == 0, "\(r.stderr)")
        let list = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(list.map { $0["name"] as? String } == ["provider", "tor-guardA"])
        for q in list {
            for key in ["name", "limit_bytes", "used_bytes", "period_start", "period_end", "projected_end_bytes", "projected_exhaustion"] {
                #expect(q.keys.contains(key), "missing \(key)")
            }
            #expect((q["used_bytes"] as! NSNumber).uint64Value > 0)
            // A replayed capture has no surges: none, and the same projection without them.
            #expect((q["surge_count"] as? NSNumber)?.intValue == 0 && (q["surge_bytes"] as? NSNumber)?.intValue == 0)
            #expect(q.keys.contains("projected_end_bytes_without_surges"))
        }
        let tor = try #require(list[1]["tor"] as? [String: Any])
        for key in ["soft_limit_bytes", "expected_usage_bytes_per_minute", "wakeup", "predicted_soft_hibernation", "predicted_hard_hibernation"] {
            #expect(tor.keys.contains(key), "missing tor.\(key)")
        }
        // Five minutes of data: no projection yet (Tor's 30-minute rule), written as null.
        #expect(list[0]["projected_end_bytes"] is NSNull)
    }

    @Test func checkExitsZeroOneTwoAndThreeLikeANagiosPlugin() throws {
        // The replayed capture is old: --max-age 0 turns the staleness check off.
        let base = ["check", "--db", Self.store, "--max-age", "0"]
        let ok = try run(base + ["--quota", "big 20TiB month 1 00:00 sum"])
        #expect(ok.status == 0)
        #expect(ok.stdout.hasPrefix("FLOWMETER OK"))
        // The capture holds about 3.9 MiB.
        let warning = try run(base + ["--quota", "q 4.5MiB month 1 00:00 sum", "--warning", "80", "--critical", "95"])
        #expect(warning.status == 1, "\(warning.stdout)")
        let critical = try run(base + ["--quota", "q 1MiB month 1 00:00 sum"])
        #expect(critical.status == 2)
        #expect(critical.stdout.hasPrefix("FLOWMETER CRITICAL - q exhausted at 2024-05-01T"), "\(critical.stdout)")
        #expect(critical.stdout.contains("% over"))
        let unknown = try run(["check", "--db", "/nonexistent/acct.db", "--quota", "q 1MiB month 1 00:00 sum"])
        #expect(unknown.status == 3)
    }

    @Test func checkAnswersEveryErrorWithOneUnknownLineAndExitThree() throws {
        let cases: [[String]] = [
            ["check"],                                                             // --db missing
            ["check", "--db", Self.store, "--quota", "q 1MiB month 1 00:00 sum", "--warning", "lots"],
            ["check", "--db", Self.store, "--bogus"],
            ["check", "--db", Self.store, "--quota", "q 10GB month 1 00:00 sum"],  // ambiguous unit
            ["check", "--db", Self.store, "--quota", "q 0 month 1 00:00 sum"],     // limit 0
            ["check", "--db", Self.store, "--quota", "q 1TiB month 1 00:00 sum tor:gaurdA"],
            ["check", "--db", Self.store, "--config", "/nonexistent.yaml", "--quota", "q 1TiB month 1 00:00 sum"],
        ]
        for args in cases {
            let r = try run(args)
            #expect(r.status == 3, "\(args): \(r.stdout) \(r.stderr)")
            let lines = r.stdout.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].hasPrefix("FLOWMETER UNKNOWN - "), "\(args): \(r.stdout)")
        }
        let relay = try run(["check", "--db", Self.store, "--quota", "q 1TiB month 1 00:00 sum tor:gaurdA"])
        #expect(relay.stdout.contains("gaurdA") && relay.stdout.contains("known relays:"))
    }

    @Test func checkWithStaleDataIsCriticalAndVersionAndHelpExitZero() throws {
        let stale = try run(["check", "--db", Self.store, "--quota", "big 20TiB month 1 00:00 sum"])
        #expect(stale.status == 2)
        #expect(stale.stdout.hasPrefix("FLOWMETER CRITICAL - no data since "))
        #expect(stale.stdout.contains("|") && stale.stdout.contains(";0;"))
        let version = try run(["check", "-V"])
        #expect(version.status == 0 && version.stdout.hasPrefix("flowmeter check "))
        let help = try run(["check", "-h"])
        #expect(help.status == 0 && help.stdout.contains("--warning"))
    }

    @Test func checkPastItsTimeoutAnswersUnknown() throws {
        // Another process holds the store locked: a reader waits its busy
        // timeout (5 s), longer than the check may take. (A FIFO, which used
        // to stand in for a store that hangs, is now refused at once.)
        let dir = makeTemporaryDirectory("check-timeout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/locked.db"
        try AccountingStore(path: db).close()
        var config = Configuration()
        config.allowsUnsafeTransactions = true  // the lock is held across accesses on purpose
        config.prepareDatabase { try $0.execute(sql: "PRAGMA locking_mode = EXCLUSIVE") }
        let holder = try DatabaseQueue(path: db, configuration: config)
        try holder.inDatabase { try $0.execute(sql: "BEGIN EXCLUSIVE; INSERT INTO state(name, value, updated_utc) VALUES ('held', '1', 0)") }
        defer { try? holder.inDatabase { try $0.execute(sql: "ROLLBACK") }; try? holder.close() }
        let started = Date()
        let r = try run(["check", "--db", db, "--quota", "q 1TiB month 1 00:00 sum", "-t", "1"])
        #expect(r.status == 3)
        #expect(r.stdout == "FLOWMETER UNKNOWN - timed out after 1 s (--timeout)\n")
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func aBadQuotaSpecIsAConfigurationErrorWithExitTwo() throws {
        let r = try run(["forecast", "--db", Self.store, "--quota", "q 10GB month 1 00:00 sum"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--quota"))
    }

    /// The interface contract of `backtest --ages`: one JSON object per
    /// shape and age with these fields (the scores with an import nested).
    @Test func backtestAgesPrintsOneObjectPerShapeAndAgeWithTheContractsFields() throws {
        let r = try runProcess(Repo.flowmeterBinary, ["backtest", "--synthetic", "all", "--days", "62", "--ages", "10m,1h,1d,3d", "--json"],
                               timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == SyntheticHistory.Shape.allCases.count * 4)
        for row in rows {
            for key in ["shape", "age", "flowmeter_mape_percent", "vnstat_mape_percent", "coverage_percent", "with_import"] {
                #expect(row.keys.contains(key), "\(key) missing in \(row)")
            }
        }
        #expect(Set(rows.compactMap { $0["age"] as? String }) == ["10m", "1h", "1d", "3d"])
        // Under 30 minutes of its own data FlowMeter does not project (null), vnstat's formula does.
        let tenMinutes = rows.filter { $0["age"] as? String == "10m" }
        #expect(tenMinutes.allSatisfy { $0["flowmeter_mape_percent"] is NSNull && $0["vnstat_mape_percent"] is Double })
    }
}
