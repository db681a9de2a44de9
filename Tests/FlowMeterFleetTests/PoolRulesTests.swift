import FlowMeterAccounting
import FlowMeterConfig
import Foundation
import Testing
@testable import FlowMeterFleet
@testable import FlowMeterTestSupport

/// The generated pool rules: their period edges are FlowMeter's own, and
/// Prometheus (promtool) and vmalert accept them; promtool's rule unit test
/// checks the recorded use, shares, projection and alerts on known series.
struct PoolRulesTests {
    static let utc = TimeZone(identifier: "UTC")!
    /// a: 100 B/s in and out; b: 200 B/s in; d never reports; c is no member.
    static let pool = try! PooledQuota(spec: "p 20MB-SI day 00:00 sum provider tz=UTC hosts=a,b,d", defaultZone: utc)

    @Test func theEdgeTableIsTheQuotasOwnPeriodsAndItsExpressionPicksTheCurrentOne() {
        let berlin = try! Quota(spec: "q 1TiB month 1 00:00 sum tz=Europe/Berlin", defaultZone: Self.utc)
        let now = Date(timeIntervalSince1970: 1_790_000_000)
        let e = PoolRules.edges(berlin, from: now)
        #expect(e.count == PoolRules.edgeCount + 1)
        #expect(e[0] == berlin.interval(containing: now).start)
        for (a, b) in zip(e, e.dropFirst()) { #expect(berlin.interval(containing: a).end == b) }
        // Winter and summer months start at 23:00 and 22:00 UTC.
        #expect(Set(e.map { Int($0.timeIntervalSince1970) % 86_400 }) == [82_800, 79_200])
        let three = [Date(timeIntervalSince1970: 100), Date(timeIntervalSince1970: 250), Date(timeIntervalSince1970: 400)]
        #expect(PoolRules.edgeExpression(three, shift: 0) == "vector(100 + 150 * (time() >= bool 250) + 150 * (time() >= bool 400))")
        #expect(PoolRules.edgeExpression(three, shift: 1) == "vector(250 + 150 * (time() >= bool 250))")
    }

    static func render(step: Int = 300) -> String {
        PoolRules.render([pool], options: .init(stepSeconds: step, now: Date(timeIntervalSince1970: 600), source: "test.yaml"))
    }

    @Test(.enabled(if: LiveHarness.suiteTool("promtool") != nil, "needs promtool (Debian's prometheus package)"))
    func promtoolAcceptsTheRulesAndTheirUnitTestHolds() throws {
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.render(step: 900).write(toFile: dir + "/pools.rules.yml", atomically: true, encoding: .utf8)
        try Self.unitTest.write(toFile: dir + "/pools.test.yml", atomically: true, encoding: .utf8)
        let check = try LiveHarness.run(["promtool", "check", "rules", dir + "/pools.rules.yml"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let test = try LiveHarness.run(["/bin/sh", "-c", "cd '\(dir)' && promtool test rules pools.test.yml"], timeout: 120)
        #expect(test.status == 0, "\(test.stdout)\(test.stderr)")
    }

    @Test(.enabled(if: LiveHarness.suiteTool("promtool") != nil, "needs promtool (Debian's prometheus package)"))
    func theExampleFleetConfigsRulesPassPromtool() throws {
        let file = try ConfigFile.load(Repo.path("deploy/fleet/flowmeter-fleet.yaml"))
        let pools = try PooledQuota.load(file, defaultZone: Self.utc)
        #expect(pools.map(\.name) == ["account", "family"])
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try PoolRules.render(pools, options: .init(now: Date(), source: file.path))
            .write(toFile: dir + "/pools.rules.yml", atomically: true, encoding: .utf8)
        let check = try LiveHarness.run(["promtool", "check", "rules", dir + "/pools.rules.yml"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    }

    @Test(.enabled(if: LiveHarness.suiteTool("vmalert") != nil, "needs vmalert (Debian's victoria-metrics package)"))
    func vmalertAcceptsTheRules() throws {
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.render(step: 30).write(toFile: dir + "/pools.rules.yml", atomically: true, encoding: .utf8)
        let out = try LiveHarness.run(["vmalert", "-dryRun", "-rule=\(dir)/pools.rules.yml"])
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
    }

    /// 36 h of counters sampled each minute, rules evaluated every 15 min; at
    /// 36 h the pool's period (day 00:00 UTC) began 12 h ago: (100 + 100 +
    /// 200) B/s × 43200 s.
    static let unitTest = """
        rule_files: [pools.rules.yml]
        evaluation_interval: 15m
        tests:
          - interval: 1m
            input_series:
              - series: 'flowmeter_bytes_total{host="a",relay="host",category="other",direction="in"}'
                values: '0+6000x2200'
              - series: 'flowmeter_bytes_total{host="a",relay="host",category="other",direction="out"}'
                values: '0+6000x2200'
              - series: 'flowmeter_bytes_total{host="b",relay="guard",category="or_inbound",direction="in"}'
                values: '0+12000x2200'
              - series: 'flowmeter_bytes_total{host="c",relay="host",category="other",direction="in"}'
                values: '0+60000x2200'
              - series: 'flowmeter_build_info{host="a",version="x"}'
                values: '1x2200'
              - series: 'flowmeter_build_info{host="b",version="x"}'
                values: '1x2200'
            promql_expr_test:
              - expr: pool:flowmeter_pool_period_start_timestamp_seconds
                eval_time: 36h
                exp_samples:
                  - labels: 'pool:flowmeter_pool_period_start_timestamp_seconds{pool="p"}'
                    value: 86400
              - expr: pool:flowmeter_pool_period_end_timestamp_seconds
                eval_time: 36h
                exp_samples:
                  - labels: 'pool:flowmeter_pool_period_end_timestamp_seconds{pool="p"}'
                    value: 172800
              - expr: pool:flowmeter_pool_used_bytes
                eval_time: 36h
                exp_samples:
                  - labels: 'pool:flowmeter_pool_used_bytes{pool="p"}'
                    value: 17280000
              - expr: pool_host:flowmeter_pool_share:ratio
                eval_time: 36h
                exp_samples:
                  - labels: 'pool_host:flowmeter_pool_share:ratio{pool="p",host="a"}'
                    value: 0.5
                  - labels: 'pool_host:flowmeter_pool_share:ratio{pool="p",host="b"}'
                    value: 0.5
              - expr: pool:flowmeter_pool_projected_end_bytes
                eval_time: 36h
                exp_samples:
                  - labels: 'pool:flowmeter_pool_projected_end_bytes{pool="p"}'
                    value: 34560000
              - expr: pool:flowmeter_pool_projected_exhaustion_timestamp_seconds
                eval_time: 36h
                exp_samples:
                  - labels: 'pool:flowmeter_pool_projected_exhaustion_timestamp_seconds{pool="p"}'
                    value: 136400
              # The period before: a new one starts at 24 h, so 23 h 45 min hold 85500 s.
              - expr: pool:flowmeter_pool_used_bytes
                eval_time: 1425m
                exp_samples:
                  - labels: 'pool:flowmeter_pool_used_bytes{pool="p"}'
                    value: 34200000
            alert_rule_test:
              - alertname: FlowMeterPoolUsed
                eval_time: 36h
                exp_alerts:
                  - exp_labels: {severity: warning, pool: p}
                    exp_annotations:
                      summary: "Pool p is 86.4% used"
                      description: "Hosts a, b, d share this quota; the pool_host:flowmeter_pool_share:ratio series say who uses it. `flowmeter fleet forecast` projects it."
              - alertname: FlowMeterPoolHostSilent
                eval_time: 30m
                exp_alerts:
                  - exp_labels: {severity: warning, pool: p, host: d}
                    exp_annotations:
                      summary: "Host d of pool p sends no FlowMeter series"
                      description: "The pool's use is a lower bound while a member is silent. Check the host's agent and vmagent (journalctl -u flowmeter -u flowmeter-vmagent)."
              - alertname: FlowMeterPoolRulesExpiring
                eval_time: 36h
                exp_alerts: []
        """
}
