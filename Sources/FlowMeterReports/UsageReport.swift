import FlowMeterFormat
import FlowMeterCore
import FlowMeterAccounting
import FlowMeterStore
import Foundation

/// How a report groups time: hours, calendar days, ISO weeks (from Monday)
/// or months in the report's zone.
public enum ReportPeriod: String, Sendable, CaseIterable, Codable {
    case hour, day, week, month
}

/// One line of a usage report: a period and one (relay, category, direction)
/// cell; the cell's labels and counts read through and its JSON is flat.
@dynamicMemberLookup
public struct UsageReportRow: Sendable, Equatable, Codable {
    public var period: String
    public var periodStart: Date
    public var periodEnd: Date
    public var cell: Cell
    /// A gap (downtime, drops, clock jump) overlaps the period: true counts are at least these.
    public var lowerBound: Bool

    public init(period: String, periodStart: Date, periodEnd: Date, cell: Cell, lowerBound: Bool) {
        self.period = period; self.periodStart = periodStart; self.periodEnd = periodEnd
        self.cell = cell; self.lowerBound = lowerBound
    }

    public subscript<T>(dynamicMember path: WritableKeyPath<CellLabels, T>) -> T { cell.labels[keyPath: path] }
    public subscript<T>(dynamicMember path: WritableKeyPath<CellCounts, T>) -> T { cell.counts[keyPath: path] }

    enum CodingKeys: String, CodingKey { case period, periodStart, periodEnd, lowerBound }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        period = try c.decode(String.self, forKey: .period)
        periodStart = try c.decode(Date.self, forKey: .periodStart)
        periodEnd = try c.decode(Date.self, forKey: .periodEnd)
        lowerBound = try c.decode(Bool.self, forKey: .lowerBound)
        cell = try Cell(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(period, forKey: .period)
        try c.encode(periodStart, forKey: .periodStart)
        try c.encode(periodEnd, forKey: .periodEnd)
        try c.encode(lowerBound, forKey: .lowerBound)
        try cell.encode(to: encoder)
    }
}

/// Extra rows a caller adds under the usage (the quota rows, from the quota
/// engine): rendered after the usage in every format.
public struct ReportSection: Sendable, Equatable, Codable {
    public var title: String
    public var columns: [String]
    /// Exact values, for `--json` and `--csv` (bytes as whole numbers).
    public var rows: [[String]]
    /// The same for a person (bytes in units), for the table; nil: as above.
    public var textColumns: [String]? = nil
    public var textRows: [[String]]? = nil
    /// The first column of numbers in the table (right-aligned from there).
    public var textNumbersFrom = 4

    enum CodingKeys: String, CodingKey { case title, columns, rows }

    public init(title: String, columns: [String], rows: [[String]], textColumns: [String]? = nil, textRows: [[String]]? = nil) {
        self.title = title; self.columns = columns; self.rows = rows; self.textColumns = textColumns; self.textRows = textRows
    }
}

/// Usage per period and per (relay, category, direction), built from any
/// `UsageHistorySource`. Periods are calendar days or months in `timeZone`,
/// derived from the stored UTC buckets (a bucket belongs to the period that
/// holds its start; with hour buckets that is exact in every zone whose
/// offset is whole hours).
public struct UsageReport: Sendable, Equatable, Codable {
    public var period: ReportPeriod
    public var timeZone: String
    public var from: Date
    public var to: Date
    public var rows: [UsageReportRow]
    public var sections: [ReportSection] = []
    /// The three answers as of the store's data end (`Glance`): the table
    /// opens with them, `--json` carries them; absent in `--csv`.
    public var glance: Glance? = nil

    public static func build(from source: any UsageHistorySource, from: Date, to: Date,
                             by period: ReportPeriod, timeZone: TimeZone) throws -> UsageReport {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        calendar.firstWeekday = 2  // ISO 8601 weeks
        calendar.minimumDaysInFirstWeek = 4
        let component: Calendar.Component = [.hour: .hour, .day: .day, .week: .weekOfYear, .month: .month][period]!
        let gaps = try source.gaps(from: from, to: to)
        struct Key: Hashable { var start: Date; var labels: CellLabels }
        // Buckets share a few starts and periods (thousands of relays in one
        // hour): the calendar, the label and the gap scan run once per start
        // and per period, not once per bucket or per row.
        struct Period { var interval: DateInterval; var label: String; var lowerBound: Bool }
        var periodOfStart: [Date: Period?] = [:]
        func periodHolding(_ start: Date) -> Period? {
            if let known = periodOfStart[start] { return known }
            let found = calendar.dateInterval(of: component, for: start).map { interval in
                Period(interval: interval, label: label(interval.start, period, calendar),
                       lowerBound: gaps.contains { $0.start < interval.end && $0.end > interval.start })
            }
            periodOfStart[start] = found
            return found
        }
        var sums: [Key: UsageReportRow] = [:]
        for b in try source.buckets(from: from, to: to) {
            guard let p = periodHolding(b.start) else { continue }
            let key = Key(start: p.interval.start, labels: b.cell.labels)
            var row = sums[key] ?? UsageReportRow(
                period: p.label, periodStart: p.interval.start, periodEnd: p.interval.end,
                cell: Cell(b.cell.labels, .zero), lowerBound: p.lowerBound)
            row.cell.counts += b.cell.counts
            sums[key] = row
        }
        // The sort key built once per row: labels are computed strings.
        let rows = sums.values.map { r in ((r.periodStart, r.relay, r.category.label, r.direction.label), r) }
            .sorted { $0.0 < $1.0 }.map(\.1)
        return UsageReport(period: period, timeZone: timeZone.identifier, from: from, to: to, rows: rows)
    }

