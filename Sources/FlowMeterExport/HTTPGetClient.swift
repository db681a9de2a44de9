import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 GET over plain TCP, on SwiftNIO's HTTP/1 client codec (the
/// package already builds NIO for the agent's listener, so a client costs no
/// dependency). For the control plane's few requests: `flowmeter fleet`
/// asking a Prometheus-compatible query endpoint; `flowmeter top` reading an
/// agent's `/api/v1/status` could use it too. Blocking: call it from a
/// thread of your own, never from an event loop.
///
/// No TLS: reach a remote endpoint through a tunnel or a local proxy
/// (docs in deploy/fleet/README.md). Redirects are not followed.
public struct HTTPGetClient: Sendable {
    /// `http://HOST[:PORT][/BASE]`: BASE prefixes every request path (e.g.
    /// VictoriaMetrics cluster's `/select/0/prometheus`).
    public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        /// "" or a path starting with `/`, without a trailing slash.
        public var basePath: String

        public init?(url: String) {
            guard let u = URLComponents(string: url), u.scheme?.lowercased() == "http",
                  let h = u.host, !h.isEmpty, u.query == nil, u.fragment == nil, u.user == nil else { return nil }
            host = h.hasPrefix("[") && h.hasSuffix("]") ? String(h.dropFirst().dropLast()) : h
            port = u.port ?? 80
            guard (1...65535).contains(port) else { return nil }
            var path = u.percentEncodedPath
            while path.hasSuffix("/") { path.removeLast() }
            basePath = path
        }

        public var description: String {
            "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(basePath)"
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var contentType: String?
        public var body: [UInt8]
    }

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    public let endpoint: Endpoint
    /// Extra request headers, e.g. `("authorization", "Bearer …")`.
    public var headers: [(String, String)]
    /// A larger answer fails instead of filling memory.
    public var maxBodyBytes: Int

    public init(endpoint: Endpoint, headers: [(String, String)] = [], maxBodyBytes: Int = 256 << 20) {
        self.endpoint = endpoint; self.headers = headers; self.maxBodyBytes = maxBodyBytes
    }

    /// GETs `basePath + path` (with `?query` already percent-encoded) and
    /// waits at most `timeout` seconds for the whole answer.
    public func get(_ pathAndQuery: String, timeout: TimeInterval) throws -> Response {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = loop.makePromise(of: Response.self)
        let limit = maxBodyBytes
        let endpoint = self.endpoint
        let wait = TimeAmount.milliseconds(Int64(max(0.001, timeout) * 1000))
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: endpoint.basePath + pathAndQuery)
        head.headers.add(name: "host", value: endpoint.host.contains(":") ? "[\(endpoint.host)]:\(endpoint.port)" : "\(endpoint.host):\(endpoint.port)")
        head.headers.add(name: "accept", value: "application/json")
        head.headers.add(name: "connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        let request = head
        let timer = loop.scheduleTask(in: wait) {
            promise.fail(Failure("no complete answer from \(endpoint) within \(Int(timeout.rounded())) s"))
        }
        let connected = ClientBootstrap(group: loop)
            .connectTimeout(wait)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise, limit: limit))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
        connected.whenFailure { promise.fail(Failure("cannot connect to \(endpoint): \(Self.reason($0))")) }
        connected.whenSuccess { channel in
            channel.write(HTTPClientRequestPart.head(request), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            // Whatever ends the request (answer, error, timeout) closes the connection.
            promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
        defer { timer.cancel() }
        return try promise.futureResult.wait()
    }

    /// The first attempt's error, not NIO's whole list of them.
    static func reason(_ error: Error) -> String {
        if let e = error as? NIOConnectionError, let first = e.connectionErrors.first { return "\(first.error)" }
        return "\(error)"
    }
}

/// Gathers one response; completes the promise at its end, on an error, or
/// when the peer closes first.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<HTTPGetClient.Response>
    private let limit: Int
    private var status = 0
    private var contentType: String? = nil
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<HTTPGetClient.Response>, limit: Int) {
        self.promise = promise; self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            status = Int(h.status.code)
            contentType = h.headers.first(name: "content-type")
        case .body(var buffer):
            guard body.count + buffer.readableBytes <= limit else {
                promise.fail(HTTPGetClient.Failure("the answer is larger than \(limit) bytes"))
                context.close(promise: nil)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            promise.succeed(.init(status: status, contentType: contentType, body: body))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(HTTPGetClient.Failure("\(error)"))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A no-op when the answer was complete (a promise completes once).
        promise.fail(HTTPGetClient.Failure("the connection closed before the answer was complete"))
        context.fireChannelInactive()
    }
}
