import FlowMeterFormat
import ArgumentParser
import Foundation
import FlowMeterAgent
import FlowMeterExport
import FlowMeterReports
import FlowMeterStore
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCapture
import FlowMeterCore

/// `flowmeter backtest`: replays FlowMeter's end-of-period projection and
/// vnstat's over a history and reports both mean absolute percentage errors.
struct BacktestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backtest",
        abstract: "Score FlowMeter's end-of-period projection against vnstat's on a history (MAPE).",
        discussion: """
            The history is a file of per-interval counts (start_utc,seconds,bytes_in,bytes_out; rows missing are \
            capture gaps), the store (--db), or generated (--synthetic SHAPE or all; shapes below). \
            For every complete period of the quota, both methods project the period's total at each day \
            boundary; vnstat's is floor(bytes / elapsed seconds) × period length per direction. \
            Coverage is how often the actual total fell inside FlowMeter's printed range; width is the \
            range's mean width relative to the actual total. \
            Shapes: \(SyntheticHistory.Shape.allCases.map(\.rawValue).joined(separator: ", ")).
            """)

    @Option(help: "History file: start_utc,seconds,bytes_in,bytes_out.") var history: String?
    @Option(help: "FlowMeter's SQLite store.") var db: String?
    @Option(help: "Generate a history: a shape (see above) or all.") var synthetic: String?
    @Option(help: "Days of synthetic history from 2026-01-01.") var days = 181
    @Option(help: "Seed of the synthetic noise.") var seed: UInt64 = 1
    @Option(help: "Write the synthetic history here (one shape only).") var writeHistory: String?
    @Option(help: "'NAME LIMIT PERIOD RULE [SCOPE] [tz=ZONE]'; only PERIOD, RULE, SCOPE and the zone matter here.")
    var quota = "backtest 1PiB month 1 00:00 sum provider tz=UTC"
    @Option(help: ArgumentHelp("Young stores: project from stores this old only (e.g. 10m,1h,1d,3d), with and without an import of the history before them, against vnstat's formula with the same history.", valueName: "AGES"))
    var ages: String?
    @Flag(help: "Print JSON.") var json = false

    /// `--ages` in seconds, in the order given.
    func parsedAges() throws -> [TimeInterval]? {
        try ages.map { text in
            try text.split(separator: ",").map { a in
                do { return try CheckPlugin.parseDuration(String(a)) } catch { throw ValidationError("--ages: \(error)") }
            }
        }
    }

    func validate() throws {
        guard [history, db, synthetic].compactMap({ $0 }).count == 1 else {
            throw ValidationError("give exactly one of --history FILE, --db FILE, --synthetic SHAPE")
        }
        if let s = synthetic, s != "all", SyntheticHistory.Shape(rawValue: s) == nil {
            throw ValidationError("--synthetic: one of \(SyntheticHistory.Shape.allCases.map(\.rawValue).joined(separator: ", ")), all")
        }
        if writeHistory != nil && (synthetic == nil || synthetic == "all") {
            throw ValidationError("--write-history needs --synthetic with one shape")
        }
        if let a = try parsedAges(), a.isEmpty || a.contains(where: { $0 <= 0 }) {
            throw ValidationError("--ages: one or more durations above 0, comma-separated (e.g. 10m,1h,1d,3d)")
        }
    }

    func run() throws {
        let q: Quota
        do { q = try Quota(spec: quota, defaultZone: TimeZone(identifier: "UTC")!) } catch { throw ValidationError("--quota: \(error)") }
        var runs: [(String, UsageHistorySource, DateInterval)] = []
        if let path = history {
            let h = try HistoryFile(text: readText(path, what: "history"))
            guard let span = h.span else { throw CLIError("\(path): no rows") }
            runs.append((path, h, span))
        } else if let s = synthetic {
            let start = TorTime.parse("2026-01-01 00:00:00")!
            let span = DateInterval(start: start, duration: Double(days) * 86_400)
            for shape in SyntheticHistory.Shape.allCases where s == "all" || s == shape.rawValue {
                let h = SyntheticHistory.generate(shape, start: start, days: days, seed: seed)
                if let out = writeHistory { try h.render().write(toFile: out, atomically: true, encoding: .utf8) }
                runs.append((shape.rawValue, h, span))
            }
        } else if let path = db {
            let reader = try StoreAccess.reader(path)
            let stored = try reader.resolutions()
            guard let first = stored.map(\.firstStart).min(),
                  let last = stored.map({ $0.lastStart.addingTimeInterval(Double($0.resolution.rawValue)) }).max() else {
                throw CommandFailure.data("\(path): the store holds no buckets yet")
            }
            runs.append((path, reader, DateInterval(start: first, end: last)))
        }

        if let ages = try parsedAges() {
            try YoungStoreReport.print(runs: runs, quota: q, ages: ages, ageLabels: self.ages!.split(separator: ",").map(String.init), json: json)
            return
        }
        var results: [(String, BacktestResult)] = []
        for (name, source, span) in runs {
            results.append((name, try Backtest.run(quota: q, source: source, from: span.start, to: span.end)))
        }
        if json {
            print(try JSONStyle.string(results.map { BacktestJSON(history: $0.0, quota: q, result: $0.1) }))
            return
        }
        print("quota period \(q.period) (\(q.timeZone.identifier)), rule \(q.rule.rawValue), scope \(q.scope)")
        print("FlowMeter: \(QuotaForecaster.methodName)")
        print("vnstat:    floor(bytes / elapsed s) × period length, per direction")
        print("")
        let n = Int((QuotaForecaster.rangeCoverage * 100).rounded())
        print("range:     the \(n) % interval of the end-of-period total")
        print("")
        print(pad("history", 14) + pad("periods", 9) + pad("points", 8) + pad("FlowMeter MAPE", 16) + pad("vnstat MAPE", 13)
              + pad("ratio", 7) + pad("coverage (\(n) %)", 17) + "width")
        for (name, r) in results {
            let ratio = r.vnstatMAPE > 0 ? String(format: "%.2f", r.flowMeterMAPE / r.vnstatMAPE) : "—"
            print(pad(name, 14) + pad("\(r.periods.count)", 9) + pad("\(r.pointCount)", 8)
                  + pad(String(format: "%.2f %%", r.flowMeterMAPE), 16) + pad(String(format: "%.2f %%", r.vnstatMAPE), 13)
                  + pad(ratio, 7) + pad(String(format: "%.1f %%", 100 * r.coverage), 17) + String(format: "%.1f %%", r.meanRangeWidth))
        }
        if results.count > 1 {
            let all = BacktestResult(periods: results.flatMap(\.1.periods), method: QuotaForecaster.methodName)
            print(pad("all", 14) + pad("\(all.periods.count)", 9) + pad("\(all.pointCount)", 8)
                  + pad(String(format: "%.2f %%", all.flowMeterMAPE), 16) + pad(String(format: "%.2f %%", all.vnstatMAPE), 13)
                  + pad(all.vnstatMAPE > 0 ? String(format: "%.2f", all.flowMeterMAPE / all.vnstatMAPE) : "—", 7)
                  + pad(String(format: "%.1f %%", 100 * all.coverage), 17) + String(format: "%.1f %%", all.meanRangeWidth))
        }
    }

    private func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count + 1), withPad: " ", startingAt: 0) }
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
enum YoungStoreReport {
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

