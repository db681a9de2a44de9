import Foundation
import Testing
@testable import FlowMeterTestSupport

/// Fragments are frames on the wire like any other: an exit sees large DNS
/// answers cut in pieces and fragment floods, and both must be counted as
/// tcpdump counts them on the same interface, in every capture layout.
@Suite(.serialized, .enabled(if: LiveHarness.canRun && LiveHarness.suiteTool("tcpdump") != nil,
                             "needs root, iproute2, tcpreplay, curl and tcpdump"))
struct FragmentCaptureTests {
    private func series(_ name: String, _ key: TestTraffic.Key) -> String {
        "\(name){relay=\"\(key.relay)\",category=\"\(key.category)\",direction=\"\(key.direction)\"}"
    }

    private func totals(_ m: [String: Double]) -> (packets: Double, bytes: Double) {
        func sum(_ prefixes: [String]) -> Double {
            m.filter { e in prefixes.contains { e.key.hasPrefix($0) } }.values.reduce(0, +)
        }
        return (sum(["flowmeter_packets_total{", "flowmeter_undecoded_packets_total{"]),
                sum(["flowmeter_bytes_total{", "flowmeter_undecoded_bytes_total{"]))
    }

    @Test(arguments: ["capture_threads: 2", "capture_threads: 3", "capture_layout: rings"])
    func everyFragmentIsCountedWithTheWiresBytesExactlyAsTcpdumpCountsIt(layout: String) throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        let agent = try RunningAgent(veth: veth, agentYAML: layout)
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(), "agent log:\n\(agent.process.log)")
        let reference = try TcpdumpReference(namespace: veth.meter, interface: veth.meterInterface, directory: agent.directory)
        defer { reference.process.stop(signal: SIGKILL) }

        let datagrams = TestTraffic.fragments(rounds: 40)
        let flood = TestTraffic.fragmentFlood(count: 4000)
        try datagrams.write(to: agent.directory + "/fragments.pcap")
        try flood.write(to: agent.directory + "/flood.pcap")
        #expect(try veth.replay(agent.directory + "/fragments.pcap", pps: 2000).status == 0)
        #expect(try veth.replay(agent.directory + "/flood.pcap", pps: 20000).status == 0)

        let sentPackets = datagrams.packetCount + flood.packetCount
        let sentBytes = datagrams.byteCount + flood.byteCount
        let settled = try LiveHarness.waitUntil(timeout: 15) { try totals(agent.metrics()).packets >= Double(sentPackets) }
        #expect(settled, "agent log:\n\(agent.process.log)")
        Thread.sleep(forTimeInterval: 0.5)  // anything counted late (or twice) would show now
        let wire = try reference.stop()
        let m = try agent.metrics()
        let counted = totals(m)
        #expect(wire.packets == sentPackets && wire.bytes == sentBytes, "tcpdump saw \(wire), sent \(sentPackets) / \(sentBytes)")
        #expect(counted.packets == Double(wire.packets), "FlowMeter counted \(counted.packets) packets, tcpdump \(wire.packets)")
        #expect(counted.bytes == Double(wire.bytes), "FlowMeter counted \(counted.bytes) bytes, tcpdump \(wire.bytes)")
        // A datagram's fragments count in its category, a lone one under its reason.
        for (key, value) in datagrams.expected {
            #expect(m[series("flowmeter_packets_total", key)] == Double(value.packets), "packets \(key)")
            #expect(m[series("flowmeter_bytes_total", key)] == Double(value.bytes), "bytes \(key)")
        }
        let lone = datagrams.expectedUndecoded["fragment_first_not_seen", default: 0] + flood.packetCount
        let loneBytes = datagrams.expectedUndecodedBytes["fragment_first_not_seen", default: 0] + flood.byteCount
        #expect(m["flowmeter_undecoded_packets_total{reason=\"fragment_first_not_seen\"}"] == Double(lone))
        #expect(m["flowmeter_undecoded_bytes_total{reason=\"fragment_first_not_seen\"}"] == Double(loneBytes))
        #expect(m["flowmeter_counts_lower_bound"] == 0)
    }

    /// The kernel's own fanout hash covers a fragment's addresses but an
    /// unfragmented packet's ports too, so an answer in fragments reached
    /// another handle than its query: neither handle saw the exchange both
    /// ways. FlowMeter's fanout program hashes a UDP packet and every
    /// fragment by the addresses alone, read past the frame's VLAN tags
    /// (none, 802.1Q, QinQ).
    @Test(arguments: [[], [100], [200, 100]] as [[UInt16]])
    func aQueryAndItsFragmentedAnswerMeetOnOneCaptureHandleAndOpenOneConnection(vlanTags: [UInt16]) throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        try veth.setMTU(1600)
        let agent = try RunningAgent(veth: veth, agentYAML: "capture_threads: 3")
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(), "agent log:\n\(agent.process.log)")
        let exchanges = TestTraffic.fragmentedAnswers(exchanges: 48)
        try exchanges.write(to: agent.directory + "/answers.pcap", vlanTags: vlanTags)
        #expect(try veth.replay(agent.directory + "/answers.pcap", pps: 2000).status == 0)
        let settled = try LiveHarness.waitUntil(timeout: 15) { try totals(agent.metrics()).packets >= Double(exchanges.packetCount) }
        #expect(settled, "agent log:\n\(agent.process.log)")
        let m = try agent.metrics()
        for (key, value) in exchanges.expected {
            #expect(m[series("flowmeter_packets_total", key)] == Double(value.packets), "packets \(key)")
        }
        let opened = m["flowmeter_connections_opened_total{relay=\"host\",category=\"dns\"}"]
        #expect(opened == 48, "48 exchanges, each a query and its answer, opened \(opened ?? -1) connections")
        #expect(m["flowmeter_connections_active{relay=\"host\",category=\"dns\"}"] == 48)
        // …and the program spreads the 32 host pairs over the handles (a
        // program that failed would send everything to handle 0).
        let spread = try LiveHarness.waitUntil(timeout: 5) {
            let received = try agent.metrics().filter { $0.key.hasPrefix("flowmeter_capture_received_total{") }
            return received.count == 3 && received.values.reduce(0, +) >= Double(exchanges.packetCount)
                && received.values.filter { $0 > 0 }.count >= 2
        }
        let perHandle = try agent.metrics().filter { $0.key.hasPrefix("flowmeter_capture_received_total{") }
        #expect(spread, "per handle: \(perHandle)")
    }
}
