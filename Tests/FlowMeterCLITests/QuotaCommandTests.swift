import Foundation
import Testing
@testable import FlowMeterCore
@testable import FlowMeterCapture
@testable import FlowMeterConfig
@testable import FlowMeterAccounting
@testable import FlowMeterStore
@testable import FlowMeterReports
@testable import FlowMeterExport
@testable import FlowMeterAgent
@testable import FlowMeterFormat
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
        }
        let tor = try #require(list[1]["tor"] as? [String: Any])
        for key in ["soft_limit_bytes", "expected_usage_bytes_per_minute", "wakeup", "predicted_soft_hibernation", "predicted_hard_hibernation"] {
            #expect(tor.keys.contains(key), "missing tor.\(key)")
        }
        // Five minutes of data: no projection yet (Tor's 30-minute rule), written as null.
        #expect(list[0]["projected_end_bytes"] is NSNull)
    }

    @Test func checkExitsZeroOneTwoAndThreeLikeANagiosPlugin() throws {
        let base = ["check", "--db", Self.store]
        let ok = try run(base + ["--quota", "big 20TiB month 1 00:00 sum"])
        #expect(ok.status == 0)
        #expect(ok.stdout.hasPrefix("FLOWMETER OK"))
        // The capture holds about 3.9 MiB.
        let warning = try run(base + ["--quota", "q 4.5MiB month 1 00:00 sum", "--warning", "80", "--critical", "95"])
        #expect(warning.status == 1, "\(warning.stdout)")
        let critical = try run(base + ["--quota", "q 1MiB month 1 00:00 sum"])
        #expect(critical.status == 2)
        #expect(critical.stdout.hasPrefix("FLOWMETER CRITICAL"))
        let unknown = try run(["check", "--db", "/nonexistent/acct.db", "--quota", "q 1MiB month 1 00:00 sum"])
        #expect(unknown.status == 3)
    }

    @Test func aBadQuotaSpecIsAConfigurationErrorWithExitTwo() throws {
        let r = try run(["forecast", "--db", Self.store, "--quota", "q 10GB month 1 00:00 sum"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--quota"))
    }
}
