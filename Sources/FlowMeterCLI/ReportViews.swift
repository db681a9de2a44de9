import FlowMeterFormat
import ArgumentParser
import FlowMeterAccounting
import FlowMeterReports
import FlowMeterStore
import Foundation

/// `report --oneline` and `report --svg`: the same store, read for a glance
/// (one line per quota, like vnstat's `--oneline`) or for a picture (the
/// dashboard's charts in one file).
enum ReportViews {
    /// `1;NAME;PERIOD_START;PERIOD_END;USED;LIMIT;PERCENT;PROJECTED;EXHAUSTION` per quota,
    /// semicolon-separated as vnstat's; `-` where nothing is projected.
    static func oneline(_ statuses: [QuotaStatus]) -> String {
        var out = ""
        for s in statuses {
            let q = s.quota, u = s.forecast.usage, p = s.forecast.projection
            let fields = ["1", q.name, Format.iso8601(u.interval.start), Format.iso8601(u.interval.end),
                          SVG.bytes(Double(u.used)), SVG.bytes(Double(u.limit)), String(format: "%.2f %%", u.fractionUsed * 100),
                          p.map { SVG.bytes($0.endTotal) } ?? "-", p?.exhaustion.map(Format.iso8601) ?? "-"]
            out += fields.map { $0.replacingOccurrences(of: ";", with: ",") }.joined(separator: ";") + "\n"
        }
        return out
    }

    /// The last instant the store has data for (the agent's last
    /// observation, else the end of the last bucket), at most the current time.
    static func storeNow(_ reader: AccountingReader) -> Date {
        let current = Date()
        if let text = try? reader.state(named: AccountingStore.lastObservationKey), let ns = Int64(text) {
            return min(current, Date(timeIntervalSince1970: Double(ns) / 1e9))
        }
        let ends = ((try? reader.resolutions()) ?? []).map { $0.lastStart.addingTimeInterval(Double($0.resolution.rawValue)) }
        return min(current, ends.max() ?? current)
    }

    /// The dashboard's stored charts for [from, to): per relay stacked
    /// traffic (hourly up to 31 days, daily beyond, never finer than stored),
    /// then each quota's burn-down.
    static func svg(reader: AccountingReader, from: Date, to: Date, by period: ReportPeriod,
                    quotas: [QuotaStatus]) throws -> String {
        let daily = to.timeIntervalSince(from) > 31 * 86_400 || period != .hour && period != .day
        let (series, spans) = try TrafficSeries.fromHistory(reader, from: from, to: to,
                                                            minimumStepSeconds: daily ? 86_400 : 3600)
        var charts = series.enumerated().map { i, s in
            TrafficChart(title: "\(s.relay): \(s.stepSeconds >= 86_400 ? "daily" : "hourly") rates", series: s,
                         spans: spans, id: "history-\(i)").svg()
        }
        for (i, status) in quotas.enumerated() {
            charts.append(try QuotaChart.build(status, source: reader, id: "quota-\(i)").svg())
        }
        return ChartDocument.svg(title: "FlowMeter \(Format.iso8601(from)) to \(Format.iso8601(to))", charts: charts)
    }
}
