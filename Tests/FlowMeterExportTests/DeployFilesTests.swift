@testable import FlowMeterTestSupport
import Foundation
import Testing
@testable import FlowMeterExport

/// The shipped Prometheus files pass Prometheus's own checker, and the
/// recording and alert rules do what their comments say (promtool's rule
/// unit tests, deploy/prometheus/flowmeter-rules.test.yml).
@Suite(.enabled(if: LiveHarness.suiteTool("promtool") != nil, "needs promtool (Debian's prometheus package)"))
struct DeployFilesTests {
    static let deploy = Repo.path("deploy/prometheus")

    @Test func theExampleScrapeConfigPassesPromtoolCheckConfigAsShipped() throws {
        // As shipped: no token file beside it, nothing copied, nothing added.
        let out = try LiveHarness.run(["promtool", "check", "config", "\(Self.deploy)/prometheus.yml"])
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
    }

    @Test func theRecordingAndAlertRulesPassPromtoolCheckRulesAndTheirUnitTests() throws {
        let check = try LiveHarness.run(["promtool", "check", "rules",
                                         "\(Self.deploy)/flowmeter-recording.rules.yml", "\(Self.deploy)/flowmeter-alerts.rules.yml"])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        let test = try LiveHarness.run(["/bin/sh", "-c", "cd '\(Self.deploy)' && promtool test rules flowmeter-rules.test.yml"])
        #expect(test.status == 0, "\(test.stdout)\(test.stderr)")
    }
}

/// The fleet's reference deployment (deploy/fleet) passes each engine's own
/// checker: vmagent's and vmalert's -dryRun, promtool for the Prometheus
/// variants (agent mode, remote-write receiver, federation), amtool for
/// Alertmanager, systemd-analyze for the units. scripts/test_fleet.sh runs it.
struct FleetDeployFilesTests {
    static let fleet = Repo.path("deploy/fleet")

    @Test(.enabled(if: LiveHarness.suiteTool("vmagent") != nil && LiveHarness.suiteTool("vmalert") != nil, "needs Debian's victoria-metrics package"))
    func vmagentsScrapeConfigAndTheShippedRulesPassTheirDryRuns() throws {
        let agent = try LiveHarness.run(["vmagent", "-dryRun", "-promscrape.config=\(Self.fleet)/relay/vmagent.yml"])
        #expect(agent.status == 0, "\(agent.stdout)\(agent.stderr)")
        let rules = try LiveHarness.run(["vmalert", "-dryRun", "-rule=\(DeployFilesTests.deploy)/flowmeter-recording.rules.yml",
                                         "-rule=\(DeployFilesTests.deploy)/flowmeter-alerts.rules.yml"])
        #expect(rules.status == 0, "\(rules.stdout)\(rules.stderr)")
    }

    @Test(.enabled(if: LiveHarness.suiteTool("promtool") != nil, "needs promtool (Debian's prometheus package)"))
    func thePrometheusVariantsPassPromtoolCheckConfig() throws {
        for (file, agentMode) in [("relay/prometheus-agent.yml", true), ("central/prometheus.yml", false),
                                  ("federation/prometheus-relay.yml", false), ("federation/prometheus-central.yml", false)] {
            let out = try LiveHarness.run(["promtool", "check", "config"] + (agentMode ? ["--agent"] : []) + ["\(Self.fleet)/\(file)"])
            #expect(out.status == 0, "\(file): \(out.stdout)\(out.stderr)")
        }
    }

    @Test(.enabled(if: LiveHarness.suiteTool("amtool") != nil, "needs amtool (Debian's prometheus-alertmanager package)"))
    func theAlertmanagerExamplePassesAmtool() throws {
        let out = try LiveHarness.run(["amtool", "check-config", "\(Self.fleet)/central/alertmanager.yml"])
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
    }

    @Test(.enabled(if: LiveHarness.suiteTool("systemd-analyze") != nil && LiveHarness.suiteTool("vmagent") != nil, "needs systemd-analyze and vmagent"))
    func theUnitsPassSystemdAnalyzeVerify() throws {
        let out = try LiveHarness.run(["systemd-analyze", "verify", "\(Self.fleet)/relay/flowmeter-vmagent.service",
                                       "\(Self.fleet)/central/flowmeter-vmalert.service"])
        #expect(out.status == 0, "\(out.stdout)\(out.stderr)")
    }
}
