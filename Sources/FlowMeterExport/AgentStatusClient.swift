import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One GET from an agent's listener, for `flowmeter top`: plain HTTP/1.1
/// (the agent answers once and closes), with one deadline for connect,
/// request and answer together and a bound on the answer's size, because
/// whatever listens at `--agent` may drip its answer or flood it.
public struct AgentStatusClient: Sendable {
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public let host: String
    public let port: UInt16
    public let token: String?
    /// Connect, request and the whole answer.
    public var deadline: Duration = .seconds(5)
    /// A status document is tens of KiB; an answer over this is refused.
    public var maxResponseBytes = 4 << 20

    /// nil unless `agent` is HOST:PORT (`[v6]:PORT` for IPv6).
    public init?(agent: String, token: String?) {
        guard let colon = agent.lastIndex(of: ":"), let p = UInt16(agent[agent.index(after: colon)...]) else { return nil }
        var h = String(agent[..<colon])
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        guard !h.isEmpty else { return nil }
        host = h; port = p; self.token = token
    }

    /// The status code and body of `GET path`.
    public func get(_ path: String) throws(Failure) -> (status: Int, body: [UInt8]) {
        let end = ContinuousClock.now + deadline
        let fd = try connect(until: end)
        defer { close(fd) }
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\nAccept: application/json\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        try send(fd, Array((request + "\r\n").utf8), until: end)
        return try receive(fd, until: end)
    }

    private func connect(until end: ContinuousClock.Instant) throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { throw Failure("cannot resolve \(host)") }
        // Safe: the list is read only until freeaddrinfo (deferred here).
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                        first.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure("socket: \(String(cString: strerror(errno)))") }
        if Glibc.connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else {
                let reason = String(cString: strerror(errno))
                close(fd)
                throw Failure("cannot connect: \(reason)")
            }
            do { try wait(fd, for: Int16(POLLOUT), until: end) } catch { close(fd); throw error }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { close(fd); throw Failure("cannot connect: \(String(cString: strerror(error)))") }
        }
        return fd
    }

    private func send(_ fd: Int32, _ bytes: [UInt8], until end: ContinuousClock.Instant) throws(Failure) {
        var sent = 0
        while sent < bytes.count {
            // Safe: sent < bytes.count (the loop's condition): pointer and length stay inside the buffer.
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            guard n < 0 && (errno == EAGAIN || errno == EINTR) else { throw Failure("send: \(String(cString: strerror(errno)))") }
            try wait(fd, for: Int16(POLLOUT), until: end)
        }
    }

    /// Reads until the answer is complete (its Content-Length) or the agent
    /// closes, within the deadline and the size bound; each byte is scanned once.
    private func receive(_ fd: Int32, until end: ContinuousClock.Instant) throws(Failure) -> (status: Int, body: [UInt8]) {
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var head: HTTPAnswer.Head? = nil
        while true {
            if head == nil, let h = try HTTPAnswer.Head(response, from: max(0, response.count - buffer.count - 3)) { head = h }
            if let head, let length = head.contentLength, response.count >= head.bodyStart + length {
                return (head.status, Array(response[head.bodyStart..<head.bodyStart + length]))
            }
            try wait(fd, for: Int16(POLLIN), until: end)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            if n < 0 { throw Failure("recv: \(String(cString: strerror(errno)))") }
            if n == 0 {
                guard let answer = try HTTPAnswer(response, closed: true) else { throw Failure("the answer was cut short") }
                return (answer.status, answer.body)
            }
            guard response.count + n <= maxResponseBytes else {
                throw Failure("the answer is over \(maxResponseBytes >> 20) MiB, far more than a status document")
            }
            response += buffer[..<n]
        }
    }

    private func wait(_ fd: Int32, for events: Int16, until end: ContinuousClock.Instant) throws(Failure) {
        while true {
            let left = ContinuousClock.now.duration(to: end)
            guard left > .zero else {
                throw Failure("no complete answer within \(deadline.components.seconds) s (an overloaded agent, or not a FlowMeter agent)")
            }
            let ms = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1
            var p = pollfd(fd: fd, events: events, revents: 0)
            let n = poll(&p, 1, Int32(clamping: ms))
            if n > 0 { return }
            if n < 0 && errno != EINTR { throw Failure("poll: \(String(cString: strerror(errno)))") }
        }
    }
}

/// A complete HTTP/1.1 answer as the agent sends it: a status line, headers,
/// and a body of Content-Length bytes or up to the close. Chunked answers are
/// refused (the agent never sends one).
public struct HTTPAnswer: Sendable, Equatable {
    public var status: Int
    public var body: [UInt8]

    /// The status line and headers, once the blank line after them arrived.
    public struct Head: Sendable, Equatable {
        public var status: Int
        public var contentLength: Int?
        /// Where the body starts in the bytes.
        public var bodyStart: Int

        /// nil until `bytes` hold the blank line (searched from `from`).
        public init?(_ bytes: [UInt8], from: Int = 0) throws(AgentStatusClient.Failure) {
            guard let split = Self.blankLine(bytes, from: from) else { return nil }
            let lines = String(decoding: bytes[..<split], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
            let statusLine = lines.first?.split(separator: " ") ?? []
            guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), statusLine[1].count == 3,
                  let code = Int(statusLine[1]), (100...599).contains(code) else {
                throw AgentStatusClient.Failure("not an HTTP answer")
            }
            status = code
            bodyStart = split + 4
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let name = line[..<colon].lowercased(), value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                if name == "transfer-encoding" { throw AgentStatusClient.Failure("a chunked answer, which the agent never sends") }
                if name == "content-length" {
                    guard let n = Int(value), n >= 0, contentLength == nil || contentLength == n else {
                        throw AgentStatusClient.Failure("a bad Content-Length")
                    }
                    contentLength = n
                }
            }
        }

        private static func blankLine(_ b: [UInt8], from: Int) -> Int? {
            guard b.count >= 4 else { return nil }
            var i = max(0, from)
            while i + 3 < b.count {
                if b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
                i += 1
            }
            return nil
        }
    }

    /// nil while more bytes are needed (the connection still open: `closed` false).
    public init?(_ bytes: [UInt8], closed: Bool) throws(AgentStatusClient.Failure) {
        guard let head = try Head(bytes) else {
            if closed { throw AgentStatusClient.Failure(bytes.isEmpty ? "the agent closed without an answer" : "not an HTTP answer") }
            return nil
        }
        let available = bytes.count - head.bodyStart
        if let length = head.contentLength {
            guard available >= length else {
                if closed { throw AgentStatusClient.Failure("the answer was cut short") }
                return nil
            }
            status = head.status; body = Array(bytes[head.bodyStart..<head.bodyStart + length])
        } else {
            guard closed else { return nil }
            status = head.status; body = Array(bytes[head.bodyStart...])
        }
    }
}
