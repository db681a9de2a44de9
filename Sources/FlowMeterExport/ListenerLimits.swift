import FlowMeterCore
import Foundation
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// The listener's limits, for a port other machines can reach: a peer the
/// policy refuses is answered 403 and closed before a byte of its request is
/// read; every other request is answered on its head (a body is never read);
/// a connection that sends nothing, trickles a header, sends a head over
/// `maxHeadBytes` or never ends its request is closed; and the number of open
/// connections stays below the file descriptor limit, closing the oldest idle
/// one to make room. Documented in docs/agent.md ("Limits of the HTTP listener").
public struct ListenerLimits: Sendable, Equatable {
    /// A connection from which nothing arrives for this long is closed.
    public var idleTimeout: TimeAmount
    /// The request head (request line and every header) must be complete
    /// this long after the connection opened: slowloris headers end here.
    public var headerTimeout: TimeAmount
    /// The whole request must be read this long after the connection opened.
    public var requestTimeout: TimeAmount
    /// Open connections at most; the next one closes the oldest idle one.
    public var maxConnections: Int
    /// The request line and headers together at most: a scrape's head is a
    /// few hundred bytes, a browser's with cookies a few KiB.
    public var maxHeadBytes: Int

    public init(idleTimeout: TimeAmount = .seconds(5), headerTimeout: TimeAmount = .seconds(5),
                requestTimeout: TimeAmount = .seconds(10), maxConnections: Int = ListenerLimits.connectionCap(),
                maxHeadBytes: Int = 32 << 10) {
        self.idleTimeout = idleTimeout; self.headerTimeout = headerTimeout
        self.requestTimeout = requestTimeout; self.maxConnections = max(1, maxConnections)
        self.maxHeadBytes = max(256, maxHeadBytes)
    }

    /// Half of what the descriptor limit leaves after 64 for the agent's own
    /// files (capture sockets, the store, logs), at most 512: a scrape every
    /// few seconds needs a handful, and accept(2) must never meet EMFILE,
    /// which NIO retries at full CPU.
    public static func connectionCap(fdLimit: Int = currentFDLimit()) -> Int {
        max(4, min(512, (fdLimit - 64) / 2))
    }

    public static func currentFDLimit() -> Int {
        var r = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &r) == 0 else { return 1024 }
        return Int(clamping: r.rlim_cur)  // RLIM_INFINITY is UInt64.max: clamped, a cap of 512
    }
}

/// The listener's open connections in the order they were opened, each
/// marked busy once its request head arrived. Touched only on the server's
/// single event loop (every child channel shares it), which each method
/// asserts: that is why the unchecked Sendable is sound.
final class ConnectionTable: @unchecked Sendable {
    private let loop: EventLoop
    private let cap: Int
    private var open: [(id: ObjectIdentifier, channel: Channel, busy: Bool)] = []
    init(loop: EventLoop, cap: Int) { self.loop = loop; self.cap = cap }

    var count: Int { loop.preconditionInEventLoop(); return open.count }

    /// Makes room for `channel`: at the cap the oldest idle connection is
    /// closed; if every one is busy (each closes after its answer) the newcomer is.
    func admit(_ channel: Channel) -> Bool {
        loop.preconditionInEventLoop()
        if open.count >= cap {
            guard let oldest = open.firstIndex(where: { !$0.busy }) else { return false }
            open.remove(at: oldest).channel.close(promise: nil)
        }
        let id = ObjectIdentifier(channel)
        open.append((id, channel, false))
        channel.closeFuture.whenComplete { [self] _ in
            loop.preconditionInEventLoop()
            open.removeAll { $0.id == id }
        }
        return true
    }

    func markBusy(_ channel: Channel, _ busy: Bool = true) {
        loop.preconditionInEventLoop()
        let id = ObjectIdentifier(channel)
        if let i = open.firstIndex(where: { $0.id == id }) { open[i].busy = busy }
    }
}