    private static func label(_ d: Date, _ p: ReportPeriod, _ c: Calendar) -> String {
        let x = c.dateComponents([.year, .month, .day, .hour, .yearForWeekOfYear, .weekOfYear], from: d)
        let ym = String(format: "%04d-%02d", x.year ?? 0, x.month ?? 0)
        switch p {
        case .hour: return ym + String(format: "-%02dT%02d", x.day ?? 0, x.hour ?? 0)
        case .day: return ym + String(format: "-%02d", x.day ?? 0)
        case .week: return String(format: "%04d-W%02d", x.yearForWeekOfYear ?? 0, x.weekOfYear ?? 0)
        case .month: return ym
        }
    }

    /// Totals per period over every label.
    public var periodTotals: [(period: String, packets: UInt64, bytes: UInt64, torPayloadBytes: UInt64, lowerBound: Bool)] {
        var order: [String] = []
        var t: [String: (UInt64, UInt64, UInt64, Bool)] = [:]
        for r in rows {
            if t[r.period] == nil { order.append(r.period); t[r.period] = (0, 0, 0, r.lowerBound) }
            t[r.period]!.0 &+= r.packets; t[r.period]!.1 &+= r.bytes; t[r.period]!.2 &+= r.torPayloadBytes
        }
        return order.map { (period: $0, packets: t[$0]!.0, bytes: t[$0]!.1, torPayloadBytes: t[$0]!.2, lowerBound: t[$0]!.3) }
    }

    // MARK: Rendering

    static let csvColumns = ["period", "period_start_utc", "period_end_utc", "relay", "category", "direction"]
        + CellField.all.map(\.name) + ["lower_bound"]

    /// One header line, then one line per row; sections follow after a blank line each.
    public func renderCSV() -> String {
        var out = Self.csvColumns.joined(separator: ",") + "\n"
        for r in rows {
            out += ([r.period, Format.iso8601(r.periodStart), Format.iso8601(r.periodEnd), Self.csvField(r.relay), Self.csvField(r.category.label),
                    r.direction.label] + CellField.all.map { String(r.cell.counts[$0]) } + [r.lowerBound ? "true" : "false"]).joined(separator: ",") + "\n"
        }
        for s in sections {
            out += "\n# \(s.title)\n" + s.columns.map(Self.csvField).joined(separator: ",") + "\n"
            for row in s.rows { out += row.map(Self.csvField).joined(separator: ",") + "\n" }
        }
        return out
    }

    private static func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    public func renderJSON() throws -> String {
        try JSONStyle.string(self) + "\n"
    }

    public func renderTable() -> String {
        var lines: [[String]] = [["period", "relay", "category", "dir", "packets", "bytes", "tor payload"]]
        // Tor payload means something only for relay traffic (docs/classification.md).
        for r in rows {
            lines.append([r.period + (r.lowerBound ? " ≥" : ""), r.relay, r.category.label, r.direction.label,
                          String(r.packets), Format.bytes(r.bytes), r.category.isRelayTraffic ? Format.bytes(r.torPayloadBytes) : ""])
        }
        for t in periodTotals {
            lines.append([t.period + (t.lowerBound ? " ≥" : ""), "all", "total", "", String(t.packets),
                          Format.bytes(t.bytes), Format.bytes(t.torPayloadBytes)])
        }
        var out = glance.map { $0.textLines().joined(separator: "\n") + "\n\n" } ?? ""
        out += "Usage by \(period.rawValue) (\(timeZone)), \(Format.iso8601(from)) to \(Format.iso8601(to))\n"
        out += TextTable(header: lines[0], rows: Array(lines.dropFirst()), rightAlignedFrom: 4, trimsTrailingSpaces: true).render()
        if rows.contains(where: \.lowerBound) {
            out += "≥ a gap (agent stopped, capture drops or a clock jump) overlaps this period: counts are a lower bound.\n"
        }
        if rows.isEmpty { out += "(no traffic stored in this range)\n" }
        if !rows.isEmpty {
            out += "tor payload: the transport payload Tor's accounting counts, for relay traffic only (or_inbound, or_outbound, dir, exit).\n"
        }
        for s in sections {
            out += "\n\(s.title)\n" + TextTable(header: s.textColumns ?? s.columns, rows: s.textRows ?? s.rows, rightAlignedFrom: s.textNumbersFrom, trimsTrailingSpaces: true).render()
        }
        return out
    }
}
