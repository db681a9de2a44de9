import ArgumentParser
import FlowMeterAgent
import FlowMeterExport
import FlowMeterReports
import FlowMeterStore
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCapture
import FlowMeterCore
import Logging
import Foundation

@main
struct FlowMeterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowmeter",
        abstract: "Traffic accounting for Tor relay hosts: per-category counts, quotas and forecasts, no peer data.",
        version: FlowMeterVersion.string,
        subcommands: [ReplayCommand.self, RunCommand.self, ReportCommand.self, DbCommand.self, BenchCommand.self,
                      TorScheduleCommand.self, BacktestCommand.self, ForecastCommand.self, CheckCommand.self, TopCommand.self,
                      ImportCommand.self, FleetCommand.self]
    )

    /// Every command logs in the one format (FlowMeterLogHandler), including
    /// the libraries' default loggers. `check` is a monitoring plugin, which
    /// must answer with one status line even for a usage error, so its
    /// arguments are parsed by `CheckCommand.runAsPlugin` (`fleet check`'s by
    /// `FleetCheck.runAsPlugin`); every other command is parsed by
    /// swift-argument-parser and fails in the house style (`fail`).
    static func main() {
        LoggingSystem.bootstrap { _ in FlowMeterLogHandler() }
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "check" { CheckCommand.runAsPlugin(Array(arguments.dropFirst())) }
        if arguments.starts(with: ["fleet", "check"]) { FleetCheck.runAsPlugin(Array(arguments.dropFirst(2))) }
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            fail(error)
        }
        Foundation.exit(0)
    }

    /// One error style and one exit-status table for every command
    /// (`CommandFailure`): `flowmeter: error: …` on standard error, then for
    /// a usage error the command's usage line; help and `--version` are
    /// printed as argument-parser prints them.
    static func fail(_ error: any Error) -> Never {
        let failure: CommandFailure?
        switch error {
        case let f as CommandFailure: failure = f
        case let e as StoreError: failure = .data(e.description)
        case let e as ConfigError: failure = .configuration(e.description)
        case let e as CLIError: failure = .runtime(e.description)
        default: failure = nil
        }
        if let failure {
            Diagnostics.error(failure.description)
            Foundation.exit(failure.code)
        }
        let code = exitCode(for: error)
        // Help, --version, completion scripts, and a bare ExitCode (its message was said already).
        if code == .success || fullMessage(for: error).isEmpty { exit(withError: error) }
        var lines = fullMessage(for: error).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if let first = lines.first, first.hasPrefix("Error: ") { lines[0] = String(first.dropFirst("Error: ".count)) }
        Diagnostics.error(lines[0])
        let rest = lines.dropFirst().joined(separator: "\n")
        if !rest.isEmpty { Diagnostics.write(rest.hasSuffix("\n") ? rest : rest + "\n") }
        Foundation.exit(code == .validationFailure ? CommandFailure.usage : code.rawValue)
    }
}