/// First in each connection's pipeline after the idle timer, in front of
/// the HTTP codec, so it works on raw bytes: it takes a place under the cap
/// and decides the policy when the connection becomes active, before anything
/// is read; it counts the head's bytes against `maxHeadBytes`, runs the
/// header and request timers (`RequestProgress` tells it how far the request
/// got), drops whatever follows an answer given on the head, and ends a
/// connection the idle timer reports.
final class ConnectionGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long a refused peer has to read its 403 before the close.
    static let refusalLinger: TimeAmount = .seconds(1)

    private let endpoint: HTTPEndpoint
    private let table: ConnectionTable
    private let limits: ListenerLimits
    /// Nothing more reaches the codec: refused by policy, or answered.
    private var refused = false
    private var headBytes = 0
    private var headComplete = false
    private var headerTimer: Scheduled<Void>?
    private var requestTimer: Scheduled<Void>?

    init(endpoint: HTTPEndpoint, table: ConnectionTable, limits: ListenerLimits) {
        self.endpoint = endpoint; self.table = table; self.limits = limits
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        guard table.admit(channel) else { context.close(promise: nil); return }
        let client = channel.remoteAddress?.ipAddress.flatMap { IPAddress(parsing: $0) }
        guard let client, endpoint.currentAccess.policy.admits(client) else {
            endpoint.refusedByPolicy.wrappingAdd(1, ordering: .relaxed)
            refuse(context)
            return
        }
        headerTimer = context.eventLoop.scheduleTask(in: limits.headerTimeout) { channel.close(promise: nil) }
        requestTimer = context.eventLoop.scheduleTask(in: limits.requestTimeout) { channel.close(promise: nil) }
        context.fireChannelActive()
    }

    /// 403 and a half-close, without parsing the request: what a refused
    /// scraper has always been told, now before its first byte is looked at.
    /// Whatever it sends is dropped unread (closing at once with it unread
    /// would reset the connection and lose the 403); it is closed after
    /// `refusalLinger` at most, and stays first in line for eviction.
    private func refuse(_ context: ChannelHandlerContext, status: String = "403 Forbidden",
                        body: String = "refused by the access policy\n") {
        refused = true
        headerTimer?.cancel()
        requestTimer?.cancel()
        var buffer = context.channel.allocator.buffer(capacity: 128)
        buffer.writeString("HTTP/1.1 \(status)\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n" + body)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(mode: .output, promise: nil) }
        requestTimer = context.eventLoop.scheduleTask(in: Self.refusalLinger) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refused { return }
        if !headComplete {
            headBytes += unwrapInboundIn(data).readableBytes
            guard headBytes <= limits.maxHeadBytes else {
                refuse(context, status: "431 Request Header Fields Too Large",
                       body: "a request head over \(limits.maxHeadBytes) bytes\n")
                return
            }
        }
        context.fireChannelRead(data)
    }

    func headReceived(_ channel: Channel) {
        headComplete = true
        headerTimer?.cancel()
        table.markBusy(channel)
    }

    /// The request was answered on its head while a body is announced: the
    /// body is never read (reading stops; closing at once with it unread would
    /// reset the connection and could lose the answer). The connection stays
    /// until the request timer ends it, idle, so it is the first to go when a
    /// newcomer needs its place; a peer that reconnects at once gains nothing.
    func answeredEarly(_ channel: Channel) {
        refused = true
        headerTimer?.cancel()
        table.markBusy(channel, false)
        channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
    }

    func requestEnded() { requestTimer?.cancel() }

    func channelInactive(context: ChannelHandlerContext) {
        headerTimer?.cancel()
        requestTimer?.cancel()
        if !refused { context.fireChannelInactive() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil); return }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// After the HTTP codec: tells the guard when the request head is complete
/// (the header timer stops) and when the request ended (the request timer stops).
final class RequestProgress: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    private let guardHandler: ConnectionGuard
    init(_ guardHandler: ConnectionGuard) { self.guardHandler = guardHandler }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: guardHandler.headReceived(context.channel)
        case .body: break
        case .end: guardHandler.requestEnded()
        }
        context.fireChannelRead(data)
    }
}

extension MetricsServer {
    /// The per-connection pipeline: idle timer, guard, HTTP codec, progress, handler.
    static func configure(_ channel: Channel, endpoint: HTTPEndpoint, table: ConnectionTable,
                          limits: ListenerLimits, handler: (ConnectionGuard) -> ChannelHandler) throws {
        let sync = channel.pipeline.syncOperations
        let guardHandler = ConnectionGuard(endpoint: endpoint, table: table, limits: limits)
        try sync.addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
        try sync.addHandler(guardHandler)
        try sync.configureHTTPServerPipeline(withErrorHandling: true)
        try sync.addHandler(RequestProgress(guardHandler))
        try sync.addHandler(handler(guardHandler))
    }
}
