import Foundation
import Testing
import Yams
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

struct AgentSettingsTests {
    private func parse(_ yaml: String) throws(ConfigError) -> AgentSettings {
        let root = try! Yams.compose(yaml: yaml)
        return try AgentSettings.parse(root?.mapping?["agent"], file: "flowmeter.yaml")
    }

    @Test func withoutAnAgentSectionTheDefaultsAreTheSafeOnes() throws {
        let s = try parse("host: {}\n")
        #expect(s.listenHost == "127.0.0.1" && s.listenPort == 9477)
        #expect(s.accessPolicy == .loopbackOnly)
        #expect(s.snaplen == 128 && s.snaplen <= 128)
        #expect(s.user == nil && s.bearerTokenFile == nil && s.interfaces.isEmpty)
        #expect(s.bufferBytes == nil && s.bufferBytesMax == 32 << 20 && s.flowTableMax == 1 << 20)
    }

    @Test func bufferSizeAutoIsTheDefaultSpelledOut() throws {
        let s = try parse("agent:\n  buffer_size: auto\n  buffer_size_max: 8MiB\n  flow_table_max: 65536\n")
        #expect(s.bufferBytes == nil && s.bufferBytesMax == 8 << 20 && s.flowTableMax == 65536)
    }

    @Test func everyKeyIsRead() throws {
        let s = try parse("""
            agent:
              listen: "[::1]:9100"
              access_policy: ["accept 192.0.2.0/24", "reject *"]
              bearer_token_file: token.txt
              interfaces: [eth0, eth1]
              snaplen: 96
              buffer_size: 64MiB
              timeout_ms: 50
              bpf_filter: "not port 22"
              user: flowmeter
              capture_threads: 2
              capture_layout: rings
              state_directory: state
            """)
        #expect(s.listenHost == "::1" && s.listenPort == 9100)
        #expect(s.accessPolicy.rules.map(\.text) == ["accept 192.0.2.0/24", "reject *"])
        #expect(s.bearerTokenFile == "token.txt" && s.interfaces == ["eth0", "eth1"])
        #expect(s.snaplen == 96 && s.bufferBytes == 64 << 20 && s.timeoutMilliseconds == 50)
        #expect(s.bpfFilter == "not port 22" && s.user == "flowmeter" && s.captureThreads == 2 && s.stateDirectory == "state")
        #expect(s.captureLayout == .rings)
    }

    @Test(arguments: [
        ("agent:\n  snaplen: 20\n", 2, "agent.snaplen"),
        ("agent:\n  listen: 127.0.0.1\n", 2, "agent.listen"),
        ("agent:\n  timeout_ms: 0\n", 2, "agent.timeout_ms"),
        ("host: {}\nagent:\n  access_policy:\n    - accept 127.0.0.1\n    - permit all\n", 5, "permit all"),
        ("agent:\n  buffer_size: 12\n", 2, "agent.buffer_size"),
        ("agent:\n  buffer_size: 32MB\n", 2, "ambiguous"),
        ("agent:\n  buffer_size_max: auto\n", 2, "agent.buffer_size_max"),
        ("agent:\n  flow_table_max: 100\n", 2, "agent.flow_table_max"),
        ("agent:\n  interfaces: [eth0, \"a/b\"]\n", 2, "a/b"),
        ("agent:\n  colour: blue\n", 2, "unknown key \"colour\""),
        ("agent: [1]\n", 1, "expected a mapping"),
    ])
    func aBadSettingNamesTheFileTheLineAndTheProblem(yaml: String, line: Int, mentions: String) {
        #expect {
            try parse(yaml)
        } throws: { error in
            guard let e = error as? ConfigError else { return false }
            return e.file == "flowmeter.yaml" && e.line == line && e.message.contains(mentions)
        }
    }
}

