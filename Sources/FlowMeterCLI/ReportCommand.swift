import FlowMeterFormat
import ArgumentParser
import FlowMeterAgent
import FlowMeterExport
import FlowMeterReports
import FlowMeterStore
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCapture
import FlowMeterCore
import Foundation

/// `flowmeter report`: usage per day or month from the accounting store.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Show stored usage per day or month, per relay, category and direction.",
        discussion: "Periods marked ≥ overlap a gap (agent stopped, capture drops, clock jump): their counts are a lower bound.")

    @Option(name: .customLong("db"), help: "The accounting database (written by run or replay --db; default: the one run writes with this --config).")
    var dbOption: String?

    @Option(name: .long, help: "Group by hour, day, week (ISO, from Monday) or month, in --tz.")
    var by: ReportPeriod = .day

    @Option(name: .long, help: "First day (YYYY-MM-DD in --tz, or an ISO 8601 instant). Default: the first stored bucket.")
    var from: String?

    @Option(name: .long, help: "Day after the last (exclusive; same forms). Default: after the last stored bucket.")
    var to: String?

    @Option(name: .long, help: "Time zone for periods (e.g. Europe/Berlin). Default: UTC.")
    var tz: String = "UTC"

    @Option(name: .customLong("quota"), help: ArgumentHelp("A quota to report per period (as for forecast). Repeatable.", valueName: "SPEC"))
    var quotas: [String] = []

    @OptionGroup var configOptions: ConfigOptions

    @Flag(name: .long, help: "Print JSON.") var json = false
    @Flag(name: .long, help: "Print CSV.") var csv = false
    @Flag(name: .long, help: "One line per relay (2;relay;day;in;out;total;rate;period start;end;in;out;total;rate;period;counts), the host's total first, then one per quota (1;name;period start;end;used;limit;percent;projected;exhaustion), as vnstat --oneline (docs/quotas.md).")
    var oneline = false
    @Option(name: .long, help: ArgumentHelp("Also write the dashboard's charts for this range to an SVG file.", valueName: "FILE"))
    var svg: String?

    func validate() throws {
        if [json, csv, oneline].filter({ $0 }).count > 1 { throw ValidationError("choose one of --json, --csv and --oneline") }
        if TimeZone(identifier: tz) == nil { throw ValidationError("unknown time zone '\(tz)'") }
        for (name, value) in [("--from", from), ("--to", to)] {
            if let value, Self.parseInstant(value, zone: TimeZone(identifier: tz)!) == nil {
                throw ValidationError("\(name) '\(value)' is neither YYYY-MM-DD nor an ISO 8601 instant")
            }
        }
    }

    /// A day in `zone` (its midnight) or an ISO 8601 instant.
    static func parseInstant(_ s: String, zone: TimeZone) -> Date? {
        let day = DateFormatter()
        day.locale = Locale(identifier: "en_US_POSIX")
        day.timeZone = zone
        day.dateFormat = "yyyy-MM-dd"
        if s.count == 10, let d = day.date(from: s) { return d }
        return Format.parseISO8601(s)
    }

    func run() throws {
        let zone = TimeZone(identifier: tz)!
        let db = try dbOption ?? configOptions.defaultStorePath()
        do {
            let reader = try StoreAccess.reader(db)
            let stored = try reader.resolutions()
            let first = stored.map(\.firstStart).min() ?? Date(timeIntervalSince1970: 0)
            let last = stored.map { $0.lastStart.addingTimeInterval(Double($0.resolution.rawValue)) }.max() ?? first
            var report = try UsageReport.build(
                from: reader,
                from: from.flatMap { Self.parseInstant($0, zone: zone) } ?? first,
                to: to.flatMap { Self.parseInstant($0, zone: zone) } ?? last,
                by: by, timeZone: zone)
            report.timeZone = tz  // as the operator wrote it (Foundation says GMT for UTC)
            let quotaList = try QuotaOptions.loadQuotas(specs: quotas, configOptions: configOptions, zone: zone, required: false)
            // The quotas as every other view shows them now (tor's own interval for a Tor quota).
            let now = reader.dataEnd()
            let statuses = try QuotaEvaluation.statuses(quotaList, torInstances: configOptions.load(warn: false).torInstances,
                                                        source: reader, at: now, askTor: true)
            report.glance = try ReportViews.glance(reader: reader, statuses: statuses, zone: zone, now: now)
            if let svg {
                let text = try ReportViews.svg(reader: reader, from: report.from, to: report.to, by: by, quotas: statuses, now: now)
                do { try text.write(toFile: svg, atomically: true, encoding: .utf8) } catch {
                    throw CommandFailure.runtime("\(svg): \(Diagnostics.reason(error))")
                }
            }
            if oneline {
                print(ReportViews.oneline(report.glance!, statuses: statuses, now: now), terminator: "")
                return
            }
            if !quotaList.isEmpty {
                report.sections.append(try quotaSection(statuses, reader: reader, from: report.from, to: report.to))
            }
            if let surges = try SurgeReport.section(reader: reader, from: report.from, to: report.to, by: by, zone: zone) {
                report.sections.append(surges)
            }
            if json { print(try report.renderJSON(), terminator: "") }
            else if csv { report.glance = nil; print(report.renderCSV(), terminator: "") }
            else { print(report.renderTable(), terminator: "") }
        } catch let e as StoreError {
            throw CommandFailure.data(e.description)
        }
    }
}

