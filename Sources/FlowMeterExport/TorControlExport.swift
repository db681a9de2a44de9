import FlowMeterCore
import FlowMeterAccounting
import FlowMeterReports
import Foundation

extension PrometheusRenderer {
    /// Per relay whose torrc names a control port: tor's own figures beside
    /// FlowMeter's (docs/quotas.md, "Tor's own figures"). Only totals and
    /// times; nothing names a peer.
    func renderTorControl(_ statuses: [TorControlStatus]) {
        func relay(_ s: TorControlStatus) -> String { "relay=\"\(escape(s.relay))\"" }
        family("flowmeter_tor_control_up", "gauge", "1 when the relay's tor answered on its control port at the last poll, else 0.")
        for s in statuses { sample("flowmeter_tor_control_up{\(relay(s))}", s.up ? UInt64(1) : 0) }
        let known = statuses.filter { $0.figures != nil }
        guard !known.isEmpty else { return }
        family("flowmeter_tor_accounting_read_bytes", "gauge", "Bytes tor's accounting counted as read in its current interval (GETINFO accounting/bytes).")
        for s in known { sample("flowmeter_tor_accounting_read_bytes{\(relay(s))}", s.figures!.bytesRead) }
        family("flowmeter_tor_accounting_written_bytes", "gauge", "Bytes tor's accounting counted as written in its current interval.")
        for s in known { sample("flowmeter_tor_accounting_written_bytes{\(relay(s))}", s.figures!.bytesWritten) }
        family("flowmeter_tor_hibernating", "gauge", "1 for tor's current hibernation state (awake, soft: no new connections, hard: dormant).")
        for s in known {
            for state in TorHibernationState.allCases {
                sample("flowmeter_tor_hibernating{\(relay(s)),state=\"\(state.rawValue)\"}", s.figures!.hibernating == state ? UInt64(1) : 0)
            }
        }
        let doubles: [(String, String, (TorControlStatus) -> Double?)] = [
            ("flowmeter_tor_accounting_interval_end_timestamp_seconds", "When tor's current accounting interval ends.",
             { $0.figures?.intervalEnd?.timeIntervalSince1970 }),
            ("flowmeter_tor_wire_to_tor_bytes_ratio", "Wire bytes FlowMeter counted for the relay ÷ tor's accounting bytes under its rule, over the part of tor's interval watched: the provider's overhead over Tor's count.",
             { $0.wireToTorRatio }),
            ("flowmeter_tor_predicted_soft_limit_timestamp_seconds", "While tor is awake: when it will reach its soft limit at the recent rate.",
             { $0.prediction?.softLimitAt?.timeIntervalSince1970 }),
            ("flowmeter_tor_predicted_hard_limit_timestamp_seconds", "While tor is awake or in soft hibernation: when it will reach AccountingMax at the recent rate.",
             { $0.prediction?.hardLimitAt?.timeIntervalSince1970 }),
            ("flowmeter_tor_predicted_wakeup_timestamp_seconds", "While tor hibernates: when it wakes.",
             { $0.prediction?.wakeAt?.timeIntervalSince1970 }),
        ]
        for (name, help, value) in doubles {
            let samples = known.compactMap { s in value(s).map { (s, $0) } }
            guard !samples.isEmpty else { continue }
            family(name, "gauge", help)
            for (s, v) in samples { sampleDouble("\(name){\(relay(s))}", v) }
        }
    }

    /// `,source="…"` for the used bytes of a quota in Tor's layer, where the
    /// figure may come from tor itself or from the packets.
    func sourceLabel(_ family: String, _ quotas: [QuotaStatus], _ name: String) -> String {
        guard let q = quotas.first(where: { $0.quota.name == name }), q.quota.scope.layer == .tor else { return "" }
        switch family {
        case "flowmeter_quota_used_bytes": return ",source=\"\(q.source)\""
        case "flowmeter_quota_period_start_timestamp_seconds":
            return q.intervalSource.map { ",interval_source=\"\($0.rawValue)\"" } ?? ""
        default: return ""
        }
    }
}

