import FlowMeterCore
import FlowMeterCapture
import FlowMeterAccounting
import FlowMeterReports
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Who may ask and what they get: the access policy and token (replaced on
/// reload), the two renderings, and counts of refusals.
public final class HTTPEndpoint: Sendable {
    public struct Access: Sendable {
        public var policy: AccessPolicy
        /// The bearer token, if one is required (read from a file by the agent).
        public var token: String?
        public init(policy: AccessPolicy, token: String?) { self.policy = policy; self.token = token }
    }

    private let access: Mutex<Access>
    let metrics: @Sendable () -> [UInt8]
    let status: @Sendable () -> Data
    let dashboard: (@Sendable () -> String)?
    let refusedByPolicy = Atomic<UInt64>(0)
    let refusedByToken = Atomic<UInt64>(0)

    public init(access: Access, metrics: @escaping @Sendable () -> [UInt8], status: @escaping @Sendable () -> Data,
                dashboard: (@Sendable () -> String)? = nil) {
        self.access = Mutex(access)
        self.metrics = metrics
        self.status = status
        self.dashboard = dashboard
    }

    public func replaceAccess(_ a: Access) { access.withLock { $0 = a } }
    public var currentAccess: Access { access.withLock { $0 } }
    public var refusals: (policy: UInt64, token: UInt64) {
        (refusedByPolicy.load(ordering: .relaxed), refusedByToken.load(ordering: .relaxed))
    }

    /// The decision for one request, separate from NIO so it can be tested
    /// as a table.
    public enum Decision: Equatable, Sendable {
        case metrics, status, dashboard, notFound, methodNotAllowed
        /// A request that announces a body: none of the endpoints takes one.
        case bodyNotAllowed
        case refusedByPolicy, refusedByToken
    }

    /// Decided on the request head alone, in this order: policy, token,
    /// method, body, path. A request refused here never has its body read.
    public func decide(client: IPAddress?, method: HTTPMethod, uri: String, authorization: String?,
                       announcesBody: Bool = false) -> Decision {
        let a = currentAccess
        guard let client, a.policy.admits(client) else {
            refusedByPolicy.wrappingAdd(1, ordering: .relaxed)
            return .refusedByPolicy
        }
        if let token = a.token {
            guard let presented = authorization.flatMap(Self.presentedToken),
                  Self.constantTimeEqual(Array(presented.utf8), Array(token.utf8)) else {
                refusedByToken.wrappingAdd(1, ordering: .relaxed)
                return .refusedByToken
            }
        }
        guard method == .GET || method == .HEAD else { return .methodNotAllowed }
        if announcesBody { return .bodyNotAllowed }
        let path = uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? uri
        switch path {
        case "/metrics": return .metrics
        case "/api/v1/status": return .status
        case "/": return dashboard == nil ? .notFound : .dashboard
        default: return .notFound
        }
    }

    /// Whether a request head says a body follows: a Content-Length other
    /// than 0, or any Transfer-Encoding (RFC 9112 §6.3).
    public static func announcesBody(_ head: HTTPRequestHead) -> Bool {
        head.headers.contains(name: "transfer-encoding")
            || head.headers["content-length"].contains { $0.trimmingCharacters(in: .whitespaces) != "0" }
    }

    /// The credentials of `Bearer <token>`; the scheme is case-insensitive
    /// (RFC 7235 §2.1), so `bearer` and `BEARER` are the same scheme.
    static func bearerToken(_ authorization: String?) -> Substring? {
        guard let auth = authorization, let space = auth.firstIndex(of: " "),
              auth[..<space].lowercased() == "bearer" else { return nil }
        let credentials = auth[space...].drop { $0 == " " }
        return credentials.isEmpty ? nil : credentials
    }

    /// Compares without an early exit, so timing does not tell how much of a
    /// guessed token was right.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }
}

/// The HTTP/1.1 listener: SwiftNIO's HTTP/1 codec and one small handler,
/// on one event-loop thread (a scrape every few seconds needs no more).
public final class MetricsServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: Channel
    public let boundPort: Int

    public init(host: String, port: Int, endpoint: HTTPEndpoint, limits: ListenerLimits = ListenerLimits()) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // One loop serves the listener and every connection: the table relies on it.
        let table = ConnectionTable(loop: group.next(), cap: limits.maxConnections)
        do {
            // A backlog for bursts: hundreds of refused or answered peers
            // reconnecting at once must not fill it and drop a scrape's SYN
            // (the kernel caps it at net.core.somaxconn); many accepts per wake-up.
            let channel = try ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.maxMessagesPerRead, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try MetricsServer.configure(channel, endpoint: endpoint, table: table, limits: limits) { guardHandler in
                            RequestHandler(endpoint: endpoint, guardHandler: guardHandler)
                        }
                    }
                }
                .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port).wait()
            self.group = group
            self.channel = channel
            boundPort = channel.localAddress?.port ?? port
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
    }

    public func close() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

