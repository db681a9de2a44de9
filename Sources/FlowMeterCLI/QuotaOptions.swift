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
