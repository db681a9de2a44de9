import Foundation
import FlowMeterTestSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Something answering on a "ControlPort" on 127.0.0.1 that is not tor: a
/// plain socket, one connection at a time, each command line answered by
/// `script`; it keeps every line it was sent, so a test can say what
/// FlowMeter gave away. Stopped (its thread joined) by `stop()`.
final class FakeControlPort: Sendable {
    enum Answer: Sendable {
        case text(String)
        /// The text one byte at a time, `interval` seconds apart.
        case drip(String, interval: Double)
    }

    let port: UInt16
    private let listener: LoopbackListener
    private let log = Log()

    /// The command lines received, shared with the serving thread.
    private final class Log: Sendable {
        let lines = Mutex<[String]>([])
    }

    init(script: @escaping @Sendable (String) -> Answer) throws {
        let log = log
        listener = try LoopbackListener(backlog: 4) { client, listener in
            Self.converse(client, listener, script: script, log: log)
        }
        port = listener.port
    }

    /// Every command line received, in order.
    var received: [String] { log.lines.withLock { $0 } }

    func stop() { listener.stop() }

    private static func converse(_ client: Int32, _ listener: LoopbackListener,
                                 script: (String) -> Answer, log: Log) {
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !listener.isStopping {
            guard listener.readable(client) else { continue }
            let n = recv(client, &buffer, buffer.count, 0)
            guard n > 0 else { return }
            pending += buffer[..<n]
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                pending.removeFirst(newline + 1)
                log.lines.withLock { $0.append(line) }
                let sent: Bool
                switch script(line) {
                case .text(let text): sent = listener.send(Array(text.utf8), to: client)
                case .drip(let text, let interval): sent = listener.send(Array(text.utf8), to: client, drip: interval)
                }
                guard sent else { return }
            }
        }
    }
}
