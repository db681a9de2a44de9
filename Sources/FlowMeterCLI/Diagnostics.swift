import FlowMeterAgent
#if canImport(Glibc)
import Glibc
#endif

/// Messages for a person on standard error, in the agent's one log format
/// (`FlowMeterLogHandler`), so commands and the agent read the same.
enum Diagnostics {
    static func warn(_ message: String) { write(FlowMeterLogHandler.line(.warning, message, journald: FlowMeterLogHandler.underJournald)) }
    static func error(_ message: String) { write(FlowMeterLogHandler.line(.error, message, journald: FlowMeterLogHandler.underJournald)) }
    static func write(_ text: String) { FlowMeterLogHandler.write(text) }
    static var stderrIsTerminal: Bool { isatty(2) == 1 }
}
