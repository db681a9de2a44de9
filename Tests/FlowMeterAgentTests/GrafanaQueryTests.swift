import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// Every query of deploy/grafana/flowmeter.json (with its variables set to
/// "all", as `scripts/check_grafana.py --exprs --resolve` prints them) runs
/// against a real Prometheus that scraped a real agent with a store and a
/// quota: each must parse and evaluate, and the traffic, quota and
/// connection panels must return series.
@Suite(.serialized, .enabled(if: LiveHarness.canRun && LiveHarness.suiteTool("prometheus") != nil
                                 && LiveHarness.suiteTool("python3") != nil,
                             "needs root, ip netns, tcpreplay, curl, python3 and Debian's prometheus package"))
struct GrafanaQueryTests {
    /// Panels that must have data from an agent with a store, a quota and traffic.
    static let mustReturnSeries = [
        "Traffic by category, in", "Traffic by category, out", "Traffic by relay", "Wire bytes and what Tor counts",
        "Quota used, limit and projected end", "Quota used share", "Period ends",
        "Active connections", "Connections opened", "Unanswered connection attempts",
    ]

    @Test func everyGrafanaPanelQueryParsesAndTrafficQuotaAndConnectionPanelsReturnSeries() throws {
        let listed = try runProcess("python3", [Repo.path("scripts/check_grafana.py"), "--exprs", "--resolve"], timeout: 30)
        try #require(listed.status == 0, "check_grafana.py: \(listed.stderr)")
        let queries = listed.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: "\t", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }
        try #require(queries.count > 10, "too few panel queries: \(listed.stdout)")

        let veth = try VethPair()
        defer { veth.destroy() }
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/accounting.db"
        try KnownHistory.write(db, until: Date().addingTimeInterval(-120))
        let agent = try RunningAgent(veth: veth, agentYAML: "capture_threads: 1",
                                     extraArguments: ["--db", db, "--quota", DashboardTests.quotaSpec])
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(), "agent log:\n\(agent.process.log)")
        let rules = Repo.path("deploy/prometheus/flowmeter-recording.rules.yml")
        try """
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
          evaluation_interval: 1s
        \(FileManager.default.fileExists(atPath: rules) ? "rule_files: [\"\(rules)\"]" : "")
        scrape_configs:
          - job_name: flowmeter
            static_configs:
              - targets: ["127.0.0.1:\(agent.port)"]
        """.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = try BackgroundProcess(namespace: veth.meter, argv: [
            LiveHarness.tool("prometheus")!, "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data",
            "--web.listen-address=127.0.0.1:9090", "--storage.tsdb.retention.time=1h",
        ], logPath: dir + "/prometheus.log")
        defer { prometheus.stop(signal: SIGTERM, timeout: 10) }

        // Traffic only once Prometheus holds a sample from before it, so rates see it.
        let scraping = try LiveHarness.waitUntil(timeout: 30) { try query("up == 1", veth: veth).series > 0 }
        #expect(scraping, "prometheus log:\n\(prometheus.log.suffix(1500))")
        let traffic = TestTraffic.relayHost(rounds: 40)
        try traffic.write(to: dir + "/t.pcap")
        try veth.replay(dir + "/t.pcap", pps: 400)
        // Rates need two scrapes after the traffic; the quota needs the agent's 30 s evaluation.
        let ready = try LiveHarness.waitUntil(timeout: 45) {
            let r = try query("sum(rate(flowmeter_bytes_total[5m])) > 0", veth: veth)
            let q = try query("flowmeter_quota_used_bytes", veth: veth)
            return r.ok && r.series > 0 && q.series > 0
        }
        #expect(ready, "prometheus log:\n\(prometheus.log.suffix(1500))")

        var empty: Set<String> = []
        for (title, expr) in queries {
            let r = try query(expr, veth: veth)
            #expect(r.ok, "\(title): \(expr) did not evaluate: \(r.error)")
            if r.series == 0 { empty.insert(title) }
        }
        for title in Self.mustReturnSeries {
            #expect(queries.contains { $0.0 == title }, "the dashboard has no panel '\(title)'")
            #expect(!empty.contains(title), "panel '\(title)' returned no series")
        }
    }

    /// An instant query: whether it evaluated, how many series, the error.
    private func query(_ expr: String, veth: VethPair) throws -> (ok: Bool, series: Int, error: String) {
        let encoded = expr.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expr
        let (_, body) = try veth.get("http://127.0.0.1:9090/api/v1/query?query=\(encoded)", in: veth.meter)
        guard let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            return (false, 0, "no JSON: \(body.prefix(200))")
        }
        let ok = json["status"] as? String == "success"
        let result = (json["data"] as? [String: Any])?["result"]
        let series = (result as? [Any])?.count ?? (result == nil ? 0 : 1)
        return (ok, series, json["error"] as? String ?? "")
    }
}
