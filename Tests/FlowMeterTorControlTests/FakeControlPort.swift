import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Something answering on a "ControlPort" on 127.0.0.1 that is not tor: a
/// plain socket, one connection at a time, each command line answered by
/// `script`; it keeps every line it was sent, so a test can say what
/// FlowMeter gave away. Stopped (its thread joined) by `stop()`.
final class FakeControlPort: @unchecked Sendable {
    // @unchecked Sendable — Safe: `fd` and `script` are immutable, `lines` is a Mutex,
    // `stopping` atomic; the serving thread is the only one doing socket I/O.
    enum Answer: Sendable {
        case text(String)
        /// The text one byte at a time, `interval` seconds apart.
        case drip(String, interval: Double)
    }

    let port: UInt16
    private let fd: Int32
    private let script: @Sendable (String) -> Answer
    private let lines = Mutex<[String]>([])
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(script: @escaping @Sendable (String) -> Answer) throws {
        self.script = script
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, bound, listen(fd, 4) == 0 else { throw POSIXError(.EADDRNOTAVAIL) }
        port = UInt16(bigEndian: addr.sin_port)
        Thread.detachNewThread { [self] in serve() }
    }

    /// Every command line received, in order.
    var received: [String] { lines.withLock { $0 } }

    func stop() {
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
            converse(client)
            close(client)
        }
    }

    private func converse(_ client: Int32) {
        var pending = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !stopping.load(ordering: .relaxed) {
            var p = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let n = recv(client, &buffer, buffer.count, 0)
            guard n > 0 else { return }
            pending += buffer[..<n]
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                pending.removeFirst(newline + 1)
                lines.withLock { $0.append(line) }
                guard answer(script(line), to: client) else { return }
            }
        }
    }

    /// false when the client went away or the port is stopping.
    private func answer(_ a: Answer, to client: Int32) -> Bool {
        switch a {
        case .text(let text):
            let bytes = Array(text.utf8)
            return bytes.isEmpty || send(client, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count
        case .drip(let text, let interval):
            for byte in text.utf8 {
                if stopping.load(ordering: .relaxed) { return false }
                var b = byte
                guard send(client, &b, 1, Int32(MSG_NOSIGNAL)) == 1 else { return false }
                usleep(UInt32(interval * 1_000_000))
            }
            return true
        }
    }
}
