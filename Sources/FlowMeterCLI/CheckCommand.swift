import FlowMeterFormat
import ArgumentParser
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCore
import FlowMeterReports
import FlowMeterStore
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `flowmeter check`: a monitoring plugin (Nagios, Icinga, Naemon, Sensu).
/// Every outcome, usage and configuration errors included, is one line on
/// standard output and an exit code 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
/// (the logic is `CheckPlugin`; this type only gathers its inputs).
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Monitoring plugin for every quota: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, one status line.",
        discussion: """
        Thresholds follow the Monitoring Plugins range syntax [@][START:][END], each end a percent of the \
        quota's limit (80 or 80%) or a byte quantity (1.5TiB): -w 80 warns above 80 % used. A quota over its \
        limit is CRITICAL; so is a store whose newest data is older than --max-age (a stopped agent). \
        --warning-hours/--critical-hours alert when the projected exhaustion is closer than that. A quota \
        with limit 0 or a scope naming an unknown relay is a configuration error (UNKNOWN). The worst quota decides.
        """)

    @OptionGroup var options: QuotaOptions
    @OptionGroup var thresholds: PluginThresholds
    @Option(help: ArgumentHelp("CRITICAL when the newest data is older (120, 5m, 2h; 0 turns it off). Default: twice the store's flush interval.",
                               valueName: "DURATION"))
    var maxAge: String?
    /// `-V` as monitoring plugins have it; `--version` is every command's.
    @Flag(name: .customShort("V"), help: "Print the version and exit (as --version).") var showVersion = false

    /// Every value against its range before anything runs: a parse or range
    /// error is one UNKNOWN line (`runAsPlugin`), never a trap.
    func validate() throws {
        do { _ = try pluginOptions() } catch { throw ValidationError(error.description) }
    }

    func pluginOptions() throws(CheckPlugin.CheckError) -> CheckPlugin.Options {
        try thresholds.pluginOptions(maxAge: maxAge, defaultMaxAge: Double(2 * StoreConfiguration().flushIntervalSeconds))
    }

    func run() throws {
        if showVersion {
            print("flowmeter check \(FlowMeterVersion.string)")
            return
        }
        let result = evaluate()
        print(result.line)
        if result.status != .ok { throw ExitCode(result.status.rawValue) }
    }

    /// Loads configuration, quotas and the store, and asks `CheckPlugin`;
    /// any failure is UNKNOWN with its reason.
    func evaluate(current: Date = Date()) -> CheckPlugin.Result {
        do {
            let zone = options.tz.flatMap(TimeZone.init(identifier:)) ?? .current
            let c = options.configOptions
            let loaded = try c.loadConfig()
            let list = try QuotaOptions.quotaList(specs: options.quotas, loaded: loaded, zone: zone)
            let reader = try StoreAccess.reader(try options.dbOption ?? c.storePath())
            let wallNow = options.now.flatMap { Format.parseISO8601($0) } ?? current
            let at = options.instant(reader, current: wallNow)
            let statuses = try QuotaEvaluation.statuses(list, torInstances: loaded.torInstances, source: reader, at: at,
                                                        askTor: options.now == nil)
            var known = loaded.model.relayLabels
            for r in try reader.relayLabels() where !known.contains(r) { known.append(r) }
            let plugin = try pluginOptions()
            let inputs = try statuses.map { s in
                var input = CheckPlugin.QuotaInput(s)
                // Over the limit before a projection exists (30 min of data): when it was crossed.
                if input.used > input.limit && input.exhaustion == nil {
                    let period = s.forecast.usage.interval
                    input.exhaustion = QuotaForecaster.pastCrossing(s.quota, buckets: try reader.buckets(from: period.start, to: at),
                                                                    interval: period).map { min($0, at) }
                }
                return input
            }
            return CheckPlugin.evaluate(inputs, options: plugin, now: wallNow,
                                        newestData: QuotaOptions.newestData(reader), knownRelays: known)
        } catch let error as ConfigError {
            return CheckPlugin.unknown("configuration: \(error)")
        } catch {
            return CheckPlugin.unknown("\(error)")
        }
    }

    /// Runs `check` with `arguments` (after the word `check`) and exits, as
    /// a monitoring plugin (`MonitoringPlugin.run`).
    static func runAsPlugin(_ arguments: [String]) -> Never {
        MonitoringPlugin.run(CheckCommand.self, words: ["check"], arguments: arguments,
                             usage: "usage: flowmeter check --db FILE --quota SPEC [-w RANGE] [-c RANGE]")
    }
}

