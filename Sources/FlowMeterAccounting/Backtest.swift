import FlowMeterCore
import FlowMeterConfig
import Foundation

/// A history of per-interval counts, the file format `flowmeter backtest
/// --history` reads: one row per interval, `start_utc,seconds,bytes_in,bytes_out`
/// (comma or tab separated; `#` comments and a header line are skipped;
/// start as ISO-8601 UTC or Unix seconds). Time not covered by a row is a
/// capture gap, never zero traffic.
public struct HistoryFile: UsageHistorySource, Sendable {
    public struct Row: Sendable, Equatable {
        public var start: Date
        public var seconds: Int
        public var bytesIn: UInt64
        public var bytesOut: UInt64
        public init(start: Date, seconds: Int, bytesIn: UInt64, bytesOut: UInt64) {
            self.start = start; self.seconds = seconds; self.bytesIn = bytesIn; self.bytesOut = bytesOut
        }
    }
    /// In start order.
    public private(set) var rows: [Row]
    /// Relay label the rows are filed under (`provider` and `wire:`/`payload:` scopes match it).
    public static let relayLabel = "history"

    public init(rows: [Row]) { self.rows = rows.sorted { $0.start < $1.start } }

    public init(text: String) throws {
        var rows: [Row] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("start") { continue }
            let f = line.split(whereSeparator: { $0 == "," || $0 == "\t" }).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count == 4, let secs = Int(f[1]), secs > 0, let i = UInt64(f[2]), let o = UInt64(f[3]),
                  let start = Double(f[0]).map({ Date(timeIntervalSince1970: $0) }) ?? TorTime.parse(f[0]) else {
                throw HistoryFileError("history line \(n + 1): expected start_utc,seconds,bytes_in,bytes_out, got '\(line)'")
            }
            rows.append(Row(start: start, seconds: secs, bytesIn: i, bytesOut: o))
        }
        self.init(rows: rows)
    }

    public func render() -> String {
        var out = "start_utc,seconds,bytes_in,bytes_out\n"
        for r in rows {
            out += "\(TorTime.format(r.start).replacingOccurrences(of: " ", with: "T"))Z,\(r.seconds),\(r.bytesIn),\(r.bytesOut)\n"
        }
        return out
    }

    public var span: DateInterval? {
        guard let first = rows.first else { return nil }
        let end = rows.map { $0.start.addingTimeInterval(TimeInterval($0.seconds)) }.max()!
        return DateInterval(start: first.start, end: end)
    }

    public func buckets(from: Date, to: Date) throws -> [UsageBucket] {
        var out: [UsageBucket] = []
        for r in rows where r.start >= from && r.start < to {
            for (dir, n) in [(Direction.inbound, r.bytesIn), (Direction.outbound, r.bytesOut)] {
                let counts = CellCounts(packets: 0, bytes: n, payloadBytes: n, torPayloadBytes: n)
                out.append(UsageBucket(start: r.start, durationSeconds: r.seconds,
                                       cell: Cell(relay: HistoryFile.relayLabel, category: .other, direction: dir, counts)))
            }
        }
        return out
    }

    /// Uncovered time between the first row and the last row's end.
    public func gaps(from: Date, to: Date) throws -> [DateInterval] {
        guard let span else { return [] }
        var out: [DateInterval] = []
        var cursor = max(from, span.start)
        for r in rows {
            let rEnd = r.start.addingTimeInterval(TimeInterval(r.seconds))
            if r.start > cursor { let e = min(r.start, to); if e > cursor { out.append(DateInterval(start: cursor, end: e)) } }
            cursor = max(cursor, rEnd)
            if cursor >= to { break }
        }
        return out
    }
}

public struct HistoryFileError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// End-of-period projections replayed over a history, scored against what
/// actually happened.
public struct BacktestResult: Sendable {
    public struct Point: Sendable {
        public var at: Date
        public var flowMeter: Double
        public var vnstat: Double
        /// FlowMeter's printed range (`QuotaForecaster.rangeCoverage`).
        public var low: Double
        public var high: Double
        public init(at: Date, flowMeter: Double, vnstat: Double, low: Double, high: Double) {
            self.at = at; self.flowMeter = flowMeter; self.vnstat = vnstat; self.low = low; self.high = high
        }
    }
    public struct PeriodResult: Sendable {
        public var interval: DateInterval
        public var actual: Double
        public var points: [Point]
    }
    public var periods: [PeriodResult]
    public var method: String

