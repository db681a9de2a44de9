import Foundation

/// One GET from an agent's listener, for `flowmeter top`: one deadline for
/// connect, request and answer together and a bound on the answer's size,
/// because whatever listens at `--agent` may drip its answer or flood it.
/// The HTTP is SwiftNIO's, through `HTTPGetClient` (as `flowmeter fleet`'s).
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
        guard let colon = agent.lastIndex(of: ":"), let p = UInt16(agent[agent.index(after: colon)...]), p > 0 else { return nil }
        var h = String(agent[..<colon])
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        guard !h.isEmpty, !h.contains("/"), !h.contains(" ") else { return nil }
        host = h; port = p; self.token = token
    }

    /// The status code and body of `GET path`.
    public func get(_ path: String) throws(Failure) -> (status: Int, body: [UInt8]) {
        let bracketed = host.contains(":") ? "[\(host)]" : host
        guard let endpoint = HTTPGetClient.Endpoint(url: "http://\(bracketed):\(port)") else { throw Failure("'\(host)' is not a host") }
        let client = HTTPGetClient(endpoint: endpoint, headers: token.map { [("authorization", "Bearer \($0)")] } ?? [],
                                   maxBodyBytes: maxResponseBytes)
        let seconds = Double(deadline.components.seconds) + Double(deadline.components.attoseconds) / 1e18
        do {
            let answer = try client.get(path, timeout: seconds)
            return (answer.status, answer.body)
        } catch let e as HTTPGetClient.Failure where e.description.hasPrefix("no complete answer") {
            throw Failure("no complete answer within \(deadline.components.seconds) s (an overloaded agent, or not a FlowMeter agent)")
        } catch let e as HTTPGetClient.Failure where e.description.hasPrefix("the answer is larger than") {
            throw Failure("the answer is over \(maxResponseBytes >> 20) MiB, far more than a status document")
        } catch {
            throw Failure("\(error)")
        }
    }
}
