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
import Yams

/// What `forecast` and `check` share: the store, the quotas, and "now".
struct QuotaOptions: ParsableArguments {
    @Option(name: .customLong("db"), help: ArgumentHelp("The accounting store written by `run` or `replay --db` (default: the one `run` writes with this --config).", valueName: "FILE"))
    var dbOption: String?

    @Option(name: .customLong("quota"), help: ArgumentHelp(
        "'NAME LIMIT PERIOD RULE [SCOPE] [tz=ZONE]', e.g. 'provider 20TiB month 1 00:00 sum provider' (docs/quotas.md). Repeatable.",
        valueName: "SPEC"))
    var quotas: [String] = []

    @OptionGroup var configOptions: ConfigOptions

    @Option(help: ArgumentHelp("Zone for quota periods without tz= (default: this host's, as Tor uses local time).", valueName: "ZONE"))
    var tz: String?

    @Option(help: ArgumentHelp("Evaluate at this ISO-8601 instant (default: the last instant the store has data for, at most the current time).", valueName: "INSTANT"))
    var now: String?

    func validate() throws {
        if let tz, TimeZone(identifier: tz) == nil { throw ValidationError("unknown time zone '\(tz)'") }
        if let now, Format.parseISO8601(now) == nil { throw ValidationError("--now '\(now)' is not an ISO-8601 instant") }
    }

    struct Resolved {
        var reader: AccountingReader
        var statuses: [QuotaStatus]
        var now: Date
    }

    /// Loads quotas (command line, config `quotas:`, torrc accounting), opens
    /// the store read-only and evaluates every quota. Config errors exit 2;
    /// an unreadable store exits 3 (`CommandFailure`).
    func resolve() throws -> Resolved {
        let zone = tz.flatMap(TimeZone.init(identifier:)) ?? .current
        let loaded = try configOptions.load(warn: false)
        let list = try QuotaOptions.loadQuotas(specs: quotas, configOptions: configOptions, zone: zone)
        let db = try dbOption ?? configOptions.defaultStorePath()
        let reader = try StoreAccess.reader(db)
        let at = instant(reader)
        let statuses: [QuotaStatus]
        do {
            statuses = try QuotaEvaluation.statuses(list, torInstances: loaded.torInstances, source: reader, at: at, askTor: now == nil)
        } catch let e as StoreError {
            throw CommandFailure.data(e.description)
        }
        return Resolved(reader: reader, statuses: statuses, now: at)
    }

    /// Every quota the operator declared: `--quota`, the config's `quotas:`
    /// list, and each torrc with AccountingMax. Errors exit 2 naming the source.
    static func loadQuotas(specs: [String], configOptions: ConfigOptions, zone: TimeZone,
                           required: Bool = true) throws -> [(Quota, QuotaStatus.TorInputs?)] {
        let loaded = try configOptions.load(warn: false)
        let list: [(Quota, QuotaStatus.TorInputs?)]
        do { list = try quotaList(specs: specs, loaded: loaded, zone: zone) } catch {
            throw CommandFailure.configuration("\(error)")
        }
        if list.isEmpty && required {
            throw CommandFailure.configuration("no quota: give --quota, a config file with quotas:, or a torrc with AccountingMax")
        }
        return list
    }

    /// The quotas of `specs`, the config's `quotas:` and the torrcs'
    /// accounting options; the error names where the bad one was written.
    static func quotaList(specs: [String], loaded: LoadedConfig, zone: TimeZone) throws(ConfigError) -> [(Quota, QuotaStatus.TorInputs?)] {
        var list: [(Quota, QuotaStatus.TorInputs?)] = []
        for spec in specs {
            do { list.append((try Quota(spec: spec, defaultZone: zone), nil)) } catch {
                throw ConfigError(file: "--quota", "\(error)")
            }
        }
        if let file = loaded.configFile, let node = file.sections["quotas"] {
            let nodes = YAMLNodes(file: file.path)
            for item in try nodes.sequence(node, "quotas") {
                let spec = try nodes.string(item, "a quotas entry")
                do { list.append((try Quota(spec: spec, defaultZone: zone), nil)) } catch {
                    throw nodes.error(item, "\(error)")
                }
            }
        }
        for relay in loaded.torInstances {
            guard let settings = relay.accounting else { continue }
            do {
                guard let q = try Quota.fromTorrc(relay: relay.name, settings: settings, zone: zone) else { continue }
                list.append((q, try torInputs(relay: relay, settings: settings, zone: zone)))
            } catch {
                throw ConfigError(file: relay.sourceFile ?? relay.name, "\(error)")
            }
        }
        return list
    }

