import Logging
import Synchronization

/// Every message given to `logger`, with its level: what a test reads back
/// of a store's or an agent's log.
public final class CollectedLog: Sendable {
    public struct Entry: Sendable {
        public let level: Logger.Level
        public let message: String
    }
    private let entries = Mutex<[Entry]>([])

    public init() {}

    /// A logger at `.trace` that keeps every message here.
    public var logger: Logger {
        var l = Logger(label: "test") { _ in Handler(log: self) }
        l.logLevel = .trace
        return l
    }

    public var all: [Entry] { entries.withLock { $0 } }

    /// The messages at `level` or above, in order.
    public func messages(atLeast level: Logger.Level) -> [String] {
        all.filter { $0.level >= level }.map(\.message)
    }

    private struct Handler: LogHandler {
        let log: CollectedLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { nil } set {} }
        func log(event: LogEvent) {
            log.entries.withLock { $0.append(Entry(level: event.level, message: event.message.description)) }
        }
    }
}
