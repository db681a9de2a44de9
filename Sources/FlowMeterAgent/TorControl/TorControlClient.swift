import FlowMeterConfig
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why tor's control port could not be read; the poller logs one line per
/// change of this and keeps counting packets.
public enum TorControlError: Error, Equatable, CustomStringConvertible {
    case unreachable(String)
    case noUsableAuthentication(String)
    case cookie(String)
    case refused(String)
    case protocolError(String)

    public var description: String {
        switch self {
        case .unreachable(let s): return "control port unreachable: \(s)"
        case .noUsableAuthentication(let s): return "no authentication FlowMeter can use (tor offers \(s)); set CookieAuthentication 1"
        case .cookie(let s): return "cookie: \(s)"
        case .refused(let s): return "tor refused: \(s)"
        case .protocolError(let s): return "unexpected answer: \(s)"
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
        }
    }
}

/// A blocking client for tor's control protocol (control-spec.txt), used on
/// the poller's own thread, never on the packet path: connect, PROTOCOLINFO,
/// SAFECOOKIE (or COOKIE, or NULL) authentication, one GETINFO, QUIT. Every
/// read and write has a timeout; an answer is bounded in size.
///
/// It asks only for the relay's own totals and identity: nothing it reads
/// names a peer.
public struct TorControlClient: Sendable {
    public static let keys = ["accounting/enabled", "accounting/hibernating", "accounting/bytes", "accounting/bytes-left",
                              "accounting/interval-start", "accounting/interval-wake", "accounting/interval-end",
                              "traffic/read", "traffic/written", "fingerprint"]
    static let serverKey = Array("Tor safe cookie authentication server-to-controller hash".utf8)
    static let clientKey = Array("Tor safe cookie authentication controller-to-server hash".utf8)
    static let maxAnswerBytes = 64 << 10

    public var settings: TorControlSettings
    public var timeoutSeconds: Int

    public init(settings: TorControlSettings, timeoutSeconds: Int = 3) {
        self.settings = settings; self.timeoutSeconds = timeoutSeconds
    }

    /// GETINFO of `keys` from the first endpoint that answers.
    public func getinfo(_ keys: [String] = TorControlClient.keys) throws(TorControlError) -> [String: String] {
        var lastError = TorControlError.unreachable("no endpoint")
        for endpoint in settings.endpoints {
            let connection: Connection
            do { connection = try Connection(endpoint, timeoutSeconds: timeoutSeconds) } catch {
                lastError = error
                continue
            }
            defer { connection.close() }
            try authenticate(connection)
            let lines: [String]
            do {
                lines = try connection.command("GETINFO " + keys.joined(separator: " "))
            } catch .protocolError(let status) where status.hasPrefix("55") && keys.contains("fingerprint") {
                // 551 "Not running in server mode" (no identity yet): the rest still counts.
                lines = try connection.command("GETINFO " + keys.filter { $0 != "fingerprint" }.joined(separator: " "))
            }
            _ = try? connection.command("QUIT")
            var values: [String: String] = [:]
            for line in lines where line.hasPrefix("250-") || line.hasPrefix("250 ") {
                let body = line.dropFirst(4)
                guard let eq = body.firstIndex(of: "=") else { continue }
                values[String(body[..<eq])] = String(body[body.index(after: eq)...])
            }
            return values
        }
        throw lastError
    }

    private func authenticate(_ c: Connection) throws(TorControlError) {
        let info = try c.command("PROTOCOLINFO 1")
        guard let auth = info.first(where: { $0.hasPrefix("250-AUTH ") }) else {
            throw .protocolError("PROTOCOLINFO without AUTH")
        }
        let methods = Set(Self.field("METHODS", in: auth)?.split(separator: ",").map(String.init) ?? [])
        let cookiePath = Self.quotedField("COOKIEFILE", in: auth) ?? settings.cookieFile
        if methods.contains("NULL") {
            _ = try c.command("AUTHENTICATE")
            return
        }
        guard methods.contains("SAFECOOKIE") || methods.contains("COOKIE") else {
            throw .noUsableAuthentication(methods.sorted().joined(separator: ","))
        }
        guard let path = cookiePath else { throw .cookie("no cookie file known (CookieAuthFile or DataDirectory)") }
        let cookie = try Self.readCookie(path)
        if methods.contains("SAFECOOKIE") {
            var nonce = [UInt8](repeating: 0, count: 32)
            for i in nonce.indices { nonce[i] = UInt8.random(in: 0...255) }
            let answer = try c.command("AUTHCHALLENGE SAFECOOKIE " + Self.hex(nonce))
            guard let line = answer.first, let serverHash = Self.field("SERVERHASH", in: line).flatMap(Self.unhex),
                  let serverNonce = Self.field("SERVERNONCE", in: line).flatMap(Self.unhex) else {
                throw .protocolError("AUTHCHALLENGE answer without SERVERHASH/SERVERNONCE")
            }
            let message = cookie + nonce + serverNonce
            guard Self.hmac(Self.serverKey, message) == serverHash else {
                throw .cookie("tor's SERVERHASH does not match the cookie at \(path) (a stale or foreign cookie)")
            }
            _ = try c.command("AUTHENTICATE " + Self.hex(Self.hmac(Self.clientKey, message)))
        } else {
            _ = try c.command("AUTHENTICATE " + Self.hex(cookie))
        }
    }

