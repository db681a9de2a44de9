import ArgumentParser
import FlowMeterAccounting
import FlowMeterCore
import FlowMeterFleet
import FlowMeterFormat
import FlowMeterReports
import Foundation

/// `flowmeter fleet check`: the monitoring plugin for pooled quotas, as
/// `flowmeter check` is for one host's (same ranges, perfdata, exit codes
/// 0/1/2/3 and one status line for every outcome). A member the central
/// store has never heard of is UNKNOWN (a configuration error); a member
/// whose newest sample is older than --max-age makes the pool CRITICAL.
struct FleetCheck: MonitoringPluginCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Monitoring plugin for pooled quotas: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN, one status line.",
        discussion: """
        Thresholds as `flowmeter check`: [@][START:][END], each end a percent of the pool's limit or a byte \
        quantity. A pool over its limit is CRITICAL, as is a member whose newest sample is older than --max-age. \
        The store unreachable, a bad config or a member the store does not know is UNKNOWN. The worst pool decides.
        """)

    @OptionGroup var options: FleetOptions
    @Option(name: [.customShort("w"), .long], help: ArgumentHelp("WARNING range (percent of the limit or bytes).", valueName: "RANGE"))
    var warning: String = "80"
    @Option(name: [.customShort("c"), .long], help: ArgumentHelp("CRITICAL range (percent of the limit or bytes).", valueName: "RANGE"))
    var critical: String = "95"
    @Option(help: "WARNING when the projected exhaustion is less than this many hours away.") var warningHours: Double?
    @Option(help: "CRITICAL when the projected exhaustion is less than this many hours away.") var criticalHours: Double?
    @Option(help: ArgumentHelp("CRITICAL when a member's newest sample is older (120, 5m; 0 turns it off).", valueName: "DURATION"))
    var maxAge: String = "120"
    @Option(name: [.customShort("t"), .long], help: ArgumentHelp("Give up with UNKNOWN after this many seconds.", valueName: "SECONDS"))
    var timeout: Int = 10
    @Flag(name: [.customShort("V"), .customLong("version")], help: "Print the version and exit.") var showVersion = false

    func validate() throws {
        do {
            _ = try CheckPlugin.Threshold(parsing: warning)
            _ = try CheckPlugin.Threshold(parsing: critical)
            _ = try CheckPlugin.parseDuration(maxAge)
        } catch { throw ValidationError(error.description) }
        for (name, v) in [("--warning-hours", warningHours), ("--critical-hours", criticalHours)] {
            if let v, !(v >= 0 && v.isFinite) { throw ValidationError("\(name) must be a number of hours ≥ 0") }
        }
        if timeout < 1 { throw ValidationError("--timeout must be at least 1 second") }
    }

    /// Evaluates every selected pool and asks `CheckPlugin`; any failure is UNKNOWN.
    func evaluate(current: Date = Date()) -> CheckPlugin.Result {
        do {
            // Leave the plugin a moment to answer before its own timeout fires.
            let pools = try options.evaluate(deadline: current.addingTimeInterval(Double(timeout) * 0.9))
            for p in pools where !p.history.missingHosts.isEmpty {
                return CheckPlugin.unknown("pool \(p.pool.name) names host(s) \(p.history.missingHosts.joined(separator: ", ")), which the central store has no series of (the host label each host's series carry)")
            }
            let age = try CheckPlugin.parseDuration(maxAge)
            let plugin = CheckPlugin.Options(
                warning: try CheckPlugin.Threshold(parsing: warning), critical: try CheckPlugin.Threshold(parsing: critical),
                warningHours: warningHours, criticalHours: criticalHours, maxAge: age > 0 ? age : nil)
            return CheckPlugin.evaluate(pools.map(\.checkInput), options: plugin, now: options.instant,
                                        newestData: pools.compactMap(\.newestData).min(), knownRelays: [])
        } catch {
            return CheckPlugin.unknown("\(error)")
        }
    }

    /// As `CheckCommand.runAsPlugin` (`MonitoringPlugin.run`).
    static func runAsPlugin(_ arguments: [String]) -> Never {
        MonitoringPlugin.run(FleetCheck.self, words: ["fleet", "check"], arguments: arguments,
                             usage: "usage: flowmeter fleet check --url URL [--pool NAME] [-w RANGE] [-c RANGE]")
    }

    func run() throws {
        // Reached only when parsed outside `runAsPlugin` (tests): same line, same code.
        let result = evaluate()
        print(result.line)
        if result.status != .ok { throw ExitCode(result.status.rawValue) }
    }
}
