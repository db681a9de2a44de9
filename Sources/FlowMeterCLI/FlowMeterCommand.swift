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
    /// `FleetCheck.runAsPlugin`); every other command runs as
    /// swift-argument-parser does.
    static func main() {
        LoggingSystem.bootstrap { _ in FlowMeterLogHandler() }
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "check" { CheckCommand.runAsPlugin(Array(arguments.dropFirst())) }
        if arguments.starts(with: ["fleet", "check"]) { FleetCheck.runAsPlugin(Array(arguments.dropFirst(2))) }
        main(arguments)
    }
}