    static func readCookie(_ path: String) throws(TorControlError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .cookie("\(path) cannot be read (missing, or FlowMeter's user lacks access)")
        }
        guard data.count == 32 else { throw .cookie("\(path) holds \(data.count) bytes, not 32") }
        return Array(data)
    }

    static func hmac(_ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    /// `NAME=value` (unquoted) in a reply line.
    static func field(_ name: String, in line: String) -> String? {
        for token in line.split(separator: " ") where token.hasPrefix(name + "=") {
            return String(token.dropFirst(name.count + 1))
        }
        return nil
    }

    /// `NAME="value"` with control-spec escapes (\\ and \").
    static func quotedField(_ name: String, in line: String) -> String? {
        guard let r = line.range(of: name + "=\"") else { return nil }
        var out = ""
        var escaped = false
        for ch in line[r.upperBound...] {
            if escaped { out.append(ch); escaped = false } else if ch == "\\" { escaped = true } else if ch == "\"" { return out } else { out.append(ch) }
        }
        return nil
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02X", $0) }.joined() }

    static func unhex(_ s: String) -> [UInt8]? {
        guard s.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            guard let b = UInt8(s[i..<j], radix: 16) else { return nil }
            out.append(b)
            i = j
        }
        return out
    }
}

/// One control connection: a blocking socket with send/receive timeouts.
final class Connection {
    private let fd: Int32
    private var pending: [UInt8] = []

    init(_ endpoint: TorControlSettings.Endpoint, timeoutSeconds: Int) throws(TorControlError) {
        switch endpoint {
        case .tcp(let address, _):
            fd = address.isIPv4 ? socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) : socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        case .unix:
            fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        }
        guard fd >= 0 else { throw .unreachable("socket(): \(String(cString: strerror(errno)))") }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc: Int32
        // Safe: each sockaddr_* is viewed as the sockaddr header it starts
        // with, for connect(2) only, with its own size as the length.
        switch endpoint {
        case .tcp(let address, let port):
            if address.isIPv4 {
                var sa = sockaddr_in()
                sa.sin_family = sa_family_t(AF_INET)
                sa.sin_port = port.bigEndian
                sa.sin_addr = in_addr(s_addr: address.ipv4Value.bigEndian)
                rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            } else {
                var sa = sockaddr_in6()
                sa.sin6_family = sa_family_t(AF_INET6)
                sa.sin6_port = port.bigEndian
                sa.sin6_addr = in6addr_loopback
                rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
            }
        case .unix(let path):
            var sa = sockaddr_un()
            sa.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            let capacity = MemoryLayout.size(ofValue: sa.sun_path)
            guard bytes.count < capacity else {
                Glibc.close(fd)
                throw .unreachable("\(path): socket path too long")
            }
            // Safe: bytes.count < capacity (checked above), so the copy stays
            // inside sun_path and the zeroed rest terminates the path.
            withUnsafeMutableBytes(of: &sa.sun_path) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
            }
            rc = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        }
        guard rc == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw .unreachable("\(endpoint): \(reason)")
        }
    }

    func close() { Glibc.close(fd) }

    /// Sends one command line and returns its reply lines; a status other
    /// than 250 throws.
    func command(_ line: String) throws(TorControlError) -> [String] {
        let bytes = Array((line + "\r\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .unreachable("send: \(String(cString: strerror(errno)))") }
            sent += n
        }
        var lines: [String] = []
        var total = 0
        while true {
            let l = try readLine()
            total += l.count
            guard total <= TorControlClient.maxAnswerBytes else { throw .protocolError("answer over \(TorControlClient.maxAnswerBytes) bytes") }
            lines.append(l)
            let chars = Array(l.utf8)
            // The last line of a reply is "DDD text"; "DDD-" and "DDD+" continue it.
            if chars.count >= 4 && chars[3] == UInt8(ascii: " ") { break }
            if chars.count == 3 { break }
        }
        guard let last = lines.last, last.hasPrefix("250") else {
            let status = lines.last ?? ""
            if status.hasPrefix("515") { throw .refused(status) }
            throw .protocolError(status)
        }
        return lines
    }

    private func readLine() throws(TorControlError) -> String {
        while true {
            if let i = pending.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(pending[..<i])
                pending.removeFirst(i + 1)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            guard pending.count <= TorControlClient.maxAnswerBytes else { throw .protocolError("line too long") }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw .unreachable(n == 0 ? "tor closed the connection" : "recv: \(String(cString: strerror(errno)))")
            }
            pending += buf[..<n]
        }
    }
}
