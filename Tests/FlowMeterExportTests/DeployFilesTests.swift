@testable import FlowMeterTestSupport
import Foundation
import Testing
@testable import FlowMeterExport

/// The shipped Prometheus files pass Prometheus's own checker, and the
/// recording and alert rules do what their comments say (promtool's rule
/// unit tests, deploy/prometheus/flowmeter-rules.test.yml).
@Suite(.enabled(if: LiveHarness.tool("promtool") != nil, "needs promtool (Debian's prometheus package)"))
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