/// Answers each connection's one request as soon as its head is complete:
/// every decision needs the head only, so a body (which none of the
/// endpoints takes) is never waited for, and a trickled one holds nothing.
private final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let endpoint: HTTPEndpoint
    private let guardHandler: ConnectionGuard
    private var answered = false

    init(endpoint: HTTPEndpoint, guardHandler: ConnectionGuard) {
        self.endpoint = endpoint; self.guardHandler = guardHandler
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Body parts and the end are never needed: the answer went out at the head.
        guard case .head(let h) = unwrapInboundIn(data), !answered else { return }
        answered = true
        respond(context: context, to: h)
    }

    private func respond(context: ChannelHandlerContext, to request: HTTPRequestHead) {
        let client = context.channel.remoteAddress?.ipAddress.flatMap { IPAddress(parsing: $0) }
        let body = HTTPEndpoint.announcesBody(request)
        let decision = endpoint.decide(client: client, method: request.method, uri: request.uri,
                                       authorization: request.headers.first(name: "authorization"), announcesBody: body)
        var headers = HTTPHeaders()
        let status: HTTPResponseStatus
        var content = context.channel.allocator.buffer(capacity: 0)
        switch decision {
        case .metrics:
            status = .ok
            headers.add(name: "content-type", value: PrometheusRenderer.contentType)
            content.writeBytes(endpoint.metrics())
        case .status:
            status = .ok
            headers.add(name: "content-type", value: "application/json")
            content.writeBytes(endpoint.status())
        case .dashboard:
            status = .ok
            headers.add(name: "content-type", value: "text/html; charset=utf-8")
            headers.add(name: "cache-control", value: "no-store")
            headers.add(name: "content-security-policy", value: DashboardAccess.contentSecurityPolicy)
            content.writeString(endpoint.dashboard?() ?? "")
        case .notFound:
            status = .notFound
            content.writeString("not found: try /metrics or /api/v1/status\n")
        case .methodNotAllowed:
            status = .methodNotAllowed
            headers.add(name: "allow", value: "GET, HEAD")
        case .bodyNotAllowed:
            status = .payloadTooLarge
            content.writeString("these endpoints take no request body\n")
        case .refusedByPolicy:
            status = .forbidden
            content.writeString("refused by the access policy\n")
        case .refusedByToken:
            status = .unauthorized
            headers.add(name: "www-authenticate", value: DashboardAccess.challenge(uri: request.uri))
            content.writeString("a valid bearer token is required\n")
        }
        headers.add(name: "content-length", value: String(content.readableBytes))
        headers.add(name: "connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD && content.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(content))), promise: nil)
        }
        // One request per connection: scrapes are seconds apart, and closing
        // keeps the handler free of keep-alive state. A body still on its way
        // is left unread (`ConnectionGuard.answeredEarly`).
        let channel = context.channel
        let flushed = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if body {
            guardHandler.answeredEarly(channel)
            flushed.whenComplete { _ in channel.close(mode: .output, promise: nil) }
        } else {
            flushed.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
