import FlowMeterReports

extension ForecastText {
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
}
