import Foundation
import Testing
@testable import FlowMeterTestSupport

/// How the fanout program spreads an interface's traffic over its capture
/// handles: TCP by addresses and ports, so connections from one address
/// (a client behind one IP, or a flood from one) reach every handle, each
/// connection whole on one of them.
@Suite(.serialized, .enabled(if: LiveHarness.canRun, Comment(rawValue: LiveHarness.skipReason)))
struct FanoutSpreadTests {
    @Test func connectionsFromOneAddressSpreadOverEveryHandleAndEachOpensOnce() throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        let agent = try RunningAgent(veth: veth, agentYAML: "capture_threads: 3")
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(), "agent log:\n\(agent.process.log)")
        let connections = 300
        let traffic = TestTraffic.connectionsFromOneAddress(count: connections)
        try traffic.write(to: agent.directory + "/one-address.pcap")
        #expect(try veth.replay(agent.directory + "/one-address.pcap", pps: 5000).status == 0)
        func perHandle() throws -> [Double] {
            try agent.metrics().filter { $0.key.hasPrefix("flowmeter_capture_received_total{") }.map(\.value)
        }
        let settled = try LiveHarness.waitUntil(timeout: 15) { try perHandle().reduce(0, +) >= Double(traffic.packetCount) }
        #expect(settled, "agent log:\n\(agent.process.log)")
        let received = try perHandle()
        #expect(received.count == 3 && received.allSatisfy { $0 > 0 && $0 < 0.6 * Double(traffic.packetCount) },
                "received per handle: \(received) of \(traffic.packetCount)")
        let m = try agent.metrics()
        let opened = m["flowmeter_connections_opened_total{relay=\"guard1\",category=\"or_inbound\"}"]
        #expect(opened == Double(connections), "\(connections) handshakes, opened \(opened ?? -1)")
        #expect(m["flowmeter_connection_attempts_unanswered_total{relay=\"guard1\",category=\"or_inbound\"}"] == 0)
    }
}
