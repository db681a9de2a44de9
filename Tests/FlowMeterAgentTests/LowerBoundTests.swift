import Foundation
import Testing
@testable import FlowMeterTestSupport

/// A lower bound is a claim that packets were lost. Frames the stack throws
/// away after the packet tap has handed them over (the interface's
/// `rx_dropped` counts such frames) were counted, so no view may call the
/// counts a lower bound because of them. (On recent kernels these frames
/// leave rx_dropped alone while a tap is open; InterfaceSelectionTests
/// drives rx_dropped itself through a fake sysfs.)
@Suite(.serialized, .enabled(if: LiveHarness.canRun, Comment(rawValue: LiveHarness.skipReason)))
struct LowerBoundTests {
    @Test func framesTheStackDropsAfterTheTapMakeNoLowerBoundInAnyView() throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        let agent = try RunningAgent(veth: veth, agentYAML: "capture_threads: 2")
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(), "agent log:\n\(agent.process.log)")
        let traffic = TestTraffic.strayFrames(rounds: 200)
        let pcap = agent.directory + "/stray.pcap"
        try traffic.write(to: pcap)
        #expect(try veth.replay(pcap, pps: 2000).status == 0)
        let counted = try LiveHarness.waitUntil(timeout: 10) {
            try agent.metrics().filter { $0.key.hasPrefix("flowmeter_packets_total{") }.values.reduce(0, +) >= Double(traffic.packetCount)
        }
        #expect(counted, "agent log:\n\(agent.process.log)")
        let m = try agent.metrics()
        for (key, value) in traffic.expected {
            #expect(m["flowmeter_packets_total{relay=\"\(key.relay)\",category=\"\(key.category)\",direction=\"\(key.direction)\"}"]
                    == Double(value.packets), "\(key)")
        }
        #expect(m["flowmeter_counts_lower_bound"] == 0)
        #expect(m["flowmeter_interface_rx_dropped_total{interface=\"\(veth.meterInterface)\"}"] != nil)
        let (_, status) = try veth.get("http://127.0.0.1:\(agent.port)/api/v1/status", in: veth.meter)
        #expect(status.contains("\"lower_bound\" : false"), "\(status)")
        let (_, page) = try veth.get("http://127.0.0.1:\(agent.port)/", in: veth.meter)
        #expect(!page.contains("id=\"lower-bound\""))

        // The store's view, after the final flush: report and check.
        #expect(agent.process.stop(signal: SIGTERM, timeout: 20) == 0, "agent log:\n\(agent.process.log)")
        let common = ["--config", agent.directory + "/flowmeter.yaml", "--system-root", agent.directory]
        let report = try LiveHarness.run([LiveHarness.flowmeter, "report"] + common)
        #expect(report.status == 0, "\(report.stderr)")
        // This store began with this agent, so today's figures at a glance are a lower bound *for that reason*,
        // said beside them; the dropped frames make nothing a lower bound: no stored row, no other reason.
        let marked = report.stdout.split(separator: "\n").filter { $0.contains("≥") && !$0.contains("≥ a lower bound: the store's counts begin at") }
        #expect(marked.allSatisfy { $0.hasPrefix("all ") || $0.hasPrefix("host ") }, "\(marked)")
        #expect(!report.stdout.contains("the store has no counts from"), "\(report.stdout)")
        let usage = report.stdout.components(separatedBy: "Usage by day").last ?? ""
        #expect(!usage.contains("≥") && !usage.contains("lower bound"), "\(report.stdout)")
        let check = try LiveHarness.run([LiveHarness.flowmeter, "check", "--quota", "provider 1TB-SI month 1 00:00 sum tz=UTC",
                                         "--max-age", "0"] + common)
        #expect(!check.stdout.contains("at least") && !check.stdout.contains("lower bound"), "\(check.stdout)")
    }
}
