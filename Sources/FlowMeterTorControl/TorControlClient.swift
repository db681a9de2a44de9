import FlowMeterConfig
import FlowMeterFormat
import Foundation

/// Why tor's control port could not be read; the poller logs one line per
/// change of this and keeps counting packets.
public enum TorControlError: Error, Equatable, CustomStringConvertible {
    case unreachable(String)
    case noUsableAuthentication(String)
    case cookie(String)
    case refused(String)
    case protocolError(String)
    case timedOut(String)

    public var description: String {
        switch self {
        case .unreachable(let s): return "control port unreachable: \(s)"
        case .noUsableAuthentication(let s): return "no authentication FlowMeter will use: \(s)"
        case .cookie(let s): return "cookie: \(s)"
        case .refused(let s): return "tor refused: \(s)"
        case .protocolError(let s): return "unexpected answer: \(s)"
        case .timedOut(let s): return "no complete answer within \(s)"
        }
    }

    /// The kind, without details that change from one attempt to the next.
    public var kind: String {
        switch self {
        case .unreachable: return "unreachable"
        case .noUsableAuthentication: return "no-auth"
        case .cookie: return "cookie"
        case .refused: return "refused"
        case .protocolError: return "protocol"
        case .timedOut: return "timeout"
        }
    }
}

/// A blocking client for tor's control protocol (control-spec.txt), used on
/// the poller's own thread and by `forecast`/`check`, never on the packet
/// path: connect, PROTOCOLINFO, authentication (`TorControlAuthentication`),
/// one GETINFO, QUIT. The whole exchange with one endpoint has one deadline
/// and every reply is bounded in size, so a control port that drips or
/// floods its answer costs at most `timeoutSeconds`.
///
/// It asks only for the relay's own totals and identity: nothing it reads
/// names a peer.
public struct TorControlClient: Sendable {
    public static let keys = ["accounting/enabled", "accounting/hibernating", "accounting/bytes", "accounting/bytes-left",
                              "accounting/interval-start", "accounting/interval-wake", "accounting/interval-end",
                              "traffic/read", "traffic/written", "fingerprint"]

    public var settings: TorControlSettings
    /// The whole exchange with one endpoint, connect to QUIT.
    public var timeoutSeconds: Double

    public init(settings: TorControlSettings, timeoutSeconds: Double = 3) {
        self.settings = settings; self.timeoutSeconds = timeoutSeconds
    }

    /// GETINFO of `keys` from the first endpoint that answers.
    public func getinfo(_ keys: [String] = TorControlClient.keys) throws(TorControlError) -> [String: String] {
        var lastError = TorControlError.unreachable("no endpoint")
        for endpoint in settings.endpoints {
            let connection: TorControlConnection
            do {
                connection = try TorControlConnection(endpoint, deadline: .now + .milliseconds(Int64(timeoutSeconds * 1000)))
            } catch {
                lastError = error
                continue
            }
            defer { connection.close() }
            try authenticate(connection)
            let reply: TorControlReply
            do {
                reply = try connection.command("GETINFO " + keys.joined(separator: " "))
            } catch .protocolError(let status) where status.hasPrefix("55") && keys.contains("fingerprint") {
                // 551 "Not running in server mode" (no identity yet): the rest still counts.
                reply = try connection.command("GETINFO " + keys.filter { $0 != "fingerprint" }.joined(separator: " "))
            }
            _ = try? connection.command("QUIT")
            return reply.keyValues
        }
        throw lastError
    }

    private func authenticate(_ c: TorControlConnection) throws(TorControlError) {
        let info = try TorControlAuthentication.ProtocolInfo(c.command("PROTOCOLINFO 1"))
        switch try TorControlAuthentication.decide(info, settings: settings) {
        case .none:
            _ = try c.command("AUTHENTICATE")
        case .safeCookie(let file):
            let exchange = SafeCookieExchange(cookie: try TorCookieFile.read(file))
            let challenge = try c.command(exchange.challengeCommand)
            let answer: String
            do { answer = try exchange.authenticateCommand(answering: challenge) } catch .cookie {
                throw .cookie(mismatch(file, named: info.namedCookieFile))
            }
            _ = try c.command(answer)
        case .plainCookie(let file):
            _ = try c.command("AUTHENTICATE " + SafeCookieExchange.hex(try TorCookieFile.read(file)))
        }
    }

    /// Says which cookie was tried; a different file named by the control
    /// port is shown (printable, shortened) but was not read.
    private func mismatch(_ file: String, named: String?) -> String {
        var text = "the control port's SERVERHASH does not match the cookie at \(file) (a stale cookie, or not this relay's tor)"
        if let named, named != file {
            text += "; it names \(Format.printable(named, limit: 200)), which FlowMeter does not read: set CookieAuthFile in the torrc if tor uses that file"
        }
        return text
    }
}
