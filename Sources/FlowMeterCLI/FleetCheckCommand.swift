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
    @OptionGroup var thresholds: PluginThresholds
    @Option(help: ArgumentHelp("CRITICAL when a member's newest sample is older (120, 5m; 0 turns it off).", valueName: "DURATION"))
    var maxAge: String = "120"
    /// `-V` as monitoring plugins have it; `--version` is every command's.
    @Flag(name: .customShort("V"), help: "Print the version and exit (as --version).") var showVersion = false

    /// As `check`'s: every value against its range before anything runs.
    func validate() throws {
        do { _ = try pluginOptions() } catch { throw ValidationError(error.description) }
    }

    func pluginOptions() throws(CheckPlugin.CheckError) -> CheckPlugin.Options {
        try thresholds.pluginOptions(maxAge: maxAge, defaultMaxAge: 120)
    }

    /// Evaluates every selected pool and asks `CheckPlugin`; any failure is UNKNOWN.
    func evaluate(current: Date = Date()) -> CheckPlugin.Result {
        do {
            // Leave the plugin a moment to answer before its own timeout fires.
            let pools = try options.evaluate(deadline: current.addingTimeInterval(Double(thresholds.timeout) * 0.9))
            for p in pools where !p.history.missingHosts.isEmpty {
                return CheckPlugin.unknown("pool \(p.pool.name) names host(s) \(p.history.missingHosts.joined(separator: ", ")), which the central store has no series of (the host label each host's series carry)")
            }
            let plugin = try pluginOptions()
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
        if showVersion {
            print("flowmeter fleet check \(FlowMeterVersion.string)")
            return
        }
        // Reached only when parsed outside `runAsPlugin` (tests): same line, same code.
        let result = evaluate()
        print(result.line)
        if result.status != .ok { throw ExitCode(result.status.rawValue) }
    }
}
