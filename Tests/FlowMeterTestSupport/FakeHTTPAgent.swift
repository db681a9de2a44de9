import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Something answering on an agent's address that is not FlowMeter's agent,
/// for `top`'s tests: a plain socket on 127.0.0.1, one connection at a time;
/// each request (read up to its blank line) gets `answer`, sent at once or
/// one byte every `drip` seconds. Stopped, its thread joined, by `stop()`.
public final class FakeHTTPAgent: @unchecked Sendable {
    // @unchecked Sendable — Safe: `fd`, `answer` and `drip` are immutable;
    // `stopping` is atomic; only the serving thread does socket I/O.
    public let port: Int
    private let fd: Int32
    private let answer: [UInt8]
    private let drip: Double?
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// An HTTP/1.1 200 answer with `body` and its Content-Length.
    public static func ok(_ body: String) -> [UInt8] {
        Array("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)".utf8)
    }

    public init(answer: [UInt8], drip: Double? = nil) throws {
        self.answer = answer
        self.drip = drip
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, bound, listen(fd, 8) == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread.detachNewThread { [self] in serve() }
    }

    public func stop() {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
        close(fd)
    }

    private func serve() {
        defer { finished.signal() }
        while !stopping.load(ordering: .relaxed) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            if readHead(client) { send(to: client) }
            close(client)
        }
    }

    private func readHead(_ client: Int32) -> Bool {
        var got = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopping.load(ordering: .relaxed) && got.count < 65_536 {
            var p = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let n = recv(client, &buffer, buffer.count, 0)
            guard n > 0 else { return false }
            got += buffer[..<n]
            if String(decoding: got, as: UTF8.self).contains("\r\n\r\n") { return true }
        }
        return false
    }

    private func send(to client: Int32) {
        guard let drip else {
            var sent = 0
            while sent < answer.count && !stopping.load(ordering: .relaxed) {
                let n = answer[sent...].withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { return }
                sent += n
            }
            return
        }
        for byte in answer where !stopping.load(ordering: .relaxed) {
            var b = byte
            guard Glibc.send(client, &b, 1, Int32(MSG_NOSIGNAL)) == 1 else { return }
            usleep(UInt32(drip * 1_000_000))
        }
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
