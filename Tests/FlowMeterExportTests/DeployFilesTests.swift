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

    @Test func theExampleScrapeConfigPassesPromtoolCheckConfig() throws {
        // promtool also checks that the token file exists: check a copy beside one.
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for f in ["prometheus.yml", "flowmeter-recording.rules.yml", "flowmeter-alerts.rules.yml"] {
            try FileManager.default.copyItem(atPath: "\(Self.deploy)/\(f)", toPath: "\(dir)/\(f)")
        }
        try "example-token\n".write(toFile: dir + "/flowmeter.token", atomically: true, encoding: .utf8)
        let out = try LiveHarness.run(["promtool", "check", "config", dir + "/prometheus.yml"])
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
