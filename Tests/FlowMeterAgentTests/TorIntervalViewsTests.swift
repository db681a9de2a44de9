import Foundation
import Testing
@testable import FlowMeterTestSupport

/// Every view names the same Tor accounting interval for a relay, and the
/// same source. The relay's tor kept an interval that began a day before
/// the one AccountingStart computes (its state file says so, as after
/// AccountingStart was moved); its control port is not reachable, so the
/// state file is the best source, and the agent, its status, `/metrics`, the
/// dashboard, `top`, `report`, `forecast`, `check` and `tor-schedule` must
/// all say so.
@Suite(.serialized, .enabled(if: LiveHarness.canRun, Comment(rawValue: LiveHarness.skipReason)))
struct TorIntervalViewsTests {
    @Test func everyViewNamesTheIntervalTorsStateFileKeepsAndSaysWhereItCameFrom() throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        let root = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Tor's interval edges are local time: the test computes them in the zone the commands run in.
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .current
        let monthStart = calendar.date(from: calendar.dateComponents([.year, .month], from: Date()))!
        let kept = monthStart.addingTimeInterval(-86_400)
        let tor = root + "/var/lib/tor"
        try FileManager.default.createDirectory(atPath: tor, withIntermediateDirectories: true)
        try """
        Nickname exit1
        ORPort \(TestTraffic.relayAddress):9001
        Address \(TestTraffic.relayAddress)
        DataDirectory \(tor)
        AccountingMax 500 GBytes
        AccountingStart month 1 00:00
        AccountingRule sum
        """.write(toFile: root + "/torrc", atomically: true, encoding: .utf8)
        let stamp = { (d: Date) -> String in
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX"); f.timeZone = TimeZone(identifier: "UTC"); f.dateFormat = "yyyy-MM-dd HH:mm:ss"
            return f.string(from: d)
        }
        try """
        AccountingBytesReadInInterval 40000000000
        AccountingBytesWrittenInInterval 46000000000
        AccountingIntervalStart \(stamp(kept))
        AccountingSecondsActive 500000
        LastWritten \(stamp(Date().addingTimeInterval(-60)))
        """.write(toFile: tor + "/state", atomically: true, encoding: .utf8)
        let keptISO = ISO8601DateFormatter().string(from: kept)

        let agent = try RunningAgent(veth: veth, agentYAML: "capture_threads: 1", extraArguments: ["--torrc", root + "/torrc"])
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(), "agent log:\n\(agent.process.log)")
        let traffic = TestTraffic.relayHost(rounds: 20)
        try traffic.write(to: agent.directory + "/traffic.pcap")
        #expect(try veth.replay(agent.directory + "/traffic.pcap", pps: 2000).status == 0)
        // The quotas are evaluated off the request path, on the store's first tick.
        let series = "flowmeter_quota_period_start_timestamp_seconds{quota=\"tor-exit1\",interval_source=\"tor_state_file\"}"
        #expect(try LiveHarness.waitUntil(timeout: 20) { try agent.metrics()[series] != nil }, "agent log:\n\(agent.process.log)")
        let m = try agent.metrics()
        #expect(m[series] == kept.timeIntervalSince1970, "\(m.filter { $0.key.hasPrefix("flowmeter_quota") })")
        let (_, status) = try veth.get("http://127.0.0.1:\(agent.port)/api/v1/status", in: veth.meter)
        #expect(status.contains("\"period_start\" : \"\(keptISO)\"") && status.contains("\"interval_source\" : \"tor_state_file\""), "\(status)")
        let (_, page) = try veth.get("http://127.0.0.1:\(agent.port)/", in: veth.meter)
        #expect(page.contains("data-interval-source=\"tor_state_file\""))
        let top = try LiveHarness.run(["ip", "netns", "exec", veth.meter, LiveHarness.flowmeter, "top", "--count", "1"])
        #expect(top.stdout.contains("interval from tor's state file"), "\(top.stdout)\(top.stderr)")
        #expect(agent.process.stop(signal: SIGTERM, timeout: 20) == 0)

        let common = ["--torrc", root + "/torrc", "--config", agent.directory + "/flowmeter.yaml", "--system-root", agent.directory]
        let forecast = try LiveHarness.run([LiveHarness.flowmeter, "forecast", "--json"] + common)
        #expect(forecast.stdout.contains("\"period_start\" : \"\(keptISO)\"") && forecast.stdout.contains("\"interval_source\" : \"tor_state_file\""),
                "\(forecast.stdout)\(forecast.stderr)")
        let report = try LiveHarness.run([LiveHarness.flowmeter, "report"] + common)
        #expect(report.stdout.contains("tor-exit1 (tor_state_file)") && report.stdout.contains(keptISO), "\(report.stdout)\(report.stderr)")
        let check = try LiveHarness.run([LiveHarness.flowmeter, "check", "--max-age", "0"] + common)
        #expect(check.stdout.contains("interval from tor's state file"), "\(check.stdout)\(check.stderr)")
        let schedule = try LiveHarness.run([LiveHarness.flowmeter, "tor-schedule", "--torrc", root + "/torrc", "--json"])
        #expect(schedule.stdout.contains("\"interval_source\" : \"tor_state_file\"") && schedule.stdout.contains("\"interval_start\" : \"\(keptISO)\""),
                "\(schedule.stdout)\(schedule.stderr)")
    }
}
