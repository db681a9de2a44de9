import Foundation
import Testing
@testable import FlowMeterTestSupport

/// On a Debian host the commands need no flag: relays from tor's layout,
/// history from the store the agent writes by default. The layout lives
/// under a temporary --system-root, never the real /etc.
@Suite struct NoFlagsCommandTests {
    @Test func reportForecastAndCheckReadTheDebianInstancesAndTheDefaultStore() throws {
        let root = makeTemporaryDirectory("noflags")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let instance = root + "/etc/tor/instances/guardA"
        try FileManager.default.createDirectory(atPath: instance, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/var/lib/flowmeter", withIntermediateDirectories: true)
        // CRLF, as an editor on another system may save it; no Nickname.
        try "ORPort \(TestTraffic.relayAddress):9001\r\nAccountingMax 1 TBytes\r\nAccountingStart month 1 00:00\r\n"
            .write(toFile: instance + "/torrc", atomically: true, encoding: .utf8)
        let pcap = root + "/traffic.pcap"
        try TestTraffic.relayHost(rounds: 5).write(to: pcap)
        let db = root + "/var/lib/flowmeter/accounting.db"
        let replay = try runProcess(Repo.flowmeterBinary, ["replay", "--system-root", root, "--db", db, pcap])
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(replay.stdout.contains("guardA"), "\(replay.stdout)")

        let report = try runProcess(Repo.flowmeterBinary, ["report", "--system-root", root])
        #expect(report.status == 0, "\(report.stderr)")
        #expect(report.stdout.contains("guardA"))
        let forecast = try runProcess(Repo.flowmeterBinary, ["forecast", "--system-root", root])
        #expect(forecast.status == 0, "\(forecast.stderr)")
        #expect(forecast.stdout.contains("quota tor-guardA"))
        // A replayed store is as old as its capture: --max-age 0 turns the staleness check off.
        let check = try runProcess(Repo.flowmeterBinary, ["check", "--system-root", root, "--max-age", "0"])
        #expect(check.status == 0 && check.stdout.hasPrefix("FLOWMETER OK - tor-guardA"), "\(check.stdout)\(check.stderr)")
    }

    /// The unit runs with /etc/flowmeter/flowmeter.yaml; every command reads
    /// it too when present, so the agent, report, forecast and check list
    /// the same quotas. --config overrides it.
    @Test func withoutConfigEveryCommandReadsTheInstalledConfigFileAndConfigOverridesIt() throws {
        let root = makeTemporaryDirectory("installedconfig")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc/flowmeter", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/var/lib/flowmeter", withIntermediateDirectories: true)
        try """
        host:
          addresses: [\(TestTraffic.relayAddress)]
        quotas:
          - "provider 1TB-SI month 1 00:00 sum tz=UTC"
        """.write(toFile: root + "/etc/flowmeter/flowmeter.yaml", atomically: true, encoding: .utf8)
        let other = root + "/other.yaml"
        try "quotas:\n  - \"budget 5TiB month 1 00:00 out tz=UTC\"\n".write(toFile: other, atomically: true, encoding: .utf8)
        let pcap = root + "/traffic.pcap"
        try TestTraffic.relayHost(rounds: 5).write(to: pcap)
        let replay = try runProcess(Repo.flowmeterBinary, ["replay", "--system-root", root, "--db", root + "/var/lib/flowmeter/accounting.db", pcap])
        #expect(replay.status == 0, "\(replay.stderr)")

        let report = try runProcess(Repo.flowmeterBinary, ["report", "--system-root", root])
        #expect(report.status == 0 && report.stdout.contains("provider"), "\(report.stdout)\(report.stderr)")
        let forecast = try runProcess(Repo.flowmeterBinary, ["forecast", "--system-root", root])
        #expect(forecast.status == 0 && forecast.stdout.contains("quota provider"), "\(forecast.stdout)\(forecast.stderr)")
        let check = try runProcess(Repo.flowmeterBinary, ["check", "--system-root", root, "--max-age", "0"])
        #expect(check.stdout.hasPrefix("FLOWMETER OK - provider"), "\(check.stdout)\(check.stderr)")
        let overridden = try runProcess(Repo.flowmeterBinary, ["forecast", "--system-root", root, "--config", other])
        #expect(overridden.stdout.contains("quota budget") && !overridden.stdout.contains("quota provider"), "\(overridden.stdout)")
        let help = try runProcess(Repo.flowmeterBinary, ["forecast", "--help"])
        #expect(help.stdout.contains("/etc/flowmeter/flowmeter.yaml"), "\(help.stdout)")
    }
}
