import FlowMeterCore
import FlowMeterExport
import Foundation
import FuzzSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// The listener's request path without a socket: arbitrary bytes through
/// NIO's HTTP/1 server pipeline (the codec the listener uses) on an embedded
/// channel, and every request head that comes out through the endpoint's
/// decision (policy, bearer token, method, path). A decision or a codec error,
/// never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let channel = EmbeddedChannel()
    defer { _ = try? channel.finish() }
    do {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(DecidingHandler())
        var buffer = channel.allocator.buffer(capacity: size)
        buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: size))
        try channel.writeInbound(buffer)
    } catch {
        return 0
    }
    return 0
}

let endpoint = HTTPEndpoint(
    access: .init(policy: .loopbackOnly, token: "fuzz-token"),
    metrics: { [] }, status: { Data() }, dashboard: { "" })

let clients = [IPAddress(parsing: "127.0.0.1"), IPAddress(parsing: "::1"), IPAddress(parsing: "192.0.2.1"), nil]

final class DecidingHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let authorization = head.headers.first(name: "authorization")
        let body = HTTPEndpoint.announcesBody(head)
        for client in clients {
            _ = endpoint.decide(client: client, method: head.method, uri: head.uri, authorization: authorization, announcesBody: body)
        }
    }
}
