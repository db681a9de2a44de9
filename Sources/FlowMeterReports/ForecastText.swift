import FlowMeterAccounting
import FlowMeterFormat
import Foundation

/// The human-readable forecast of one quota.
public enum ForecastText {
    public static func render(_ s: QuotaStatus) -> String {
        let j = s.json
        func bytes(_ v: UInt64?) -> String { v.map { Format.bytes($0, units: s.quota.units) } ?? "–" }
        let atLeast = j.used_is_lower_bound ? "at least " : ""
        var out = "quota \(j.name) (\(j.scope), rule \(j.rule)): \(atLeast)\(bytes(j.used_bytes)) of \(bytes(j.limit_bytes)) used, \(bytes(j.remaining_bytes)) left\n"
        out += "  period \(j.period_start) – \(j.period_end), as of \(j.now)"
            + (s.intervalSource.map { " (interval from \($0.phrase))" } ?? "") + "\n"
        out += ForecastText.provenance(j)
        if let end = j.projected_end_bytes {
            out += "  projected end of period: \(atLeast)\(bytes(end)) (\(Int(j.projected_range_percent ?? 0)) % range \(bytes(j.projected_end_bytes_low)) – \(bytes(j.projected_end_bytes_high))), method \(j.method)\n"
            out += "  stands on \(j.history.replacingOccurrences(of: "from ", with: "", options: .anchored)); learns from \(j.learns_from ?? "–")"
                + (j.level_change.map { " (level changed \($0); earlier data not used for the level)" } ?? "") + "\n"
            out += "  projected exhaustion: \(j.projected_exhaustion ?? "not within this period")\n"
            if let b = j.daily_budget_bytes { out += "  daily budget for the rest of the period: \(bytes(b))\n" }
            out += ForecastText.rateAdvice(j)
        } else {
            out += "  no projection yet (\(j.history); at least 30 minutes needed)\n"
        }
        if let c = j.tor_control { out += ForecastText.torControl(c) }
        if let t = j.tor {
            out += "  Tor: soft limit \(Format.bytes(t.soft_limit_bytes)), E \(t.expected_usage_bytes_per_minute) B/min (\(t.expected_usage_basis))\n"
            out += "       wake-up \(t.wakeup ?? "–"), soft hibernation \(t.predicted_soft_hibernation ?? "–"), hard \(t.predicted_hard_hibernation ?? "–")\n"
        }
        return out
    }

    /// Where the used amount comes from: an imported seed, or a lower bound.
    static func provenance(_ j: QuotaForecastJSON) -> String {
        if let i = j.imported {
            return "  includes \(i.read_bytes) B read and \(i.written_bytes) B written imported from \(i.source) for \(i.relay) (\(i.start) – \(i.end))\n"
        }
        if j.used_is_lower_bound {
            return "  lower bound: the period began before the first data (seed it with `flowmeter import`)\n"
        }
        return ""
    }

    /// The RelayBandwidthRate that would make the quota last, as torrc lines.
    static func rateAdvice(_ j: QuotaForecastJSON) -> String {
        guard let line = j.relay_bandwidth_rate_torrc else { return "" }
        let minimum = " (below Tor's minimum of 75 KBytes: tor refuses it; hibernation via AccountingMax is the way to stretch this quota)"
        var out = "  to make it last, per direction: \(line)\((j.relay_bandwidth_rate_below_tor_minimum ?? false) ? minimum : "")\n"
        if let shares = j.relay_bandwidth_rate_shares {
            out += "    this is the total for all relays on the host; by their traffic over the last 24 h:\n"
            for s in shares {
                out += "    \(s.relay) (\(Int((100 * s.fraction).rounded())) %): \(s.torrc)\(s.below_tor_minimum ? " (below Tor's minimum)" : "")\n"
            }
        }
        return out
    }

    static func torControl(_ c: TorControlJSON) -> String {
        var out = "  tor's own figures (control port): \(c.hibernating ?? "?"), \(c.accountingBytes.map { Format.bytes($0) } ?? "–") used under rule \(c.rule)\n"
        if let w = c.predictedWakeup { out += "       wakes \(w)\n" }
        if c.predictedSoftLimit != nil || c.predictedHardLimit != nil {
            out += "       at the projected rate: soft limit \(c.predictedSoftLimit ?? "–"), hard limit \(c.predictedHardLimit ?? "–")\n"
        }
        return out
    }
}
