import FlowMeterCore
import FlowMeterCapture
import FlowMeterAccounting
import FlowMeterReports
/// Renders an `AgentReading` in the Prometheus text exposition format (0.0.4)
/// into a buffer that is reused across scrapes.
///
/// Why not swift-prometheus: its registry would hold a second copy of every
/// counter, updated from our blocks at each scrape, only to be rendered at
/// once; the counters already live in single-writer blocks that are summed
/// per scrape, so rendering them directly is one step shorter, costs no
/// dependency (+24 CPU-s of build), and keeps the output exact-text testable.
/// We keep its good ideas: label prefixes rendered once per label set, one
/// reused buffer, no String per sample.
///
/// Labels carry only relay names, categories, directions, reasons,
/// interfaces and worker numbers, never a peer address or port
/// (docs/tor-facts.md §5.3).
public final class PrometheusRenderer {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private var buffer: [UInt8] = []
    private var cellPrefixes: (relays: [String], prefixes: [[UInt8]]) = ([], [])

    public init() { buffer.reserveCapacity(16 << 10) }

    /// The rendered text; valid until the next call.
    public func render(_ r: AgentReading) -> [UInt8] {
        buffer.removeAll(keepingCapacity: true)
        renderIdentity(r)
        if !r.quotas.isEmpty { renderQuotas(r.quotas) }
        if let store = r.store { append(StoreHealthMetrics.text(store)) }
        if !r.torControl.isEmpty { renderTorControl(r.torControl) }
        renderCells(r)
        renderConnections(r)
        append(SurgeMetrics.render(r.surges, escape: escape))
        renderUndecoded(r)
        renderDrops(r)
        renderCapture(r)
        renderAgentHealth(r)
        return buffer
    }

    // MARK: Families

    private func renderIdentity(_ r: AgentReading) {
        family("flowmeter_build_info", "gauge", "FlowMeter's version; always 1.")
        sample("flowmeter_build_info{version=\"\(escape(r.version))\"}", UInt64(1))
        family("flowmeter_start_time_seconds", "gauge", "When the agent started, in seconds since the Unix epoch.")
        sampleDouble("flowmeter_start_time_seconds", r.startTimeSeconds)
    }

    /// The four counters of every (relay, category, direction) cell, with
    /// label prefixes rendered once per relay set.
    private func renderCells(_ r: AgentReading) {
        let table = r.cells
        let prefixes = labelPrefixes(table.relays)
        for field in CellField.all {
            let name = "flowmeter_\(field.name)_total"
            family(name, "counter", field.meaning)
            var i = 0
            for relay in table.relays.indices {
                for c in Category.allCases {
                    for d in Direction.allCases {
                        append(name)
                        buffer.append(contentsOf: prefixes[i])
                        i += 1
                        appendValue(table.value(relay: relay, c, d, field))
                    }
                }
            }
        }

    }

    private func renderConnections(_ r: AgentReading) {
        let table = r.cells
        // Connections (the flow table's view): per relay and category; no
        // direction, a connection has both.
        let connectionFamilies: [(String, ConnectionMetric, String, String)] = [
            ("flowmeter_connections_opened_total", .opened, "counter", "TCP connections whose handshake completed (or, first seen mid-stream, that carried payload both ways); UDP flows with packets both ways."),
            ("flowmeter_connection_attempts_unanswered_total", .unanswered, "counter", "Connection attempts (a SYN, or a first UDP packet) that were never answered."),
            ("flowmeter_connections_closed_total", .closed, "counter", "Opened connections that ended (FIN both ways, RST, idle timeout, eviction)."),
            ("flowmeter_connections_active", .active, "gauge", "Connections opened and not yet closed."),
        ]
        for (name, metric, type, help) in connectionFamilies {
            family(name, type, help)
            for relay in table.relays {
                for c in Category.allCases {
                    sample("\(name){relay=\"\(escape(relay))\",category=\"\(c.label)\"}", r.connectionValue(relay: relay, c, metric))
                }
            }
        }
    }

    private func renderUndecoded(_ r: AgentReading) {
        let reasons = r.reasons
        family("flowmeter_undecoded_packets_total", "counter", "Packets that could not be fully decoded, by reason; each is counted under exactly one reason.")
        for (reason, packets, _) in reasons { sample("flowmeter_undecoded_packets_total{reason=\"\(reason.label)\"}", packets) }
        family("flowmeter_undecoded_bytes_total", "counter", "Wire bytes of packets that could not be fully decoded, by reason.")
        for (reason, _, bytes) in reasons { sample("flowmeter_undecoded_bytes_total{reason=\"\(reason.label)\"}", bytes) }

    }

