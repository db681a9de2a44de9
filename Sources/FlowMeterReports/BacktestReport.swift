import FlowMeterAccounting
import FlowMeterFormat
import Foundation

/// `flowmeter backtest`: FlowMeter's forecaster against vnstat's formula on
/// whole histories, as a table or JSON (docs/quotas.md, "Backtest").
public enum BacktestReport {
    /// The table a person reads: one row per history, and `all` when there are several.
    public static func text(_ results: [(String, BacktestResult)], quota q: Quota) -> String {
        let n = Int((QuotaForecaster.rangeCoverage * 100).rounded())
        var out = "quota period \(q.period) (\(q.timeZone.identifier)), rule \(q.rule.rawValue), scope \(q.scope)\n"
        out += "FlowMeter: \(QuotaForecaster.methodName)\n"
        out += "vnstat:    floor(bytes / elapsed s) × period length, per direction\n\n"
        out += "range:     the \(n) % interval of the end-of-period total\n\n"
        func row(_ name: String, _ r: BacktestResult) -> [String] {
            [name, "\(r.periods.count)", "\(r.pointCount)", String(format: "%.2f %%", r.flowMeterMAPE), String(format: "%.2f %%", r.vnstatMAPE),
             r.vnstatMAPE > 0 ? String(format: "%.2f", r.flowMeterMAPE / r.vnstatMAPE) : "—",
             String(format: "%.1f %%", 100 * r.coverage), String(format: "%.1f %%", r.meanRangeWidth)]
        }
        let all = BacktestResult(periods: results.flatMap(\.1.periods), method: QuotaForecaster.methodName)
        let table = TextTable(header: ["history", "periods", "points", "FlowMeter MAPE", "vnstat MAPE", "ratio", "coverage (\(n) %)", "width"],
                              rows: results.map { row($0.0, $0.1) }, footer: results.count > 1 ? [row("all", all)] : [],
                              rightAlignedFrom: 1)
        return out + table.render()
    }

    /// One object per history, its periods nested.
    public static func json(_ results: [(String, BacktestResult)], quota: Quota) throws -> String {
        try JSONStyle.string(results.map { BacktestJSON(history: $0.0, quota: quota, result: $0.1) })
    }
}

struct BacktestJSON: Encodable {
    struct Period: Encodable {
        var start: String, end: String, actual_bytes: Double, points: Int
        var flowmeter_mape_percent: Double, vnstat_mape_percent: Double
        var range_coverage_percent: Double, range_mean_width_percent: Double
    }
    var history: String
    var period: String
    var rule: String
    var method: String
    var points: Int
    var flowmeter_mape_percent: Double
    var vnstat_mape_percent: Double
    /// The interval the range is meant to be (e.g. 80), and what it held.
    var range_interval_percent: Double
    var range_coverage_percent: Double
    var range_mean_width_percent: Double
    var periods: [Period]

    init(history: String, quota: Quota, result r: BacktestResult) {
        self.history = history; period = quota.period.description; rule = quota.rule.rawValue; method = r.method
        points = r.pointCount; flowmeter_mape_percent = r.flowMeterMAPE; vnstat_mape_percent = r.vnstatMAPE
        range_interval_percent = 100 * QuotaForecaster.rangeCoverage
        range_coverage_percent = 100 * r.coverage; range_mean_width_percent = r.meanRangeWidth
        periods = r.periods.map { p in
            let one = BacktestResult(periods: [p], method: r.method)
            return Period(start: Format.iso8601(p.interval.start), end: Format.iso8601(p.interval.end), actual_bytes: p.actual, points: p.points.count,
                          flowmeter_mape_percent: one.flowMeterMAPE, vnstat_mape_percent: one.vnstatMAPE,
                          range_coverage_percent: 100 * one.coverage, range_mean_width_percent: one.meanRangeWidth)
        }
    }
}

