import FlowMeterFormat
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
                rows.append([Format.iso8601(start), Format.iso8601(end), String(inPeriod.count),
                             String(UInt64(bytes.rounded())), cells.joined(separator: " ")])
            }
            start = end
        }
        return ReportSection(title: "Surges (bytes counted while a cell's rate was far above its baseline)",
                             columns: ["period_start", "period_end", "surges", "surge_bytes", "cells"], rows: rows)
    }

    /// A quota period's surges: how many, their bytes in the quota's scope,
    /// and the quota evaluated once more without them (nil without surges).
    struct Figures {
        var count: Int
        var bytes: UInt64
        var without: QuotaStatus?
    }

    static func figures(_ s: QuotaStatus, reader: AccountingReader, now: Date) throws -> Figures {
        let period = s.forecast.usage.interval
        let spans = try reader.surgeSpans(from: period.start, to: now).filter { span in
            s.quota.scope.includes(UsageBucket(start: span.start, durationSeconds: 0,
                                               cell: Cell(relay: span.relay, category: span.category, direction: span.direction, .zero)))
        }
        guard !spans.isEmpty else { return Figures(count: 0, bytes: 0, without: nil) }
        let bytes = UInt64(spans.reduce(0.0) { $0 + SurgeExcludedHistory.share(of: $1, from: period.start, to: now) }.rounded())
        let without = try QuotaStatus.evaluate(s.quota, source: SurgeExcludedHistory(base: reader, spans: spans), now: now)
        return Figures(count: spans.count, bytes: bytes, without: without)
    }

    /// For `forecast`'s text: the period's bytes during surges and, if there
    /// were any, the projection without them.
    static func forecastLines(_ s: QuotaStatus, reader: AccountingReader, now: Date) throws -> String {
        let f = try figures(s, reader: reader, now: now)
        guard let without = f.without else { return "  surges this period: none\n" }
        var out = "  surges this period: \(f.count), \(Format.bytes(f.bytes)) during them (wire bytes)\n"
        if let p = without.forecast.projection {
            out += "  without surges: \(Format.bytes(without.forecast.usage.used)) used, projected end \(Format.bytes(UInt64(max(0, p.endTotal)))), exhaustion \(p.exhaustion.map(Format.iso8601) ?? "not within this period")\n"
        } else {
            out += "  without surges: \(Format.bytes(without.forecast.usage.used)) used, no projection yet\n"
        }
        return out
    }
}

/// `forecast --json`'s quota object with the surge figures added as three
/// more keys (`surge_count`, `surge_bytes`, `projected_end_bytes_without_surges`),
/// so the contract's keys stay exactly as they are.
struct ForecastJSONWithSurges: Encodable {
    var base: QuotaForecastJSON
    var figures: SurgeReport.Figures

    enum Keys: String, CodingKey { case surge_count, surge_bytes, projected_end_bytes_without_surges }

    func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(figures.count, forKey: .surge_count)
        try c.encode(figures.bytes, forKey: .surge_bytes)
        // Without surges the projection is the plain one.
        let end = figures.without.map { $0.forecast.projection.map { Format.exactBytes($0.endTotal) } } ?? base.projected_end_bytes
        try c.encode(end, forKey: .projected_end_bytes_without_surges)
    }
}
