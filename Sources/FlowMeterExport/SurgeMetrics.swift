import FlowMeterCore
import FlowMeterAccounting

/// The `flowmeter_surge_*` families (docs/agent.md, "Surges"), one sample per
/// (relay, category, direction) the detector has seen. Labels carry the cell
/// only, never a peer.
enum SurgeMetrics {
    static func render(_ surges: [SurgeCellStatus], escape: (String) -> String) -> String {
        guard !surges.isEmpty else { return "" }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: (SurgeCellStatus) -> String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for s in surges {
                out += "\(name){relay=\"\(escape(s.relay))\",category=\"\(s.category.label)\",direction=\"\(s.direction.label)\"} \(value(s))\n"
            }
        }
        family("flowmeter_surge_active", "gauge",
               "1 while the cell's rate (or its unanswered connection attempts) is far above its own baseline, else 0.") { $0.active ? "1" : "0" }
        family("flowmeter_surge_events_total", "counter", "Surges that started in the cell since the agent started.") { String($0.events) }
        family("flowmeter_surge_bytes_total", "counter", "Wire bytes counted in the cell while it surged.") { String($0.bytes) }
        family("flowmeter_surge_start_timestamp_seconds", "gauge",
               "When the cell's current or last surge started, in seconds since the Unix epoch; 0 if it never surged.") { "\($0.startSeconds)" }
        return out
    }
}

extension AgentReading {
    /// The summed counters as the surge detector reads them.
    public var surgeInput: SurgeInput {
        var input = SurgeInput()
        let table = cells
        for relay in table.relays {
            var bytes: [UInt64] = [], packets: [UInt64] = []
            for c in Category.allCases {
                for d in Direction.allCases {
                    bytes.append(table.value(relay: relay, c, d, .bytes))
                    packets.append(table.value(relay: relay, c, d, .packets))
                }
            }
            input.cells.append((relay, bytes, packets))
            input.attempts[relay] = Category.allCases.map { connectionValue(relay: relay, $0, .unanswered) }
        }
        input.udpPackets = generations.reduce(0) { $0 &+ $1.snapshot.protocolPackets(.udp) }
        input.packets = generations.reduce(0) { $0 &+ $1.snapshot.classifiedPackets }
        return input
    }
}
