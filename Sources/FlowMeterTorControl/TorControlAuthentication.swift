import Crypto
import FlowMeterConfig
import FlowMeterFormat
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How FlowMeter authenticates to a control port. Anyone who binds the
/// control port's address first (while tor restarts, say) answers in tor's
/// place, so the decision never follows the answer's word on which file to
/// read, and nothing derived from the cookie leaves FlowMeter before the
/// other side has proved it knows the cookie (SAFECOOKIE's SERVERHASH), unless
/// the operator allowed plain COOKIE (`tor_control.plain_cookie`).
public enum TorControlAuthentication: Sendable, Equatable {
    /// Tor asks for no authentication (`NULL`): nothing secret is sent.
    case none
    /// SAFECOOKIE with the cookie file the torrc configures.
    case safeCookie(cookieFile: String)
    /// COOKIE (the cookie itself, in hex) with the torrc's cookie file: only
    /// when tor offers no SAFECOOKIE and the operator allowed it.
    case plainCookie(cookieFile: String)

    /// What tor's PROTOCOLINFO answer offers.
    public struct ProtocolInfo: Sendable, Equatable {
        public var methods: Set<String>
        /// The cookie file the answer names: shown in messages, never read.
        public var namedCookieFile: String?

        public init(methods: Set<String>, namedCookieFile: String?) {
            self.methods = methods; self.namedCookieFile = namedCookieFile
        }

        /// The `AUTH METHODS=… [COOKIEFILE="…"]` line of a PROTOCOLINFO reply.
        public init(_ reply: TorControlReply) throws(TorControlError) {
            guard reply.isSuccess, let auth = reply.lines.first(where: { $0.text.hasPrefix("AUTH ") }) else {
                throw .protocolError("PROTOCOLINFO without AUTH")
            }
            let methods = TorControlReply.field("METHODS", in: auth.text)?.split(separator: ",").map(String.init) ?? []
            self.init(methods: Set(methods), namedCookieFile: TorControlReply.quotedField("COOKIEFILE", in: auth.text))
        }
    }

    /// The method to use: NULL when tor offers it, else SAFECOOKIE, else
    /// COOKIE only with `settings.plainCookie`; the cookie file is always
    /// the torrc's (`settings.cookieFile`).
    public static func decide(_ info: ProtocolInfo, settings: TorControlSettings) throws(TorControlError) -> TorControlAuthentication {
        if info.methods.contains("NULL") { return .none }
        let cookieMethods = info.methods.intersection(["SAFECOOKIE", "COOKIE"])
        guard !cookieMethods.isEmpty else {
            throw .noUsableAuthentication("tor offers \(Format.printable(info.methods.sorted().joined(separator: ","), limit: 100)); set CookieAuthentication 1")
        }
        guard let file = settings.cookieFile else {
            throw .cookie("no cookie file known: the torrc sets neither CookieAuthFile nor DataDirectory")
        }
        if cookieMethods.contains("SAFECOOKIE") { return .safeCookie(cookieFile: file) }
        guard settings.plainCookie else {
            throw .noUsableAuthentication("the control port offers COOKIE without SAFECOOKIE, which would hand the cookie to whatever answers there "
                                          + "(tor has offered SAFECOOKIE since 0.2.3.13; set tor_control.plain_cookie only for an older tor)")
        }
        return .plainCookie(cookieFile: file)
    }
}

/// SAFECOOKIE (control-spec §3.24, AUTHCHALLENGE): both sides prove they know
/// the cookie with HMAC-SHA256 over cookie, client nonce and server nonce,
/// tor first; FlowMeter checks tor's SERVERHASH before it computes its own.
public struct SafeCookieExchange: Sendable {
    static var serverKey: SymmetricKey { SymmetricKey(data: Array("Tor safe cookie authentication server-to-controller hash".utf8)) }
    static var clientKey: SymmetricKey { SymmetricKey(data: Array("Tor safe cookie authentication controller-to-server hash".utf8)) }
    public static let nonceBytes = 32

    public let cookie: [UInt8]
    public let clientNonce: [UInt8]

    public init(cookie: [UInt8], clientNonce: [UInt8]) { self.cookie = cookie; self.clientNonce = clientNonce }

    /// A fresh random client nonce.
    public init(cookie: [UInt8]) {
        var generator = SystemRandomNumberGenerator()
        self.init(cookie: cookie, clientNonce: (0..<Self.nonceBytes).map { _ in generator.next() })
    }

    public var challengeCommand: String { "AUTHCHALLENGE SAFECOOKIE " + Self.hex(clientNonce) }

    /// The AUTHENTICATE command answering tor's AUTHCHALLENGE reply; throws,
    /// having derived nothing to send, when the reply's SERVERHASH does not
    /// prove knowledge of the cookie.
    public func authenticateCommand(answering reply: TorControlReply) throws(TorControlError) -> String {
        guard reply.isSuccess, let line = reply.lines.last(where: { $0.text.hasPrefix("AUTHCHALLENGE ") }),
              let serverHash = TorControlReply.field("SERVERHASH", in: line.text).flatMap(Self.unhex),
              let serverNonce = TorControlReply.field("SERVERNONCE", in: line.text).flatMap(Self.unhex),
              serverHash.count == SHA256.byteCount, serverNonce.count == Self.nonceBytes else {
            throw .protocolError("AUTHCHALLENGE answer without a 32-byte SERVERHASH and SERVERNONCE")
        }
        let message = cookie + clientNonce + serverNonce
        // Constant time: the comparison says nothing about how close a guess was.
        guard HMAC<SHA256>.isValidAuthenticationCode(serverHash, authenticating: message, using: Self.serverKey) else {
            throw .cookie("the control port's SERVERHASH does not prove it knows the cookie")
        }
        return "AUTHENTICATE " + Self.hex(Array(HMAC<SHA256>.authenticationCode(for: message, using: Self.clientKey)))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xF)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func unhex(_ s: String) -> [UInt8]? {
        let chars = Array(s.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

/// Reads the torrc's cookie file: a regular file of exactly 32 bytes, opened
/// without blocking (a FIFO there must not hang the poller).
public enum TorCookieFile {
    public static let size = 32

    public static func read(_ path: String) throws(TorControlError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw .cookie("\(path) cannot be read (\(String(cString: strerror(errno))); FlowMeter's user needs tor's group)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw .cookie("\(path) is not a regular file") }
        var bytes = [UInt8](repeating: 0, count: size + 1)
        var got = 0
        while got < bytes.count {
            // Safe: got < bytes.count (the loop's condition), so the pointer and length stay inside the buffer.
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            got += n
        }
        guard got == size else { throw .cookie("\(path) holds \(got > size ? "more than \(size)" : String(got)) bytes, not \(size)") }
        return Array(bytes[..<size])
    }
}
