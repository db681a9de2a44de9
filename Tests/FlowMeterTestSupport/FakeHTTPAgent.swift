import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Something answering on an agent's address that is not FlowMeter's agent,
/// for `top`'s tests: a plain socket on 127.0.0.1, one connection at a time;
/// each request (read up to its blank line) gets `answer`, sent at once or
/// one byte every `drip` seconds. Stopped, its thread joined, by `stop()`.
public final class FakeHTTPAgent: Sendable {
    public let port: Int
    private let listener: LoopbackListener

    /// An HTTP/1.1 200 answer with `body` and its Content-Length.
    public static func ok(_ body: String) -> [UInt8] {
        Array("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)".utf8)
    }

    public init(answer: [UInt8], drip: Double? = nil) throws {
        listener = try LoopbackListener { client, listener in
            if Self.readHead(client, listener) { _ = listener.send(answer, to: client, drip: drip) }
        }
        port = Int(listener.port)
    }

    public func stop() { listener.stop() }

    private static func readHead(_ client: Int32, _ listener: LoopbackListener) -> Bool {
        var got = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !listener.isStopping && got.count < 65_536 {
            guard listener.readable(client) else { continue }
            let n = recv(client, &buffer, buffer.count, 0)
            guard n > 0 else { return false }
            got += buffer[..<n]
            if String(decoding: got, as: UTF8.self).contains("\r\n\r\n") { return true }
        }
        return false
    }
}

/// Status documents for `top`'s tests, built as JSON the way the agent's are.
public enum StatusDocuments {
    /// A status document with `rows` category cells and `name` as a relay,
    /// an interface, a reason, a quota name and a Tor instant.
    public static func status(rows: Int = 2, name: String = "guard1") -> String {
        let document: [String: Any] = [
            "schema": 1, "read_at": "2026-11-27T12:00:00Z", "lower_bound": true, "lower_bound_reasons": [name],
            "categories": [["relay": name, "category": "or_inbound", "direction": "in", "bytes": 1000]],
            "connections": [["relay": name, "category": "or_inbound", "active": UInt64.max, "peak": UInt64.max, "unanswered_attempts": 1]],
            "quotas": [["name": name, "used_bytes": 5, "limit_bytes": 10, "used_fraction": 1e300, "tor_soft_limit": name,
                        "projected_low_bytes": -1e308, "projected_high_bytes": 1e308, "period_end": name]],
            "interfaces": [["name": name, "up": true]],
        ]
        let data = try! JSONSerialization.data(withJSONObject: document, options: .sortedKeys)
        // The other cells spliced in as text: JSONSerialization of 300,000 takes long in a debug build.
        let more = (1..<max(2, rows)).map { #"{"bytes":\#($0),"category":"c\#($0)","direction":"out","relay":"r\#($0 % 1000)"}"# }
        let text = String(decoding: data, as: UTF8.self)
        let marker = #""direction":"in","relay":"#
        guard let cell = text.range(of: marker), let end = text[cell.upperBound...].firstIndex(of: "}") else { return text }
        return String(text[...end]) + "," + more.joined(separator: ",") + String(text[text.index(after: end)...])
    }

    public static let hostile = "evil\u{1B}]0;owned\u{07}\u{1B}]52;c;cm0gLXJmIH4=\u{07}\u{1B}[2J\u{9B}31m\u{7F}\u{202E}\r\nname"
}
