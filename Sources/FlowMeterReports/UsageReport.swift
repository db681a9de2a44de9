import FlowMeterCore
import FlowMeterAccounting
import FlowMeterStore
import Foundation

/// How a report groups time: hours, calendar days, ISO weeks (from Monday)
/// or months in the report's zone.
public enum ReportPeriod: String, Sendable, CaseIterable, Codable {
    case hour, day, week, month
}

/// One line of a usage report: a period and one (relay, category, direction).
public struct UsageReportRow: Sendable, Equatable, Codable {
    public var period: String
    public var periodStart: Date
    public var periodEnd: Date
    public var relay: String
    public var category: String
    public var direction: String
    public var packets: UInt64
    public var bytes: UInt64
    public var payloadBytes: UInt64
    public var torPayloadBytes: UInt64
    /// A gap (downtime, drops, clock jump) overlaps the period: true counts are at least these.
    public var lowerBound: Bool
}

/// Extra rows a caller adds under the usage (the quota rows, wired by the
/// lead from the quota engine): rendered after the usage in every format.
public struct ReportSection: Sendable, Equatable, Codable {
    public var title: String
    public var columns: [String]
    public var rows: [[String]]
    public init(title: String, columns: [String], rows: [[String]]) {
        self.title = title; self.columns = columns; self.rows = rows
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

    public static func build(from source: any UsageHistorySource, from: Date, to: Date,
                             by period: ReportPeriod, timeZone: TimeZone) throws -> UsageReport {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        calendar.firstWeekday = 2  // ISO 8601 weeks
        calendar.minimumDaysInFirstWeek = 4
        let component: Calendar.Component = [.hour: .hour, .day: .day, .week: .weekOfYear, .month: .month][period]!
        let gaps = try source.gaps(from: from, to: to)
        struct Key: Hashable { var start: Date; var relay: String; var category: String; var direction: String }
        var sums: [Key: UsageReportRow] = [:]
        var periodEnds: [Date: Date] = [:]
        for b in try source.buckets(from: from, to: to) {
            guard let interval = calendar.dateInterval(of: component, for: b.start) else { continue }
            periodEnds[interval.start] = interval.end
            let key = Key(start: interval.start, relay: b.relay, category: b.category, direction: b.direction)
            var row = sums[key] ?? UsageReportRow(
                period: label(interval.start, period, calendar), periodStart: interval.start, periodEnd: interval.end,
                relay: b.relay, category: b.category, direction: b.direction,
                packets: 0, bytes: 0, payloadBytes: 0, torPayloadBytes: 0,
                lowerBound: gaps.contains { $0.start < interval.end && $0.end > interval.start })
            row.packets &+= b.packets
            row.bytes &+= b.bytes
            row.payloadBytes &+= b.payloadBytes
            row.torPayloadBytes &+= b.torPayloadBytes
            sums[key] = row
        }
        let rows = sums.values.sorted {
            ($0.periodStart, $0.relay, $0.category, $0.direction) < ($1.periodStart, $1.relay, $1.category, $1.direction)
        }
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

    static let csvColumns = ["period", "period_start_utc", "period_end_utc", "relay", "category", "direction",
                             "packets", "bytes", "payload_bytes", "tor_payload_bytes", "lower_bound"]

    public static func iso(_ d: Date) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: d)
    }

    /// One header line, then one line per row; sections follow after a blank line each.
    public func renderCSV() -> String {
        var out = Self.csvColumns.joined(separator: ",") + "\n"
        for r in rows {
            out += [r.period, Self.iso(r.periodStart), Self.iso(r.periodEnd), Self.csvField(r.relay), Self.csvField(r.category),
                    r.direction, String(r.packets), String(r.bytes), String(r.payloadBytes), String(r.torPayloadBytes),
                    r.lowerBound ? "true" : "false"].joined(separator: ",") + "\n"
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
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        e.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try e.encode(self), as: UTF8.self) + "\n"
    }

    /// Human-readable bytes (binary units), exact values are in CSV and JSON.
    public static func humanBytes(_ b: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var v = Double(b), i = 0
        while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
        return i == 0 ? "\(b) B" : String(format: "%.2f %@", v, units[i])
    }

    public func renderTable() -> String {
        var lines: [[String]] = [["period", "relay", "category", "dir", "packets", "bytes", "tor payload"]]
        for r in rows {
            lines.append([r.period + (r.lowerBound ? " ≥" : ""), r.relay, r.category, r.direction,
                          String(r.packets), Self.humanBytes(r.bytes), Self.humanBytes(r.torPayloadBytes)])
        }
        for t in periodTotals {
            lines.append([t.period + (t.lowerBound ? " ≥" : ""), "all", "total", "", String(t.packets),
                          Self.humanBytes(t.bytes), Self.humanBytes(t.torPayloadBytes)])
        }
        var out = "Usage by \(period.rawValue) (\(timeZone)), \(Self.iso(from)) to \(Self.iso(to))\n"
        out += Self.table(lines)
        if rows.contains(where: \.lowerBound) {
            out += "≥ a gap (agent stopped, capture drops or a clock jump) overlaps this period: counts are a lower bound.\n"
        }
        if rows.isEmpty { out += "(no traffic stored in this range)\n" }
        for s in sections {
            out += "\n\(s.title)\n" + Self.table([s.columns] + s.rows)
        }
        return out
    }

    private static func table(_ lines: [[String]]) -> String {
        let n = lines.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: n)
        for l in lines { for (i, c) in l.enumerated() { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for (li, l) in lines.enumerated() {
            out += l.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return i >= 4 ? pad + c : c + pad  // numbers right-aligned
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces) + "\n"
            if li == 0 { out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
        }
        return out
    }
}
