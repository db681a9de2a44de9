import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// Surge detection in the live agent over a veth pair: a steady baseline,
/// a SYN flood, quiet, a UDP flood, quiet. The detector's time constants
/// are shortened (`surge:` section) so the whole test takes well under 90 s;
/// the unanswered-attempts rule is left to the unit tests (the flow table
/// counts an attempt only when its 30 s handshake timeout ends it).
@Suite(.serialized, .enabled(if: LiveHarness.canRun, Comment(rawValue: LiveHarness.skipReason)))
struct SurgeTests {
    static let surgeYAML = """
        surge:
          current_window_seconds: 1
          baseline_window_seconds: 30
          warmup_seconds: 4
          hold_seconds: 2
          floor_bytes_per_second: 200000
          floor_packets_per_second: 1000
          floor_attempts_per_second: 1000000000
        """

    private func cell(_ name: String, _ relay: String, _ category: String, _ direction: String) -> String {
        "\(name){relay=\"\(relay)\",category=\"\(category)\",direction=\"\(direction)\"}"
    }

    /// Sends `pcap` at `pps` in the background and waits (at most 15 s from
    /// the start) for `series` to read 1; then for the sender to finish.
    private func flood(_ agent: RunningAgent, _ veth: VethPair, pcap: String, pps: Int, until series: String) throws -> Double? {
        let sender = try BackgroundProcess(
            namespace: veth.sender,
            argv: ["timeout", "30", "tcpreplay", "-q", "--pps=\(pps)", "-i", veth.senderInterface, pcap],
            logPath: agent.directory + "/tcpreplay.log")
        defer { sender.stop(signal: SIGTERM, timeout: 30) }
        let start = Date()
        let seen = try LiveHarness.waitUntil(timeout: 15) { (try agent.metrics())[series] == 1 }
        let after = Date().timeIntervalSince(start)
        while sender.process.isRunning && Date().timeIntervalSince(start) < 30 { usleep(50_000) }
        #expect(sender.process.terminationStatus == 0, "tcpreplay: \(sender.log)")
        return seen ? after : nil
    }

    @Test func aFloodTurnsItsCellsSurgeOnWithin15SecondsAndOffAfterwardsWhileCountsStayExactAndNoOtherCellAlarms() throws {
        let begun = Date()
        let veth = try VethPair()
        defer { veth.destroy() }
        let state = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let agent = try RunningAgent(veth: veth, agentYAML: "capture_threads: 1", topLevelYAML: Self.surgeYAML,
                                     extraArguments: ["--db", state + "/acct.db"])
        defer { agent.cleanUp() }
        #expect(try agent.waitUntilServing(), "agent log:\n\(agent.process.log)")

        // 1. A steady baseline: ~1550 frames at 200 packets/s (~8 s), far under the floors.
        let baseline = TestTraffic.relayHost(rounds: 200)
        let syn = TestTraffic.synFlood(count: 30_000)
        let udp = TestTraffic.udpFlood(count: 20_000)
        for (name, t) in [("baseline", baseline), ("syn", syn), ("udp", udp)] { try t.write(to: "\(agent.directory)/\(name).pcap") }
        let sent = try veth.replay("\(agent.directory)/baseline.pcap", pps: 200)
        #expect(sent.status == 0, "tcpreplay: \(sent.stderr)")
        #expect((try agent.metrics()).filter { $0.key.hasPrefix("flowmeter_surge_active{") }.values.allSatisfy { $0 == 0 })

        // 2. 64-byte SYNs from many spoofed sources at 10000/s for 3 s.
        let synActive = cell("flowmeter_surge_active", "guard1", "or_inbound", "in")
        let synSeen = try flood(agent, veth, pcap: "\(agent.directory)/syn.pcap", pps: 10_000, until: synActive)
        #expect(synSeen != nil, "the SYN flood was not flagged within 15 s; agent log:\n\(agent.process.log)")
        #expect(try LiveHarness.waitUntil(timeout: 20) { (try agent.metrics())[synActive] == 0 }, "the SYN surge did not end")

        // 3. UDP to a port no relay listens on, 142 bytes at 10000/s for 2 s.
        let udpActive = cell("flowmeter_surge_active", "host", "other", "in")
        let udpSeen = try flood(agent, veth, pcap: "\(agent.directory)/udp.pcap", pps: 10_000, until: udpActive)
        #expect(udpSeen != nil, "the UDP flood was not flagged within 15 s; agent log:\n\(agent.process.log)")
        #expect(try LiveHarness.waitUntil(timeout: 20) { (try agent.metrics())[udpActive] == 0 }, "the UDP surge did not end")

        // 4. Quiet: exact counts, one surge per flooded cell and none elsewhere.
        var expected: [TestTraffic.Key: (packets: UInt64, bytes: UInt64)] = baseline.expected
        for t in [syn, udp] {
            for (k, v) in t.expected { expected[k] = ((expected[k]?.packets ?? 0) + v.packets, (expected[k]?.bytes ?? 0) + v.bytes) }
        }
        let total = baseline.packetCount + syn.packetCount + udp.packetCount
        #expect(try LiveHarness.waitUntil(timeout: 10) {
            let m = try agent.metrics()
            let counted = m.filter { $0.key.hasPrefix("flowmeter_packets_total{") || $0.key.hasPrefix("flowmeter_undecoded_packets_total{") }
            return UInt64(counted.values.reduce(0, +)) >= total
        })
        let m = try agent.metrics()
        for (k, v) in expected {
            #expect(m[cell("flowmeter_packets_total", k.relay, k.category, k.direction)] == Double(v.packets), "packets \(k)")
            #expect(m[cell("flowmeter_bytes_total", k.relay, k.category, k.direction)] == Double(v.bytes), "bytes \(k)")
        }
        #expect(m["flowmeter_drops_total{source=\"kernel_ring\",interface=\"\(veth.meterInterface)\",worker=\"0\"}"] == 0)
        let events = m.filter { $0.key.hasPrefix("flowmeter_surge_events_total{") && $0.value > 0 }
        #expect(events == [cell("flowmeter_surge_events_total", "guard1", "or_inbound", "in"): 1,
                           cell("flowmeter_surge_events_total", "host", "other", "in"): 1], "\(events)")
        // Nearly every flood byte came during its surge (the first tick's share may precede it).
        let synBytes = m[cell("flowmeter_surge_bytes_total", "guard1", "or_inbound", "in")] ?? 0
        #expect(synBytes >= 0.8 * Double(syn.expected.values.first!.bytes) && synBytes <= Double(expected.first { $0.key.category == "or_inbound" && $0.key.direction == "in" }!.value.bytes))
        #expect((m[cell("flowmeter_surge_start_timestamp_seconds", "host", "other", "in")] ?? 0) > begun.timeIntervalSince1970)

        // 5. The store holds both spans, ended, with the cell and kind and no peer.
        #expect(agent.process.stop(signal: SIGTERM, timeout: 15) == 0, "agent log:\n\(agent.process.log)")
        let spans = try AccountingReader(path: state + "/acct.db").surgeSpans(from: begun.addingTimeInterval(-60), to: Date())
        #expect(spans.map { "\($0.relay)/\($0.category.label)/\($0.direction.label)/\($0.kind.rawValue)" }
                == ["guard1/or_inbound/in/rate", "host/other/in/udp"], "\(spans)")
        #expect(spans.allSatisfy { $0.end != nil && $0.bytes > 0 })
        #expect(Date().timeIntervalSince(begun) < 90)
    }
}
