import FlowMeterFormat
import FlowMeterAccounting
import FlowMeterStore
import Foundation

/// `report --oneline` and `report --svg`: the same store, read for a glance
/// (one line per relay and per quota, like vnstat's `--oneline`) or for a
/// picture (the dashboard's charts in one file).
public enum ReportViews {
    /// Semicolon-separated lines, as vnstat's `--oneline`; field 1 names
    /// the line's layout (docs/quotas.md, "report --oneline"):
    ///
    /// `2;RELAY;DAY;DAY_IN;DAY_OUT;DAY_TOTAL;DAY_RATE;PERIOD_START;PERIOD_END;PERIOD_IN;PERIOD_OUT;PERIOD_TOTAL;PERIOD_RATE;PERIOD;COUNTS`
    /// per relay label, the host's total (`all`) first; then
    /// `1;NAME;PERIOD_START;PERIOD_END;USED;LIMIT;PERCENT;PROJECTED;EXHAUSTION`
    /// per quota, unchanged from the first `--oneline`; `-` where nothing is projected.
    public static func oneline(_ glance: Glance, statuses: [QuotaStatus], now: Date) -> String {
        var out = ""
        let day = Format.parseISO8601(glance.dayStart) ?? now
        let periodStart = Format.parseISO8601(glance.periodStart) ?? now
        for t in glance.traffic {
            let daySeconds = max(1, now.timeIntervalSince(day)), periodSeconds = max(1, now.timeIntervalSince(periodStart))
            let fields = ["2", t.relay, glance.dayName,
                          Format.bytes(t.todayInBytes), Format.bytes(t.todayOutBytes), Format.bytes(t.todayInBytes &+ t.todayOutBytes),
                          Format.bytes(Double(t.todayInBytes &+ t.todayOutBytes) / daySeconds, perSecond: true),
                          glance.periodStart, glance.periodEnd,
                          Format.bytes(t.periodInBytes), Format.bytes(t.periodOutBytes), Format.bytes(t.periodInBytes &+ t.periodOutBytes),
                          Format.bytes(Double(t.periodInBytes &+ t.periodOutBytes) / periodSeconds, perSecond: true),
                          glance.period, t.lowerBound ? "lower_bound" : "exact"]
            out += line(fields)
        }
        for s in statuses {
            let q = s.quota, u = s.forecast.usage, p = s.forecast.projection
            let fields = ["1", q.name, Format.iso8601(u.interval.start), Format.iso8601(u.interval.end),
                          Format.bytes(u.used, units: q.units), Format.bytes(u.limit, units: q.units),
                          String(format: "%.2f %%", u.fractionUsed * 100),
                          p.map { Format.bytes($0.endTotal, units: q.units) } ?? "-", p?.exhaustion.map(Format.iso8601) ?? "-"]
            out += line(fields)
        }
        return out
    }

    private static func line(_ fields: [String]) -> String {
        fields.map { $0.replacingOccurrences(of: ";", with: ",").replacingOccurrences(of: "\n", with: " ") }
            .joined(separator: ";") + "\n"
    }

    /// The dashboard's stored charts for [from, to): per relay stacked
    /// traffic (hourly up to 31 days, daily beyond, never finer than
    /// stored; the step in progress at its real rate up to `now`), then
    /// each quota's burn-down.
    public static func svg(reader: AccountingReader, from: Date, to: Date, by period: ReportPeriod,
                           quotas: [QuotaStatus], now: Date) throws -> String {
        let daily = to.timeIntervalSince(from) > 31 * 86_400 || period != .hour && period != .day
        let (series, spans) = try TrafficSeries.fromHistory(reader, from: from, to: to,
                                                            minimumStepSeconds: daily ? 86_400 : 3600, now: now)
        var charts = series.enumerated().map { i, s in
            TrafficChart(title: "\(s.relay): \(s.stepSeconds >= 86_400 ? "daily" : "hourly") rates", series: s,
                         spans: spans, id: "history-\(i)").svg()
        }
        for (i, status) in quotas.enumerated() {
            charts.append(try QuotaChart.build(status, source: reader, id: "quota-\(i)").svg())
        }
        return ChartDocument.svg(title: "FlowMeter \(Format.iso8601(from)) to \(Format.iso8601(to))", charts: charts)
    }

    /// The glance of a store at `now` (its data end): today in `zone`, the
    /// first host-wide quota's period (else the month), every quota's
    /// verdict and each relay's Tor state.
    public static func glance(reader: AccountingReader, statuses: [QuotaStatus], zone: TimeZone, now: Date) throws -> Glance {
        let day = Glance.day(containing: now, zone: zone)
        let period = Glance.period(quotas: statuses, now: now, zone: zone)
        let traffic = try Glance.traffic(from: reader, day: day, period: period.0, now: now)
        return Glance(now: now, zone: zone, day: day, period: period, traffic: traffic, quotas: statuses,
                      torControl: statuses.compactMap(\.torControl))
    }
}