struct InterfaceSelectionTests {
    /// A fake /sys/class/net: eth0 under eth0.100 (VLAN) and under br0 (bridge).
    private func fakeSysfs() throws -> SysfsNet {
        let root = try LiveHarness.temporaryDirectory()
        let fm = FileManager.default
        for name in ["eth0", "eth1", "eth0.100", "br0"] {
            try fm.createDirectory(atPath: "\(root)/\(name)/statistics", withIntermediateDirectories: true)
            try "7\n".write(toFile: "\(root)/\(name)/statistics/rx_dropped", atomically: true, encoding: .utf8)
        }
        try fm.createSymbolicLink(atPath: "\(root)/eth0.100/lower_eth0", withDestinationPath: "../eth0")
        try fm.createSymbolicLink(atPath: "\(root)/br0/lower_eth0.100", withDestinationPath: "../eth0.100")
        return SysfsNet(root: root)
    }

    @Test func overlappingTargetsAreReducedToTheLowerDeviceWithAWarning() throws {
        let sysfs = try fakeSysfs()
        defer { try? FileManager.default.removeItem(atPath: sysfs.root) }
        let s = InterfaceSelection.choose(explicit: ["br0", "eth0", "eth1", "eth0"], addresses: [], sysfs: sysfs)
        #expect(s.interfaces == ["eth0", "eth1"])
        #expect(s.warnings.count == 1)
        #expect(s.warnings.first?.contains("br0 overlaps eth0") == true)
    }

    @Test func interfaceCountersCountFromTheStartAndSurviveACounterReset() throws {
        let sysfs = try fakeSysfs()
        defer { try? FileManager.default.removeItem(atPath: sysfs.root) }
        let drops = InterfaceDropCounter(interfaces: ["eth1"], sysfs: sysfs)
        #expect(drops.read().first?.rxDropped == 0, "drops before the start are not ours")
        try "10\n".write(toFile: "\(sysfs.root)/eth1/statistics/rx_dropped", atomically: true, encoding: .utf8)
        #expect(drops.read().first?.rxDropped == 3)
        try "2\n".write(toFile: "\(sysfs.root)/eth1/statistics/rx_dropped", atomically: true, encoding: .utf8)
        #expect(drops.read().first?.rxDropped == 5, "a recreated device starts from zero")
    }

    /// rx_dropped counts frames the stack threw away after the capture saw
    /// them; only what the NIC never delivered is a loss.
    @Test func onlyFramesTheNICNeverDeliveredAreALossAndRxDroppedIsNot() throws {
        let sysfs = try fakeSysfs()
        defer { try? FileManager.default.removeItem(atPath: sysfs.root) }
        let counters = InterfaceDropCounter(interfaces: ["eth1"], sysfs: sysfs)
        try "500\n".write(toFile: "\(sysfs.root)/eth1/statistics/rx_dropped", atomically: true, encoding: .utf8)
        var r = AgentReading()
        r.interfaceDrops = counters.read().map { ($0.interface, $0.lost) }
        r.interfaceRxDropped = counters.read().map { ($0.interface, $0.rxDropped) }
        #expect(r.interfaceRxDropped.first?.dropped == 493)
        #expect(!r.isLowerBound && r.lowerBoundReasons.isEmpty)
        #expect(!StatusDocument(r).lowerBound)
        try "4\n".write(toFile: "\(sysfs.root)/eth1/statistics/rx_missed_errors", atomically: true, encoding: .utf8)
        try "1\n".write(toFile: "\(sysfs.root)/eth1/statistics/rx_fifo_errors", atomically: true, encoding: .utf8)
        r.interfaceDrops = counters.read().map { ($0.interface, $0.lost) }
        #expect(r.interfaceDrops.first?.dropped == 5)
        #expect(r.isLowerBound && r.lowerBoundReasons == ["interface_drops"])
        let text = String(decoding: PrometheusRenderer().render(r), as: UTF8.self)
        #expect(text.contains("flowmeter_drops_total{source=\"interface\",interface=\"eth1\"} 5\n"))
        #expect(text.contains("flowmeter_interface_rx_dropped_total{interface=\"eth1\"} 493\n"))
    }
}
