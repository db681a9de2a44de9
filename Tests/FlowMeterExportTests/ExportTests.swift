import Foundation
import NIOHTTP1
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterExport
@testable import FlowMeterCapture
@testable import FlowMeterCore

struct PrometheusRendererTests {
    /// One relay, a few counted packets, one worker, one reason: small enough
    /// to check the exposition text exactly.
    static func smallReading() -> AgentReading {
        var model = HostModel()
        var relay = HostModel.Relay(name: "guard\"1")
        relay.orListeners = [.init(address: IPAddress(parsing: "198.51.100.10"), port: PortNumber(9001))]
        relay.addresses = [IPAddress(parsing: "198.51.100.10")!]
        model.relays = [relay]
        let g = CountingGeneration(number: 1, model: model, workers: 1)
        let counter = PacketCounter(classifier: g.classifier, block: g.blocks[0])
        var decoder = PacketDecoder(linkType: .ethernet)
        for frame in [TestTraffic.tcp(TestTraffic.ip(203, 0, 113, 5), 40000, TestTraffic.ip(198, 51, 100, 10), 9001, payload: 10),
                      TestTraffic.tcp(TestTraffic.ip(203, 0, 113, 5), 40000, TestTraffic.ip(198, 51, 100, 10), 9001, payload: 0)] {
            frame.withUnsafeBytes { _ = counter.count(decoder.decode($0, wireLength: UInt32(frame.count), timestampNanos: 0)) }
        }
        var r = AgentReading()
        r.generations = [(g.relayLabels, g.snapshot())]
        r.workers = [CaptureWorkerStatus(interface: "eth0", worker: 0, up: true, kernelRingDrops: 3, kernelReceived: 5,
                                         gaps: 1, gapSeconds: 2.5, recentGaps: [], lastError: nil)]
        r.interfaceDrops = [("eth0", 4)]
        r.interfaceRxDropped = [("eth0", 79)]
        r.startTimeSeconds = 1_700_000_000
        r.nowSeconds = 1_700_000_060
        r.reloadsSucceeded = 1
        r.refusedByToken = 2
        return r
    }

    /// The whole exposition text of `smallReading()`, compared with a golden
    /// file. After an intended change, regenerate it with
    /// `FLOWMETER_UPDATE_GOLDEN=1 swift test --filter theWholeExpositionText`
    /// and review the diff.
    @Test func theWholeExpositionTextOfASmallReadingEqualsTheGoldenFile() throws {
        let text = String(decoding: PrometheusRenderer().render(Self.smallReading()), as: UTF8.self)
        let golden = Repo.path("Tests/FlowMeterExportTests/Golden/small-reading.prom")
        if ProcessInfo.processInfo.environment["FLOWMETER_UPDATE_GOLDEN"] == "1" {
            try text.write(toFile: golden, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOfFile: golden, encoding: .utf8)
        let got = text.split(separator: "\n", omittingEmptySubsequences: false)
        let want = expected.split(separator: "\n", omittingEmptySubsequences: false)
        for (i, pair) in zip(got, want).enumerated() where pair.0 != pair.1 {
            Issue.record("line \(i + 1): got \(pair.0), want \(pair.1)")
            break
        }
        #expect(got.count == want.count)
        #expect(text == expected)
    }

    @Test func theExpositionTextIsExactlyAsSpecifiedForASmallReading() {
        let text = String(decoding: PrometheusRenderer().render(Self.smallReading()), as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.prefix(6) == [
            "# HELP flowmeter_build_info FlowMeter's version; always 1.",
            "# TYPE flowmeter_build_info gauge",
            "flowmeter_build_info{version=\"\(FlowMeterVersion.string)\"} 1",
            "# HELP flowmeter_start_time_seconds When the agent started, in seconds since the Unix epoch.",
            "# TYPE flowmeter_start_time_seconds gauge",
            "flowmeter_start_time_seconds 1700000000.0",
        ])
        #expect(lines.contains("flowmeter_packets_total{relay=\"guard\\\"1\",category=\"or_inbound\",direction=\"in\"} 2"))
        #expect(lines.contains("flowmeter_bytes_total{relay=\"guard\\\"1\",category=\"or_inbound\",direction=\"in\"} 118"))
        #expect(lines.contains("flowmeter_payload_bytes_total{relay=\"guard\\\"1\",category=\"or_inbound\",direction=\"in\"} 10"))
        #expect(lines.contains("flowmeter_packets_total{relay=\"host\",category=\"exit\",direction=\"out\"} 0"))
        #expect(lines.contains("flowmeter_drops_total{source=\"kernel_ring\",interface=\"eth0\",worker=\"0\"} 3"))
        #expect(lines.contains("flowmeter_drops_total{source=\"interface\",interface=\"eth0\"} 4"))
        #expect(lines.contains("flowmeter_capture_gaps_total{interface=\"eth0\"} 1"))
        #expect(lines.contains("flowmeter_capture_gap_seconds_total{interface=\"eth0\"} 2.5"))
        #expect(lines.contains("flowmeter_counts_lower_bound 1"))
        #expect(lines.contains("flowmeter_config_reloads_total{result=\"success\"} 1"))
        #expect(lines.contains("flowmeter_http_refused_total{reason=\"token\"} 2"))
        #expect(lines.last == "")  // ends with a newline
        // 2 relays × 7 categories × 2 directions per cell family.
        #expect(lines.filter { $0.hasPrefix("flowmeter_packets_total{") }.count == 28)
    }

    @Test func noLabelOrValueCarriesAPeerAddressOrPort() {
        let text = String(decoding: PrometheusRenderer().render(Self.smallReading()), as: UTF8.self)
        let json = String(decoding: StatusDocument(Self.smallReading()).json(), as: UTF8.self)
        for output in [text, json] {
            #expect(!output.contains("203.0.113"))
            #expect(!output.contains("40000"))
            #expect(!output.contains("198.51.100"))
        }
    }

    @Test(.enabled(if: LiveHarness.suiteTool("promtool") != nil, "needs promtool (Debian's prometheus package)"))
    func promtoolAcceptsTheExposition() throws {
        let promtool = try #require(LiveHarness.tool("promtool"))
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/metrics.txt"
        try Data(PrometheusRenderer().render(Self.smallReading())).write(to: URL(fileURLWithPath: path))
        let out = try LiveHarness.run(["/bin/sh", "-c", "\(promtool) check metrics < \(path)"])
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
        #expect(out.stdout.isEmpty && out.stderr.isEmpty, "promtool lint: \(out.stdout)\(out.stderr)")
    }

    @Test func theStatusDocumentMarksCountsWithDropsAsALowerBound() throws {
        let doc = StatusDocument(Self.smallReading())
        #expect(doc.lowerBound)
        #expect(doc.lowerBoundReasons == ["kernel_ring_drops", "interface_drops", "capture_gaps"])
        #expect(doc.totals.packets == 2)
        let decoded = try JSONStyle.decoder().decode(StatusDocument.self, from: doc.json())
        #expect(decoded == doc)
    }

    @Test func countsOfARetiredGenerationAreMergedByRelayLabelAfterAReload() {
        var r = Self.smallReading()
        r.generations += r.generations
        let table = r.cells
        #expect(table.relays == ["host", "guard\"1"])
        #expect(table.value(relay: "guard\"1", .orInbound, .inbound, .packets) == 4)
    }
}

struct AccessPolicyTests {
    @Test(arguments: [
        ("127.0.0.1", true), ("127.9.9.9", true), ("::1", true), ("::ffff:127.0.0.1", true),
        ("198.18.0.1", false), ("2001:db8::1", false), ("0.0.0.0", false),
    ])
    func theDefaultPolicyAdmitsLoopbackOnly(address: String, admitted: Bool) {
        #expect(AccessPolicy.loopbackOnly.admits(IPAddress(parsing: address)!) == admitted)
    }