    static func print(runs: [(String, UsageHistorySource, DateInterval)], quota: Quota, ages: [TimeInterval], ageLabels: [String],
                      json: Bool) throws {
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
        if json {
            Swift.print(try JSONStyle.string(rows))
            return
        }
        Swift.print("young stores: FlowMeter installed AGE before each projection; vnstat's formula with the same history")
        Swift.print("(its database created at the install; with an import, holding the whole period so far)")
        Swift.print("")
        func pct(_ v: Double?) -> String { v.map { String(format: "%.2f %%", $0) } ?? "no projection" }
        func cov(_ v: Double?) -> String { v.map { String(format: "%.1f %%", $0) } ?? "—" }
        let table = TextTable(header: ["history", "age", "FlowMeter MAPE", "vnstat MAPE", "coverage",
                                       "imported: FlowMeter", "vnstat", "coverage"],
                              rows: rows.map { r in
                                  [r.shape, r.age, pct(r.flowmeter_mape_percent), pct(r.vnstat_mape_percent), cov(r.coverage_percent),
                                   pct(r.with_import.flowmeter_mape_percent), pct(r.with_import.vnstat_mape_percent),
                                   cov(r.with_import.coverage_percent)]
                              }, rightAlignedFrom: 2)
        Swift.print(table.render(), terminator: "")
    }
}
