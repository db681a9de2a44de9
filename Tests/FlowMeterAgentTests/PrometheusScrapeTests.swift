import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// A real Prometheus (Debian's package) scrapes the agent, both inside the
/// meter namespace on its loopback, with a temporary data directory; PromQL
/// over Prometheus's HTTP API must return the replayed capture's totals.
@Suite(.serialized, .enabled(if: LiveHarness.canRun && LiveHarness.suiteTool("prometheus") != nil,
                             "needs root, ip netns, tcpreplay, curl and Debian's prometheus package"))
struct PrometheusScrapeTests {
    @Test func aRealPrometheusScrapesTheAgentAndPromQLReturnsThePerCategoryTotals() throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "scrape-token\n".write(toFile: dir + "/token", atomically: true, encoding: .utf8)
        let agent = try RunningAgent(veth: veth, agentYAML: """
            bearer_token_file: \(dir)/token
            capture_threads: 2
            """)
        defer { agent.cleanUp() }
        let auth = ["Authorization: Bearer scrape-token"]
        #expect(try agent.waitUntilServing(headers: auth), "agent log:\n\(agent.process.log)")

        // The shipped example config's job, pointed at the test's agent.
        try """
        global:
          scrape_interval: 1s
          scrape_timeout: 1s
        scrape_configs:
          - job_name: flowmeter
            authorization:
              credentials_file: \(dir)/token
            static_configs:
              - targets: ["127.0.0.1:\(agent.port)"]
        """.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let check = try LiveHarness.run(["promtool", "check", "config", dir + "/prometheus.yml"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let prometheus = try BackgroundProcess(namespace: veth.meter, argv: [
            LiveHarness.tool("prometheus")!, "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data",
            "--web.listen-address=127.0.0.1:9090", "--storage.tsdb.retention.time=1h",
        ], logPath: dir + "/prometheus.log")
        defer { prometheus.stop(signal: SIGTERM, timeout: 10) }

        let traffic = TestTraffic.relayHost(rounds: 40)
        let pcap = dir + "/relay-host.pcap"
        try traffic.write(to: pcap)
        try veth.replay(pcap, pps: LiveAgentTests.rate)

        var expected: [String: Double] = [:]
        for (key, value) in traffic.expected { expected["\(key.category)/\(key.direction)", default: 0] += Double(value.bytes) }
        let query = "sum by (category, direction) (flowmeter_bytes_total)"
        var last: [String: Double] = [:]
        let matched = try LiveHarness.waitUntil(timeout: 45) {
            last = try promQL(query, veth: veth)
            return expected.allSatisfy { last[$0.key] == $0.value }
        }
        #expect(matched, "PromQL \(query) returned \(last), expected \(expected)\nprometheus log:\n\(prometheus.log.suffix(2000))")
        // Categories with no traffic are exported as zeros, never missing.
        #expect(last["exit/in"] == 0)
    }

    /// An instant query; returns "category/direction" → value.
    private func promQL(_ query: String, veth: VethPair) throws -> [String: Double] {
        let encoded = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? query
        let (code, body) = try veth.get("http://127.0.0.1:9090/api/v1/query?query=\(encoded)", in: veth.meter)
        guard code == 200, let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]] else { return [:] }
        var out: [String: Double] = [:]
        for r in result {
            guard let metric = r["metric"] as? [String: String], let value = r["value"] as? [Any],
                  value.count == 2, let text = value[1] as? String, let v = Double(text) else { continue }
            out["\(metric["category"] ?? "")/\(metric["direction"] ?? "")"] = v
        }
        return out
    }
}
