import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// FlowMeter's one log format: `flowmeter: LEVEL: message` on standard
/// error, one line per message, no timestamp (journald and terminals add
/// their own). Under journald (`JOURNAL_STREAM` set, as systemd does for a
/// service's stderr) each line starts with its syslog priority, `<3>` for an
/// error, which journald turns into the entry's PRIORITY and strips.
public struct FlowMeterLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public let journald: Bool

    public init(level: Logger.Level = .info, journald: Bool = FlowMeterLogHandler.underJournald) {
        logLevel = level
        self.journald = journald
    }

    /// systemd sets JOURNAL_STREAM to the device:inode of the journal stream
    /// it connected stderr to; a child whose stderr was redirected elsewhere
    /// inherits the variable, so the inode is compared (systemd.exec(5)).
    public static let underJournald: Bool = {
        guard let value = ProcessInfo.processInfo.environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }()

    /// A logger writing this format, at `level`.
    public static func logger(level: Logger.Level = .info) -> Logger {
        Logger(label: "flowmeter") { _ in FlowMeterLogHandler(level: level) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var text = "\(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        if !merged.isEmpty { text += " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") }
        Self.write(Self.line(event.level, text, journald: journald))
    }

    /// The formatted line (with its newline).
    public static func line(_ level: Logger.Level, _ message: String, journald: Bool) -> String {
        let prefix = journald ? "<\(priority(level))>" : ""
        // A message with newlines stays one journal entry per line, each prefixed.
        return message.split(separator: "\n", omittingEmptySubsequences: false)
            .map { "\(prefix)flowmeter: \(word(level)): \($0)\n" }.joined()
    }

    /// syslog(3) priorities as sd-daemon(3) lists them.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    static func word(_ level: Logger.Level) -> String { level == .trace ? "trace" : level.rawValue }

    /// write(2) on fd 2: unbuffered, and no shared C `stderr` FILE* to race on.
    public static func write(_ text: String) {
        var bytes = Array(text.utf8)
        // Safe: the buffer is valid for the call and write(2) reads at most its count.
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

/// An errno in words, as strerror(3) gives it ("address already in use").
public func errnoDescription(_ code: Int32) -> String {
    let text = String(cString: strerror(code))
    return text.prefix(1).lowercased() + text.dropFirst()
}