/// A command that answers as a Nagios/Monitoring Plugins check: one line and
/// the status as its exit code, whatever happens.
protocol MonitoringPluginCommand: ParsableCommand {
    var thresholds: PluginThresholds { get }
    func evaluate(current: Date) -> CheckPlugin.Result
}

/// What both monitoring plugins (`check`, `fleet check`) take besides their
/// inputs: the ranges, the hours before exhaustion and the time limit,
/// declared and checked once so the two cannot drift apart.
struct PluginThresholds: ParsableArguments {
    @Option(name: [.customShort("w"), .long], help: ArgumentHelp("WARNING range (percent of the limit or bytes).", valueName: "RANGE"))
    var warning: String = "80"
    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("CRITICAL range (percent of the limit or bytes).", valueName: "RANGE"))
    var critical: String = "95"
    @Option(help: "WARNING when the projected exhaustion is less than this many hours away.") var warningHours: Double?
    @Option(help: "CRITICAL when the projected exhaustion is less than this many hours away.") var criticalHours: Double?
    @Option(name: [.customShort("t"), .long], help: ArgumentHelp("Give up with UNKNOWN after this many seconds.", valueName: "SECONDS"))
    var timeout: Int = 10

    /// The longest --timeout: a monitoring system waits seconds, not days.
    static let longestTimeout = 86_400

    func validate() throws {
        if !(1...Self.longestTimeout).contains(timeout) {
            throw ValidationError("--timeout must be 1 to \(Self.longestTimeout) seconds")
        }
    }

    /// The plugin's options with the command's `--max-age` (nil: `defaultMaxAge`).
    func pluginOptions(maxAge: String?, defaultMaxAge: TimeInterval) throws(CheckPlugin.CheckError) -> CheckPlugin.Options {
        try CheckPlugin.Options(warning: warning, critical: critical, warningHours: warningHours, criticalHours: criticalHours,
                                maxAge: maxAge, defaultMaxAge: defaultMaxAge)
    }
}

extension CheckCommand: MonitoringPluginCommand {}

/// `check` and `fleet check` run the same way: parse and validation errors
/// become UNKNOWN lines too, a run past `--timeout` is cut off with UNKNOWN,
/// help and version exit 0.
enum MonitoringPlugin {
    static func run<C: MonitoringPluginCommand>(_: C.Type, words: [String], arguments: [String], usage: String) -> Never {
        // Before parsing: they must work without the required options.
        if arguments.contains(where: { ["-h", "--help"].contains($0) }) {
            print(FlowMeterCommand.helpMessage(for: C.self))
            Foundation.exit(0)
        }
        if arguments.contains(where: { ["-V", "--version"].contains($0) }) {
            print("flowmeter \(words.joined(separator: " ")) \(FlowMeterVersion.string)")
            Foundation.exit(0)
        }
        let command: C
        do {
            guard let parsed = try FlowMeterCommand.parseAsRoot(words + arguments) as? C else { emit(CheckPlugin.unknown(usage)) }
            command = parsed
        } catch {
            if FlowMeterCommand.exitCode(for: error) == .success { FlowMeterCommand.exit(withError: error) }
            emit(CheckPlugin.unknown(FlowMeterCommand.message(for: error)))
        }
        let seconds = command.thresholds.timeout
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(seconds)) {
            emit(CheckPlugin.unknown("timed out after \(seconds) s (--timeout)"))
        }
        emit(command.evaluate(current: Date()))
    }

    private static let emitted = Atomic<Bool>(false)

    /// Writes the line with one write(2) (the timeout may race the answer;
    /// whichever comes first is the whole output) and exits with its status.
    static func emit(_ result: CheckPlugin.Result) -> Never {
        // The loser of the race waits for the winner's _exit.
        guard emitted.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            while true { pause() }
        }
        var bytes = Array((result.line + "\n").utf8)
        // Safe: the buffer is valid for the call and write(2) reads at most its count.
        _ = bytes.withUnsafeMutableBytes { Glibc.write(1, $0.baseAddress, $0.count) }
        _exit(result.status.rawValue)
    }
}