    @Test func theFirstMatchingRuleWins() {
        let policy = AccessPolicy(rules: ["reject 198.18.0.7", "accept 198.18.0.0/24", "accept *6", "reject *"]
            .map { AccessPolicy.Rule(parsing: $0)! })
        #expect(!policy.admits(IPAddress(parsing: "198.18.0.7")!))
        #expect(policy.admits(IPAddress(parsing: "198.18.0.8")!))
        #expect(!policy.admits(IPAddress(parsing: "198.18.1.8")!))
        #expect(policy.admits(IPAddress(parsing: "2001:db8::5")!))
        #expect(!AccessPolicy(rules: []).admits(IPAddress(parsing: "127.0.0.1")!), "no rule matches: refused")
    }

    @Test(arguments: ["allow 1.2.3.4", "accept", "accept 1.2.3.4/33", "reject [::1]/129", "accept example.org", "accept 1.2.3.4 5"])
    func malformedRulesAreRejected(text: String) {
        #expect(AccessPolicy.Rule(parsing: text) == nil)
    }

    @Test func requestsAreDecidedByPolicyThenTokenThenPath() {
        let e = HTTPEndpoint(access: .init(policy: .loopbackOnly, token: "t0k"), metrics: { [] }, status: { Data() })
        let local = IPAddress(parsing: "127.0.0.1")
        #expect(e.decide(client: IPAddress(parsing: "198.18.0.1"), method: .GET, uri: "/metrics", authorization: "Bearer t0k") == .refusedByPolicy)
        #expect(e.decide(client: nil, method: .GET, uri: "/metrics", authorization: "Bearer t0k") == .refusedByPolicy)
        #expect(e.decide(client: local, method: .GET, uri: "/metrics", authorization: nil) == .refusedByToken)
        #expect(e.decide(client: local, method: .GET, uri: "/metrics", authorization: "Bearer t0") == .refusedByToken)
        #expect(e.decide(client: local, method: .GET, uri: "/metrics", authorization: "Bearer t0k") == .metrics)
        #expect(e.decide(client: local, method: .GET, uri: "/api/v1/status?x=1", authorization: "Bearer t0k") == .status)
        #expect(e.decide(client: local, method: .POST, uri: "/metrics", authorization: "Bearer t0k") == .methodNotAllowed)
        #expect(e.decide(client: local, method: .GET, uri: "/", authorization: "Bearer t0k") == .notFound)
        #expect(e.refusals.policy == 2 && e.refusals.token == 2)
    }
}

struct WidenedCounterTests {
    @Test func aWrapping32BitCounterIsWidenedTo64Bits() {
        var c = WidenedCounter()
        c.observe(4_000_000_000)
        c.observe(UInt32.max)
        c.observe(5)  // wrapped: 294_967_295 + 6 more
        #expect(c.total == UInt64(UInt32.max) + 6)
        c.restart()
        c.observe(10)
        #expect(c.total == UInt64(UInt32.max) + 16)
    }
}