    /// The instant quotas are evaluated at: `--now`, else the last instant the
    /// store has data for, at most `current`.
    func instant(_ reader: AccountingReader, current: Date = Date()) -> Date {
        if let now { return Format.parseISO8601(now)! }
        return min(current, Self.newestData(reader) ?? current)
    }

    /// The last instant the agent (or replay) observed, as the store says.
    static func newestData(_ reader: AccountingReader) -> Date? {
        guard let text = try? reader.state(named: AccountingStore.lastObservationKey), let ns = Int64(text) else { return nil }
        return Date(timeIntervalSince1970: Double(ns) / 1e9)
    }

    /// Tor's own accounting state for the schedule, from the relay's DataDirectory when readable.
    private static func torInputs(relay: TorInstance, settings: TorAccountingSettings, zone: TimeZone) throws -> QuotaStatus.TorInputs {
        QuotaStatus.TorInputs.read(config: try TorHibernationConfig(settings: settings, timeZone: zone), dataDirectory: relay.dataDirectory)
    }
}

/// `flowmeter forecast`: per quota, used, remaining, rates, projection with a
/// range, exhaustion, daily budget, and for Tor quotas Tor's own schedule.
struct ForecastCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast",
        abstract: "Project every quota to the end of its period, and Tor's hibernation schedule.",
        discussion: "No projection exists before 30 minutes of data (as Tor requires). Method and range are named in the output (docs/quotas.md).")

    @OptionGroup var options: QuotaOptions
    @Flag(help: "Print JSON: a list of quota objects (docs/quotas.md).") var json = false

    func run() throws {
        let r = try options.resolve()
        if json {
            let list = try r.statuses.map { ForecastJSONWithSurges(base: $0.json, figures: try SurgeReport.figures($0, reader: r.reader, now: r.now)) }
            print(try JSONStyle.string(list))
            return
        }
        for s in r.statuses { print(ForecastText.render(s) + (try SurgeReport.forecastLines(s, reader: r.reader, now: r.now))) }
    }
}

/// The human-readable forecast of one quota.
enum ForecastText {
    static func render(_ s: QuotaStatus) -> String {
        let j = s.json
        func bytes(_ v: UInt64?) -> String { v.map { Format.bytes($0, units: s.quota.units) } ?? "–" }
        let atLeast = j.used_is_lower_bound ? "at least " : ""
        var out = "quota \(j.name) (\(j.scope), rule \(j.rule)): \(atLeast)\(bytes(j.used_bytes)) of \(bytes(j.limit_bytes)) used, \(bytes(j.remaining_bytes)) left\n"
        out += "  period \(j.period_start) – \(j.period_end), as of \(j.now)"
            + (s.intervalSource.map { " (interval from \($0.phrase))" } ?? "") + "\n"
        out += ForecastText.provenance(j)
        if let end = j.projected_end_bytes {
            out += "  projected end of period: \(atLeast)\(bytes(end)) (\(Int(j.projected_range_percent ?? 0)) % range \(bytes(j.projected_end_bytes_low)) – \(bytes(j.projected_end_bytes_high))), method \(j.method)\n"
            out += "  stands on \(j.history.replacingOccurrences(of: "from ", with: "", options: .anchored)); learns from \(j.learns_from ?? "–")"
                + (j.level_change.map { " (level changed \($0); earlier data not used for the level)" } ?? "") + "\n"
            out += "  projected exhaustion: \(j.projected_exhaustion ?? "not within this period")\n"
            if let b = j.daily_budget_bytes { out += "  daily budget for the rest of the period: \(bytes(b))\n" }
            out += ForecastText.rateAdvice(j)
        } else {
            out += "  no projection yet (\(j.history); at least 30 minutes needed)\n"
        }
        if let c = j.tor_control { out += ForecastText.torControl(c) }
        if let t = j.tor {
            out += "  Tor: soft limit \(Format.bytes(t.soft_limit_bytes)), E \(t.expected_usage_bytes_per_minute) B/min (\(t.expected_usage_basis))\n"
            out += "       wake-up \(t.wakeup ?? "–"), soft hibernation \(t.predicted_soft_hibernation ?? "–"), hard \(t.predicted_hard_hibernation ?? "–")\n"
        }
        return out
    }
}