/// `backtest --ages`: per history (shape) and age, FlowMeter's and vnstat's
/// MAPE and the range's coverage, without and with an import.
public enum YoungStoreReport {
    struct Scores: Encodable {
        var flowmeter_mape_percent: Double?
        var vnstat_mape_percent: Double?
        var coverage_percent: Double?
        /// Projection instants, and those where FlowMeter projected (none
        /// before 30 minutes of data without an import).
        var points: Int
        var flowmeter_points: Int
        enum CodingKeys: CodingKey { case flowmeter_mape_percent, vnstat_mape_percent, coverage_percent, points, flowmeter_points }
        /// Every key, an absent score as null (the contract names the keys).
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(flowmeter_mape_percent, forKey: .flowmeter_mape_percent)
            try c.encode(vnstat_mape_percent, forKey: .vnstat_mape_percent)
            try c.encode(coverage_percent, forKey: .coverage_percent)
            try c.encode(points, forKey: .points)
            try c.encode(flowmeter_points, forKey: .flowmeter_points)
        }
        init(_ r: BacktestResult) {
            func finite(_ v: Double) -> Double? { v.isFinite ? (v * 100).rounded() / 100 : nil }
            flowmeter_mape_percent = finite(r.flowMeterMAPE); vnstat_mape_percent = finite(r.vnstatMAPE)
            coverage_percent = r.projectedPointCount > 0 ? (1000 * r.coverage).rounded() / 10 : nil
            points = r.pointCount; flowmeter_points = r.projectedPointCount
        }
    }
    /// One object per shape and age (the interface contract), the scores with an import nested.
    struct Row: Encodable {
        var shape: String
        var age: String
        var age_seconds: Double
        var flowmeter_mape_percent: Double?
        var vnstat_mape_percent: Double?
        var coverage_percent: Double?
        var points: Int
        var flowmeter_points: Int
        var with_import: Scores
        enum CodingKeys: CodingKey {
            case shape, age, age_seconds, flowmeter_mape_percent, vnstat_mape_percent, coverage_percent, points, flowmeter_points, with_import
        }
        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(shape, forKey: .shape); try c.encode(age, forKey: .age); try c.encode(age_seconds, forKey: .age_seconds)
            try c.encode(flowmeter_mape_percent, forKey: .flowmeter_mape_percent)
            try c.encode(vnstat_mape_percent, forKey: .vnstat_mape_percent)
            try c.encode(coverage_percent, forKey: .coverage_percent)
            try c.encode(points, forKey: .points); try c.encode(flowmeter_points, forKey: .flowmeter_points)
            try c.encode(with_import, forKey: .with_import)
        }
    }

    /// The table, or with `json` one object per shape and age, newline-terminated.
    public static func render(runs: [(String, any UsageHistorySource, DateInterval)], quota: Quota, ages: [TimeInterval],
                              ageLabels: [String], json: Bool) throws -> String {
        var rows: [Row] = []
        for (name, source, span) in runs {
            let results = try YoungStoreBacktest.run(quota: quota, source: source, from: span.start, to: span.end, ages: ages)
            for (i, r) in results.enumerated() {
                let plain = Scores(r.withoutImport)
                rows.append(Row(shape: name, age: ageLabels[i].trimmingCharacters(in: .whitespaces), age_seconds: r.age,
                                flowmeter_mape_percent: plain.flowmeter_mape_percent, vnstat_mape_percent: plain.vnstat_mape_percent,
                                coverage_percent: plain.coverage_percent, points: plain.points, flowmeter_points: plain.flowmeter_points,
                                with_import: Scores(r.withImport)))
            }
        }
        if json { return try JSONStyle.string(rows) + "\n" }
        var out = "young stores: FlowMeter installed AGE before each projection; vnstat's formula with the same history\n"
        out += "(its database created at the install; with an import, holding the whole period so far)\n\n"
        func pct(_ v: Double?) -> String { v.map { String(format: "%.2f %%", $0) } ?? "no projection" }
        func cov(_ v: Double?) -> String { v.map { String(format: "%.1f %%", $0) } ?? "—" }
        let table = TextTable(header: ["history", "age", "FlowMeter MAPE", "vnstat MAPE", "coverage",
                                       "imported: FlowMeter", "vnstat", "coverage"],
                              rows: rows.map { r in
                                  [r.shape, r.age, pct(r.flowmeter_mape_percent), pct(r.vnstat_mape_percent), cov(r.coverage_percent),
                                   pct(r.with_import.flowmeter_mape_percent), pct(r.with_import.vnstat_mape_percent),
                                   cov(r.with_import.coverage_percent)]
                              }, rightAlignedFrom: 2)
        return out + table.render()
    }
}
