import FlowMeterConfig
import FlowMeterFormat
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One control connection: a non-blocking socket whose every wait (connect,
/// send, receive) ends at one deadline for the whole exchange, and a
/// `TorControlReplyReader` that bounds each reply.
final class TorControlConnection {
    private let fd: Int32
    private let deadline: ContinuousClock.Instant
    private var reader = TorControlReplyReader()

    init(_ endpoint: TorControlSettings.Endpoint, deadline: ContinuousClock.Instant) throws(TorControlError) {
        self.deadline = deadline
        let family: Int32
        switch endpoint {
        case .tcp(let address, _): family = address.isIPv4 ? AF_INET : AF_INET6
        case .unix: family = AF_UNIX
        }
        fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unreachable("socket(): \(String(cString: strerror(errno)))") }
        do { try connect(endpoint) } catch {
            Glibc.close(fd)
            throw error
        }
    }

    func close() { Glibc.close(fd) }

    /// Sends one command line and returns its reply; a status other than 250 throws.
    func command(_ line: String) throws(TorControlError) -> TorControlReply {
        try send(Array((line + "\r\n").utf8))
        let reply = try receiveReply()
        guard reply.isSuccess else {
            // Whatever answers on the control port wrote this text: it
            // reaches the log and the views printable and short.
            let summary = Format.printable(reply.summary, limit: 200)
            if reply.status == 515 { throw .refused(summary) }
            throw .protocolError(summary)
        }
        return reply
    }

    private func connect(_ endpoint: TorControlSettings.Endpoint) throws(TorControlError) {
        let rc: Int32
        // Safe: each sockaddr_* is viewed as the sockaddr header it starts
        // with, for connect(2) only, with its own size as the length.
        switch endpoint {
        case .tcp(let address, let port) where address.isIPv4:
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            sa.sin_addr = in_addr(s_addr: address.ipv4Value.bigEndian)
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        case .tcp(_, let port):
            // The torrc reader keeps only loopback control ports: for IPv6, ::1.
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            sa.sin6_addr = in6addr_loopback
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        case .unix(let path):
            var sa = sockaddr_un()
            sa.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: sa.sun_path) else { throw .unreachable("\(path): socket path too long") }
            // Safe: bytes.count < the size of sun_path (checked above), so the
            // copy stays inside it and the zeroed rest terminates the path.
            withUnsafeMutableBytes(of: &sa.sun_path) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
            }
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        }
        if rc == 0 { return }
        guard errno == EINPROGRESS || errno == EAGAIN else { throw .unreachable("\(endpoint): \(String(cString: strerror(errno)))") }
        try wait(for: Int16(POLLOUT), doing: "connecting to \(endpoint)")
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        guard error == 0 else { throw .unreachable("\(endpoint): \(String(cString: strerror(error)))") }
    }

    private func send(_ bytes: [UInt8]) throws(TorControlError) {
        var sent = 0
        while sent < bytes.count {
            // Safe: sent < bytes.count (the loop's condition): pointer and length stay inside the buffer.
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            if n < 0 && errno == EINTR { continue }
            guard n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) else {
                throw .unreachable("send: \(String(cString: strerror(errno)))")
            }
            try wait(for: Int16(POLLOUT), doing: "sending")
        }
    }

    private func receiveReply() throws(TorControlError) -> TorControlReply {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let reply = try reader.nextReply() { return reply }
            try wait(for: Int16(POLLIN), doing: "waiting for tor's answer")
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) { continue }
            guard n > 0 else {
                throw .unreachable(n == 0 ? "tor closed the connection" : "recv: \(String(cString: strerror(errno)))")
            }
            reader.append(buffer[..<n])
        }
    }

    /// Polls until the socket is ready for `events` or the deadline passes.
    private func wait(for events: Int16, doing what: String) throws(TorControlError) {
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { throw .timedOut("the deadline (\(what))") }
            let ms = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1
            var p = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&p, 1, Int32(clamping: ms))
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .unreachable("poll: \(String(cString: strerror(errno)))") }
            if n > 0 { return }
        }
    }
}