    private func renderDrops(_ r: AgentReading) {
        family("flowmeter_drops_total", "counter",
               "Packets lost before counting, by source: kernel_ring (a capture handle's ring was full; pcap_stats ps_drop widened to 64 bits, per worker), interface (frames the NIC never delivered: rx_missed_errors + rx_fifo_errors since the agent started), engine_ring (a worker ring was full).")
        for w in r.workers {
            sample("flowmeter_drops_total{source=\"kernel_ring\",interface=\"\(escape(w.interface))\",worker=\"\(w.worker)\"}", w.kernelRingDrops)
        }
        for (name, worker, dropped) in r.engineRingDrops {
            sample("flowmeter_drops_total{source=\"engine_ring\",interface=\"\(escape(name))\",worker=\"\(worker)\"}", dropped)
        }
        for (name, dropped) in r.interfaceDrops {
            sample("flowmeter_drops_total{source=\"interface\",interface=\"\(escape(name))\"}", dropped)
        }
        family("flowmeter_capture_received_total", "counter",
               "Packets each capture handle's socket received, its ring's drops included (pcap_stats ps_recv widened to 64 bits, read every 250 ms under traffic and as the handle goes idle): how the fanout spreads an interface's traffic over its handles.")
        for w in r.workers {
            sample("flowmeter_capture_received_total{interface=\"\(escape(w.interface))\",worker=\"\(w.worker)\"}", w.kernelReceived)
        }
        family("flowmeter_interface_rx_dropped_total", "counter",
               "The interface's rx_dropped since the agent started: frames the stack discarded after the capture saw them (no handler for the protocol, another host's MAC, IPv6 disabled). Informative: FlowMeter counted them, so not a loss.")
        for (name, dropped) in r.interfaceRxDropped {
            sample("flowmeter_interface_rx_dropped_total{interface=\"\(escape(name))\"}", dropped)
        }

    }

    private func renderCapture(_ r: AgentReading) {
        let interfaces = r.interfaces
        family("flowmeter_capture_up", "gauge", "1 while every capture handle of the interface is open and bound to the device that carries its name, 0 during a capture gap.")
        for name in interfaces { sample("flowmeter_capture_up{interface=\"\(escape(name))\"}", r.interfaceStatus(name).up ? UInt64(1) : 0) }
        family("flowmeter_capture_gaps_total", "counter", "Spans during which the interface was not captured (missing, vanished or failing); their traffic is unknown, not zero.")
        for name in interfaces { sample("flowmeter_capture_gaps_total{interface=\"\(escape(name))\"}", r.interfaceStatus(name).gaps) }
        family("flowmeter_capture_gap_seconds_total", "counter", "Seconds during which the interface was not captured, the open gap included.")
        for name in interfaces { sampleDouble("flowmeter_capture_gap_seconds_total{interface=\"\(escape(name))\"}", r.interfaceStatus(name).gapSeconds) }
        family("flowmeter_counts_lower_bound", "gauge", "1 when packets were lost before or at the capture (a capture ring, the NIC, an engine ring) or an interface was not captured since the start: every count since then is a lower bound.")
        sample("flowmeter_counts_lower_bound", r.isLowerBound ? UInt64(1) : 0)

    }

    private func renderAgentHealth(_ r: AgentReading) {
        family("flowmeter_config_reloads_total", "counter", "Configuration reloads (SIGHUP), by result.")
        sample("flowmeter_config_reloads_total{result=\"success\"}", r.reloadsSucceeded)
        sample("flowmeter_config_reloads_total{result=\"failure\"}", r.reloadsFailed)
        family("flowmeter_http_refused_total", "counter", "HTTP requests refused, by reason: policy (client address not admitted by the access policy) or token (missing or wrong bearer token).")
        sample("flowmeter_http_refused_total{reason=\"policy\"}", r.refusedByPolicy)
        sample("flowmeter_http_refused_total{reason=\"token\"}", r.refusedByToken)
    }

    // MARK: Pieces

    /// `{relay="…",category="…",direction="…"} ` for every cell, in table
    /// order, rendered once per relay label set.
    private func labelPrefixes(_ relays: [String]) -> [[UInt8]] {
        if cellPrefixes.relays == relays { return cellPrefixes.prefixes }
        var out: [[UInt8]] = []
        for relay in relays {
            for c in Category.allCases {
                for d in Direction.allCases {
                    out.append(Array("{relay=\"\(escape(relay))\",category=\"\(c.label)\",direction=\"\(d.label)\"} ".utf8))
                }
            }
        }
        cellPrefixes = (relays, out)
        return out
    }

