import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A plain listening socket on 127.0.0.1 for fakes of what FlowMeter talks
/// to (an agent that is not FlowMeter's, a ControlPort that is not tor's):
/// one connection at a time, each handed to `converse`, closed after it.
/// `stop()` ends the serving thread and joins it; `converse` should return
/// soon after `isStopping` turns true.
public final class LoopbackListener: @unchecked Sendable {
    // @unchecked Sendable — Safe: `fd` and `converse` are immutable, `stopping`
    // is atomic; only the serving thread does socket I/O.
    public let port: UInt16
    private let fd: Int32
    private let converse: @Sendable (_ client: Int32, _ listener: LoopbackListener) -> Void
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    public init(backlog: Int32 = 8, converse: @escaping @Sendable (_ client: Int32, _ listener: LoopbackListener) -> Void) throws {
        self.converse = converse
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, bound, listen(fd, backlog) == 0 else {
            if fd >= 0 { close(fd) }
            throw POSIXError(.EADDRNOTAVAIL)
        }
        port = UInt16(bigEndian: addr.sin_port)
        Thread.detachNewThread { [self] in serve() }
    }

    public var isStopping: Bool { stopping.load(ordering: .relaxed) }

    public func stop() {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
        close(fd)
    }

    private func serve() {
        defer { finished.signal() }
        while !isStopping {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 50) > 0 else { continue }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { continue }
            converse(client, self)
            close(client)
        }
    }

    /// Waits up to 50 ms for `client` to have bytes; false when none came.
    public func readable(_ client: Int32) -> Bool {
        var p = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 50) > 0
    }

    /// Sends `bytes` whole, or one byte every `drip` seconds; false when the
    /// client went away or the listener is stopping.
    public func send(_ bytes: [UInt8], to client: Int32, drip: Double? = nil) -> Bool {
        guard let drip else {
            var sent = 0
            while sent < bytes.count && !isStopping {
                let n = bytes[sent...].withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { return false }
                sent += n
            }
            return sent == bytes.count
        }
        for byte in bytes {
            if isStopping { return false }
            var b = byte
            guard Glibc.send(client, &b, 1, Int32(MSG_NOSIGNAL)) == 1 else { return false }
            usleep(UInt32(drip * 1_000_000))
        }
        return true
    }
}
