import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterExport
@testable import FlowMeterAccounting

/// The `flowmeter_surge_*` families: the names docs/alerting.md's rules use.
@Suite struct SurgeMetricsTests {
    static var reading: AgentReading {
        var r = AgentReading()
        r.surges = [
            SurgeCellStatus(relay: "guard1", category: .orInbound, direction: .inbound, active: true, events: 2, bytes: 1_920_000,
                            startSeconds: 1_800_000_000),
            SurgeCellStatus(relay: "host", category: .other, direction: .outbound, active: false, events: 0, bytes: 0, startSeconds: 0),
        ]
        return r
    }

    @Test func everyCellHasActiveEventsBytesAndStartWithRelayCategoryDirectionLabels() {
        let text = String(decoding: PrometheusRenderer().render(Self.reading), as: UTF8.self)
        for line in [
            "# TYPE flowmeter_surge_active gauge",
            "flowmeter_surge_active{relay=\"guard1\",category=\"or_inbound\",direction=\"in\"} 1",
            "flowmeter_surge_active{relay=\"host\",category=\"other\",direction=\"out\"} 0",
            "# TYPE flowmeter_surge_events_total counter",
            "flowmeter_surge_events_total{relay=\"guard1\",category=\"or_inbound\",direction=\"in\"} 2",
            "# TYPE flowmeter_surge_bytes_total counter",
            "flowmeter_surge_bytes_total{relay=\"guard1\",category=\"or_inbound\",direction=\"in\"} 1920000",
            "# TYPE flowmeter_surge_start_timestamp_seconds gauge",
            "flowmeter_surge_start_timestamp_seconds{relay=\"guard1\",category=\"or_inbound\",direction=\"in\"} 1800000000.0",
        ] {
            #expect(text.contains(line + "\n"), "missing: \(line)")
        }
        #expect(!String(decoding: PrometheusRenderer().render(AgentReading()), as: UTF8.self).contains("surge"))
    }

    @Test(.enabled(if: LiveHarness.suiteTool("promtool") != nil, "needs promtool (Debian package prometheus)"))
    func promtoolAcceptsTheSurgeFamilies() throws {
        let promtool = try #require(LiveHarness.tool("promtool"))
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/metrics.txt"
        try Data(PrometheusRenderer().render(Self.reading)).write(to: URL(fileURLWithPath: path))
        let out = try LiveHarness.run(["/bin/sh", "-c", "\(promtool) check metrics < \(path)"])
        #expect(out.status == 0 && out.stdout.isEmpty && out.stderr.isEmpty, "\(out.stdout)\(out.stderr)")
    }
}
