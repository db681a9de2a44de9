import FlowMeterFormat
import FlowMeterReports
import Foundation

/// The text of `fleet report` and `fleet forecast`: a pool's renderer lives
/// with the pool (Reports, where the other renderers are, cannot see Fleet).
public enum PoolText {
    static func header(_ p: PoolStatus) -> String {
        let j = p.json.forecast
        let pct = j.limit_bytes == 0 ? 0 : 100 * Double(j.used_bytes) / Double(j.limit_bytes)
        let atLeast = j.used_is_lower_bound ? "at least " : ""
        var out = "pool \(p.pool.name) (\(j.scope), rule \(j.rule), \(p.pool.quota.period) \(p.pool.quota.timeZone.identifier)): "
        out += "\(atLeast)\(Format.bytes(j.used_bytes)) of \(Format.bytes(j.limit_bytes)) used (\(String(format: "%.1f", pct)) %), \(Format.bytes(j.remaining_bytes)) left\n"
        out += "  hosts \(p.pool.hosts.joined(separator: ", ")); period \(j.period_start) – \(j.period_end), as of \(j.now)\n"
        out += "  newest data: \(p.newestData.map(Format.iso8601) ?? "none from some host")\n"
        for n in p.history.notes { out += "  lower bound: \(n)\n" }
        if !p.history.missingHosts.isEmpty { out += "  no series from: \(p.history.missingHosts.joined(separator: ", "))\n" }
        return out
    }

    public static func report(_ p: PoolStatus) -> String {
        let rows = p.members.map { m in
            [m.host, Format.bytes(m.read), Format.bytes(m.written), Format.bytes(m.counted),
             String(format: "%.1f %%", 100 * m.share), m.newestSample.map(Format.iso8601) ?? "–"]
        }
        let total = p.status.forecast.usage
        let table = TextTable(header: ["host", "in", "out", "counted", "share", "newest data"], rows: rows,
                              footer: [["total", Format.bytes(total.read), Format.bytes(total.written), Format.bytes(total.used), "100.0 %", ""]],
                              rightAlignedFrom: 1, trimsTrailingSpaces: true)
        return header(p) + table.render().split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
    }

    public static func forecast(_ p: PoolStatus) -> String {
        var shown = p.status
        shown.quota = p.pool.quota
        let advice = shown.forecast.rateAdvice
        // A pool's rate is the total over hosts, not one relay's torrc line.
        shown.forecast.rateAdvice = nil
        shown.forecast.relayBandwidthRateToLast = nil
        var out = "pool \(p.pool.name) over hosts \(p.pool.hosts.joined(separator: ", "))\n" + ForecastText.render(shown)
        if let a = advice {
            out += "  to make it last: at most \(Format.bytes(a.bytesPerSecond))/s per direction for the whole pool; by the hosts' traffic over the last 24 h:\n"
            for s in a.shares {
                out += "    \(s.relay) (\(Int((100 * s.fraction).rounded())) %): \(Format.bytes(s.bytesPerSecond))/s for its relays together\n"
            }
        }
        return out
    }
}