    public init(periods: [PeriodResult], method: String) { self.periods = periods; self.method = method }

    /// Mean absolute percentage error over every point of every period.
    public var flowMeterMAPE: Double { mape(\.flowMeter) }
    public var vnstatMAPE: Double { mape(\.vnstat) }
    public var pointCount: Int { periods.reduce(0) { $0 + $1.points.count } }
    /// Points where FlowMeter projected (all but a young store's first 30 minutes).
    public var projectedPointCount: Int { periods.reduce(0) { $0 + $1.points.count(where: { $0.flowMeter.isFinite }) } }

    /// Share of points (0…1) whose range held the actual end-of-period total.
    /// Points where FlowMeter made no projection (a young store's first 30
    /// minutes) carry NaN and are left out of its scores, not of vnstat's.
    public var coverage: Double {
        let (held, n) = periods.reduce((0, 0)) { acc, p in
            (acc.0 + p.points.count(where: { $0.low <= p.actual && p.actual <= $0.high }),
             acc.1 + p.points.count(where: { $0.low.isFinite }))
        }
        return n == 0 ? 0 : Double(held) / Double(n)
    }
    /// Mean width of the range relative to the actual total, in percent.
    public var meanRangeWidth: Double {
        var sum = 0.0, n = 0
        for p in periods where p.actual > 0 {
            for pt in p.points where pt.low.isFinite { sum += (pt.high - pt.low) / p.actual; n += 1 }
        }
        return n == 0 ? 0 : 100 * sum / Double(n)
    }

    func mape(_ k: KeyPath<Point, Double>) -> Double {
        var sum = 0.0, n = 0
        for p in periods where p.actual > 0 {
            for pt in p.points where pt[keyPath: k].isFinite { sum += abs(pt[keyPath: k] - p.actual) / p.actual; n += 1 }
        }
        return n == 0 ? .nan : 100 * sum / Double(n)
    }
}

public enum Backtest {
    /// For every complete period of `quota` inside [from, to), projects the
    /// period's end total at each day boundary after its start (FlowMeter's
    /// method with all history before that instant; vnstat's formula on the
    /// period so far) and compares with the actual total.
    /// `everyDays` > 1 projects only at every n-th day boundary (quicker, for tests).
    public static func run(quota: Quota, source: UsageHistorySource, from: Date, to: Date, everyDays: Int = 1) throws -> BacktestResult {
        let buckets = try source.buckets(from: from, to: to)
        let gaps = try source.gaps(from: from, to: to)
        let traffic = HourlyTraffic(buckets: buckets, gaps: gaps, scope: quota.scope, from: from, to: to, zone: quota.timeZone)
        let dataStart = buckets.map(\.start).min() ?? to
        var periods: [BacktestResult.PeriodResult] = []
        var iv = quota.interval(containing: max(from, dataStart))
        if iv.start < dataStart { iv = quota.period.interval(after: iv, in: quota.timeZone) }
        while iv.end <= to && iv.duration > 0 {
            let inPeriod = buckets.filter { $0.start >= iv.start && $0.start < iv.end }
            let actual = QuotaUsage.measure(quota, buckets: inPeriod, now: iv.end.addingTimeInterval(-0.001))
            var points: [BacktestResult.Point] = []
            var k = 1.0
            while true {
                let now = iv.start.addingTimeInterval(k * 86_400)
                if now >= iv.end { break }
                k += Double(max(1, everyDays))
                let usage = QuotaUsage.measure(quota, buckets: inPeriod, now: now)
                let f = QuotaForecaster.forecast(quota, traffic: traffic, usage: usage, now: now)
                guard let p = f.projection else { continue }
                let elapsed = Int(now.timeIntervalSince(iv.start)), length = Int(iv.duration)
                let v = quota.rule.bytes(
                    read: Double(QuotaForecaster.vnstatEstimate(bytes: usage.read, elapsedSeconds: elapsed, periodSeconds: length)),
                    written: Double(QuotaForecaster.vnstatEstimate(bytes: usage.written, elapsedSeconds: elapsed, periodSeconds: length)))
                points.append(.init(at: now, flowMeter: p.endTotal, vnstat: v, low: p.low, high: p.high))
            }
            periods.append(.init(interval: iv, actual: Double(quota.rule.bytes(read: actual.read, written: actual.written)), points: points))
            iv = quota.period.interval(after: iv, in: quota.timeZone)
        }
        return BacktestResult(periods: periods, method: QuotaForecaster.methodName)
    }
}
