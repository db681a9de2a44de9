import Foundation
import NIOCore
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterExport
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP client on loopback, to hold connections open and watch
/// when the server ends them.
final class LoopbackClient {
    let fd: Int32

    init?(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { Glibc.close(fd); return nil }
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) { _ = text.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) } }

    /// Reads until the server closes or `timeout` passes: what arrived, and
    /// whether the connection ended (EOF or reset) within the time.
    func readUntilClosed(timeout: Double) -> (text: String, closed: Bool) {
        var out = [UInt8]()
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            guard poll(&p, 1, ms) > 0 else { continue }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return (String(decoding: out, as: UTF8.self), true) }
            out += buffer[0..<n]
        }
        return (String(decoding: out, as: UTF8.self), false)
    }
}

/// The listener as a server facing other machines (docs/agent.md, "Limits of
/// the HTTP listener"), each limit shrunk so the test is quick.
@Suite struct ListenerLimitsTests {
    static func server(policy: AccessPolicy = .loopbackOnly, limits: ListenerLimits) throws -> MetricsServer {
        let endpoint = HTTPEndpoint(access: .init(policy: policy, token: nil),
                                    metrics: { Array("flowmeter_up 1\n".utf8) }, status: { Data("{}".utf8) })
        return try MetricsServer(host: "127.0.0.1", port: 0, endpoint: endpoint, limits: limits)
    }

    func scrape(_ port: Int) -> (text: String, closed: Bool) {
        guard let c = LoopbackClient(port: port) else { return ("connect failed", false) }
        c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        return c.readUntilClosed(timeout: 3)
    }

    @Test func theBearerSchemeIsCaseInsensitive() {
        let e = HTTPEndpoint(access: .init(policy: .loopbackOnly, token: "t0k"), metrics: { [] }, status: { Data() })
        let local = IPAddress(parsing: "127.0.0.1")
        for auth in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR  t0k"] {
            #expect(e.decide(client: local, method: .GET, uri: "/metrics", authorization: auth) == .metrics, "\(auth)")
        }
        for auth in ["Bearert0k", "Basic t0k", "Bearer ", "Bearer t0k "] {
            #expect(e.decide(client: local, method: .GET, uri: "/metrics", authorization: auth) == .refusedByToken, "\(auth)")
        }
    }

    @Test func aRefusedPeerIsAnswered403AndClosedWithoutSendingAByte() throws {
        let s = try Self.server(policy: AccessPolicy(rules: [AccessPolicy.Rule(parsing: "reject *")!]), limits: ListenerLimits())
        defer { s.close() }
        let c = try #require(LoopbackClient(port: s.boundPort))
        let r = c.readUntilClosed(timeout: 3)
        #expect(r.text.hasPrefix("HTTP/1.1 403"), "\(r.text)")
        #expect(r.closed)
    }

    @Test func anIdleConnectionIsClosedAfterTheIdleTimeout() throws {
        let s = try Self.server(limits: ListenerLimits(idleTimeout: .milliseconds(300), headerTimeout: .seconds(30), requestTimeout: .seconds(30)))
        defer { s.close() }
        let c = try #require(LoopbackClient(port: s.boundPort))
        let started = Date()
        #expect(c.readUntilClosed(timeout: 3).closed)
        #expect(Date().timeIntervalSince(started) < 2)
    }

    @Test func aTrickledHeaderIsClosedAtTheHeaderTimeout() throws {
        let s = try Self.server(limits: ListenerLimits(idleTimeout: .seconds(30), headerTimeout: .milliseconds(500), requestTimeout: .seconds(30)))
        defer { s.close() }
        let c = try #require(LoopbackClient(port: s.boundPort))
        c.send("GET /metrics HTTP/1.1\r\n")
        var closed = false
        for i in 0..<30 where !closed {  // a header byte every 100 ms: never idle, never done
            c.send("X-\(i): y\r\n")
            closed = c.readUntilClosed(timeout: 0.1).closed
        }
        #expect(closed, "a header still trickling after 3 s was not cut off")
    }

    @Test func aConnectionAfterA400IsClosed() throws {
        let s = try Self.server(limits: ListenerLimits(idleTimeout: .milliseconds(500), headerTimeout: .seconds(1), requestTimeout: .seconds(2)))
        defer { s.close() }
        let c = try #require(LoopbackClient(port: s.boundPort))
        c.send("NOT HTTP AT ALL\r\n\r\n")
        let r = c.readUntilClosed(timeout: 4)
        #expect(r.closed, "\(r.text)")
    }

    @Test func atTheCapTheOldestIdleConnectionMakesRoomForAScrape() throws {
        let s = try Self.server(limits: ListenerLimits(idleTimeout: .seconds(30), headerTimeout: .seconds(30),
                                                       requestTimeout: .seconds(30), maxConnections: 4))
        defer { s.close() }
        let idle = (0..<10).compactMap { _ in LoopbackClient(port: s.boundPort) }
        #expect(idle.count == 10)
        let started = Date()
        let r = scrape(s.boundPort)
        #expect(r.text.hasPrefix("HTTP/1.1 200"), "\(r.text)")
        #expect(Date().timeIntervalSince(started) < 3)
        #expect(idle[0].readUntilClosed(timeout: 2).closed, "the oldest idle connection was closed to make room")
    }

    @Test(arguments: [(nil, "Content-Length: 10000000", "413"), (nil, "Transfer-Encoding: chunked", "413"),
                      ("t0k", "Content-Length: 10000000", "401"), (nil, "Content-Length: 0", "200")])
    func aRequestIsAnsweredOnItsHeadWithoutWaitingForItsBody(token: String?, framing: String, status: String) throws {
        let endpoint = HTTPEndpoint(access: .init(policy: .loopbackOnly, token: token),
                                    metrics: { Array("flowmeter_up 1\n".utf8) }, status: { Data("{}".utf8) })
        let s = try MetricsServer(host: "127.0.0.1", port: 0, endpoint: endpoint, limits: ListenerLimits())
        defer { s.close() }
        let c = try #require(LoopbackClient(port: s.boundPort))
        let started = Date()
        c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\(framing)\r\n\r\n")
        let r = c.readUntilClosed(timeout: 0.5)
        #expect(r.text.hasPrefix("HTTP/1.1 " + status), "\(r.text)")
        #expect(Date().timeIntervalSince(started) < 1)
        #expect(endpoint.decide(client: IPAddress(parsing: "127.0.0.1"), method: .GET, uri: "/metrics",
                                authorization: token.map { "Bearer \($0)" }, announcesBody: status != "200") == (status == "200" ? .metrics : .bodyNotAllowed))
    }

    @Test func aRequestHeadOver32KiBIsAnswered431() throws {
        let s = try Self.server(limits: ListenerLimits())
        defer { s.close() }
        let c = try #require(LoopbackClient(port: s.boundPort))
        c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n")
        for i in 0..<40 { c.send("X-Filler-\(i): " + String(repeating: "a", count: 1000) + "\r\n") }
        let r = c.readUntilClosed(timeout: 3)
        #expect(r.text.hasPrefix("HTTP/1.1 431"), "\(r.text.prefix(80))")
    }

    @Test func theCapStaysBelowTheDescriptorLimit() {
        #expect(ListenerLimits.connectionCap(fdLimit: 1024) == 480)
        #expect(ListenerLimits.connectionCap(fdLimit: 100) == 18)
        #expect(ListenerLimits.connectionCap(fdLimit: 10) == 4)
        #expect(ListenerLimits.connectionCap(fdLimit: 1 << 20) == 512)
    }
}
