import ArgumentParser
import FlowMeter

@main
struct FlowMeterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flowmeter",
        subcommands: [TorScheduleCommand.self, BacktestCommand.self])
}