extension ReportCommand {
    /// Per quota and per quota period overlapping the report: used, limit,
    /// share. The current period is the one every view shows (`statuses`:
    /// tor's own interval and bytes for a Tor quota); earlier ones are
    /// measured from the store on the quota's computed edges, up to it.
    func quotaSection(_ statuses: [QuotaStatus], reader: AccountingReader, from: Date, to: Date) throws -> ReportSection {
        var rows: [[String]] = [], text: [[String]] = []
        func add(_ q: Quota, _ label: String, _ period: DateInterval, used: UInt64, limit: UInt64, lowerBound: Bool) {
            let share = limit == 0 ? 0 : Double(used) / Double(limit)
            let mark = lowerBound ? "≥" : ""
            rows.append([label, Format.iso8601(period.start), Format.iso8601(period.end), String(used), String(limit),
                         String(format: "%.2f%%", share * 100), lowerBound ? "true" : "false"])
            text.append([label, Format.iso8601(period.start), Format.iso8601(period.end), mark + Format.bytes(used, units: q.units),
                         Format.bytes(limit, units: q.units), String(format: "%.2f %%", share * 100)])
        }
        for s in statuses {
            let q = s.quota, current = s.forecast.usage.interval
            var at = from
            while at < min(to, current.start) {
                let period = q.interval(containing: at)
                let until = min(period.end, to, current.start)
                let usage = QuotaUsage.measure(q, buckets: try reader.buckets(from: period.start, to: until),
                                               interval: DateInterval(start: period.start, end: until), now: until)
                let lowerBound = !(try reader.gaps(from: period.start, to: until)).isEmpty
                add(q, q.name, DateInterval(start: period.start, end: until), used: usage.used, limit: usage.limit, lowerBound: lowerBound)
                at = until
            }
            if current.start < to && current.end > from {
                let u = s.forecast.usage
                let gaps = try reader.gaps(from: current.start, to: s.forecast.now)
                add(q, q.name + (s.intervalSource.map { " (\($0.rawValue))" } ?? ""), current, used: u.used, limit: u.limit,
                    lowerBound: s.forecast.usageIsLowerBound || !gaps.isEmpty)
            }
        }
        var section = ReportSection(title: "Quotas (used per period; ≥ marks a lower bound)",
                                    columns: ["quota", "period_start", "period_end", "used_bytes", "limit_bytes", "used", "lower_bound"],
                                    rows: rows, textColumns: ["quota", "period start", "period end", "used", "limit", "share"], textRows: text)
        section.textNumbersFrom = 3
        return section
    }
}

extension ReportPeriod: ExpressibleByArgument {}
