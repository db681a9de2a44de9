import FlowMeterAccounting
import FlowMeterCore
import FlowMeterReports
import FlowMeterStore
import Foundation

/// What `report` and `forecast` say about surges (docs/agent.md, "Surges"):
/// how many bytes of a period came while a cell surged, and the forecast
/// once more without those bytes.
enum SurgeReport {
    /// Per report period with surges: their count and bytes; nil without any.
    static func section(reader: AccountingReader, from: Date, to: Date, by: ReportPeriod, zone: TimeZone) throws -> ReportSection? {
        let spans = try reader.surgeSpans(from: from, to: to)
        guard !spans.isEmpty else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let unit: Calendar.Component = by == .day ? .day : .month
        var rows: [[String]] = []
        var start = calendar.dateInterval(of: unit, for: from)?.start ?? from
        while start < to {
            let end = calendar.date(byAdding: unit, value: 1, to: start) ?? to
            let inPeriod = spans.filter { $0.start < end && ($0.end ?? $0.start) >= start }
            if !inPeriod.isEmpty {
                let bytes = inPeriod.reduce(0.0) { $0 + SurgeExcludedHistory.share(of: $1, from: max(start, from), to: min(end, to)) }
                let cells = Set(inPeriod.map { "\($0.relay)/\($0.category.label)/\($0.direction.label)" }).sorted()
                rows.append([UsageReport.iso(start), UsageReport.iso(end), String(inPeriod.count),
                             String(UInt64(bytes.rounded())), cells.joined(separator: " ")])
            }
            start = end
        }
        return ReportSection(title: "Surges (bytes counted while a cell's rate was far above its baseline)",
                             columns: ["period_start", "period_end", "surges", "surge_bytes", "cells"], rows: rows)
    }

    /// For `forecast`: the quota period's bytes during surges (in the quota's
    /// scope) and, if there were any, the projection without them.
    static func forecastLines(_ s: QuotaStatus, reader: AccountingReader, now: Date) throws -> String {
        let period = s.forecast.usage.interval
        let spans = try reader.surgeSpans(from: period.start, to: now).filter { span in
            s.quota.scope.includes(UsageBucket(start: span.start, durationSeconds: 0, relay: span.relay, category: span.category.label,
                                               direction: span.direction.label, packets: 0, bytes: 0, payloadBytes: 0, torPayloadBytes: 0))
        }
        guard !spans.isEmpty else { return "  surges this period: none\n" }
        let bytes = UInt64(spans.reduce(0.0) { $0 + SurgeExcludedHistory.share(of: $1, from: period.start, to: now) }.rounded())
        var out = "  surges this period: \(spans.count), \(ReplayReport.humanBytes(bytes)) during them (wire bytes)\n"
        let without = try QuotaStatus.evaluate(s.quota, source: SurgeExcludedHistory(base: reader, spans: spans), now: now)
        if let p = without.forecast.projection {
            out += "  without surges: \(ReplayReport.humanBytes(without.forecast.usage.used)) used, projected end \(ReplayReport.humanBytes(UInt64(max(0, p.endTotal)))), exhaustion \(p.exhaustion.map(UsageReport.iso) ?? "not within this period")\n"
        } else {
            out += "  without surges: \(ReplayReport.humanBytes(without.forecast.usage.used)) used, no projection yet\n"
        }
        return out
    }
}