    /// Per quota (label `quota`, an operator-chosen name): the period's use
    /// (persisted, so it survives restarts), limit, projection and, for Tor
    /// quotas, Tor's own schedule. A value that does not exist (no projection
    /// before 30 minutes of data, no exhaustion this period) has no sample.
    private func renderQuotas(_ quotas: [QuotaStatus]) {
        let families: [(String, String, (QuotaStatus) -> Double?)] = [
            ("flowmeter_quota_used_bytes", "Bytes counted against the quota in its current period, by its rule and scope.",
             { Double($0.forecast.usage.used) }),
            ("flowmeter_quota_limit_bytes", "The quota's limit in bytes.", { Double($0.quota.limit) }),
            ("flowmeter_quota_period_start_timestamp_seconds",
             "When the quota's current period began; a Tor quota says where its interval came from (interval_source: tor_control, tor_state_file or computed).",
             { $0.forecast.usage.interval.start.timeIntervalSince1970 }),
            ("flowmeter_quota_period_end_timestamp_seconds", "When the quota's current period ends.",
             { $0.forecast.usage.interval.end.timeIntervalSince1970 }),
            ("flowmeter_quota_projected_end_bytes", "Projected use at the end of the period (method in /api/v1/status and `flowmeter forecast`).",
             { $0.forecast.projection?.endTotal }),
            ("flowmeter_quota_history_seconds", "Seconds of measured history the projection stands on (this host's observed traffic, plus an imported span a young store's level uses).",
             { $0.forecast.historySeconds }),
            ("flowmeter_quota_projected_exhaustion_timestamp_seconds", "When the quota is projected to run out in this period.",
             { $0.forecast.projection?.exhaustion?.timeIntervalSince1970 }),
            ("flowmeter_tor_wakeup_timestamp_seconds", "Tor's wake-up time in the current accounting interval (from its fingerprint).",
             { $0.tor?.current.wakeup?.wake.timeIntervalSince1970 }),
            ("flowmeter_tor_predicted_soft_hibernation_timestamp_seconds", "When Tor is predicted to reach its soft limit and stop accepting connections.",
             { $0.tor?.current.predictedSoftHibernation?.timeIntervalSince1970 }),
            ("flowmeter_tor_predicted_hard_hibernation_timestamp_seconds", "When Tor is predicted to reach AccountingMax and hibernate.",
             { $0.tor?.current.predictedHardHibernation?.timeIntervalSince1970 }),
        ]
        for (name, help, value) in families {
            let samples = quotas.compactMap { q in value(q).map { (q.quota.name, $0) } }
            guard !samples.isEmpty else { continue }
            family(name, "gauge", help)
            for (quota, v) in samples { sampleDouble("\(name){quota=\"\(escape(quota))\"\(sourceLabel(name, quotas, quota))}", v) }
        }
    }

    func family(_ name: String, _ type: String, _ help: String) {
        append("# HELP \(name) \(escapeHelp(help))\n# TYPE \(name) \(type)\n")
    }

    func sample(_ series: String, _ value: UInt64) {
        append(series)
        buffer.append(UInt8(ascii: " "))
        appendValue(value)
    }

    func sampleDouble(_ series: String, _ value: Double) {
        append("\(series) \(value)\n")
    }

    private func append(_ s: String) { buffer.append(contentsOf: s.utf8) }

    /// Decimal digits and a newline, without a String.
    private func appendValue(_ v: UInt64) {
        if v == 0 {
            buffer.append(UInt8(ascii: "0"))
        } else {
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                          UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var n = 0
            var x = v
            // Safe: a UInt64 has at most 20 decimal digits, the tuple holds 20 bytes.
            withUnsafeMutableBytes(of: &digits) { d in
                while x > 0 { d[n] = UInt8(ascii: "0") + UInt8(x % 10); x /= 10; n += 1 }
                for i in stride(from: n - 1, through: 0, by: -1) { buffer.append(d[i]) }
            }
        }
        buffer.append(UInt8(ascii: "\n"))
    }

    /// Label values: backslash, double quote and newline escaped.
    func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }

    /// HELP text: backslash and newline escaped.
    private func escapeHelp(_ s: String) -> String {
        s.replacingAll("\\", with: "\\\\").replacingAll("\n", with: "\\n")
    }
}

extension String {
    fileprivate func replacingAll(_ target: Character, with replacement: String) -> String {
        var out = ""
        for ch in self { if ch == target { out += replacement } else { out.append(ch) } }
        return out
    }
}
