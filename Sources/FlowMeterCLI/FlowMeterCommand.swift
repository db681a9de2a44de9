import ArgumentParser
import FlowMeterAgent
import FlowMeterExport
import FlowMeterReports
import FlowMeterStore
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCapture
import FlowMeterCore

@main
struct FlowMeterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowmeter",
        abstract: "Traffic accounting for Tor relay hosts: per-category counts, quotas and forecasts, no peer data.",
        version: FlowMeterVersion.string,
        subcommands: [ReplayCommand.self, RunCommand.self, ReportCommand.self, DbCommand.self, BenchCommand.self,
                      TorScheduleCommand.self, BacktestCommand.self, ForecastCommand.self, CheckCommand.self,
                      ImportCommand.self]
    )
}
