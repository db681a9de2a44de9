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
            print(try YoungStoreReport.render(runs: runs, quota: q, ages: ages,
                                              ageLabels: self.ages!.split(separator: ",").map(String.init), json: json), terminator: "")
            return
        }
        var results: [(String, BacktestResult)] = []
        for (name, source, span) in runs {
            results.append((name, try Backtest.run(quota: q, source: source, from: span.start, to: span.end)))
        }
        print(json ? try BacktestReport.json(results, quota: q) : BacktestReport.text(results, quota: q), terminator: json ? "\n" : "")
    }

}
