import Crypto
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterTorControl
import Foundation
import FuzzSupport

/// What a control port may answer, arbitrary bytes: the reply reader (fed in
/// chunks whose size the first byte picks, as recv(2) may split them), every
/// reply through PROTOCOLINFO's parser and the choice of authentication (with
/// plain COOKIE allowed and not), SAFECOOKIE's check of SERVERHASH, and
/// GETINFO's values into tor's figures. Replies or a TorControlError, never a
/// trap; and an AUTHENTICATE answer only for a SERVERHASH that proves the cookie.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTorControl(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let chunk = Int(bytes[0] % 64) + 1
    var reader = TorControlReplyReader(maxReplyBytes: 16 << 10)
    var offset = 1
    do {
        while offset < bytes.count {
            reader.append(bytes[offset..<min(bytes.count, offset + chunk)])
            offset += chunk
            while let reply = try reader.nextReply() { examine(reply) }
        }
    } catch {}
    return 0
}

/// The fixed cookie and nonce of the seed corpus's AUTHCHALLENGE answer.
let cookie = [UInt8](repeating: 0xC0, count: 32)
let clientNonce = [UInt8](repeating: 0x11, count: 32)
let settings = [false, true].map {
    TorControlSettings(endpoints: [], cookieAuthentication: true, cookieFile: "/torrc/cookie", plainCookie: $0)
}

func examine(_ reply: TorControlReply) {
    if let info = try? TorControlAuthentication.ProtocolInfo(reply) {
        for s in settings {
            switch try? TorControlAuthentication.decide(info, settings: s) {
            case .safeCookie(let file)?, .plainCookie(let file)?:
                precondition(file == "/torrc/cookie", "a cookie file other than the torrc's: \(file)")
            default: break
            }
        }
    }
    let exchange = SafeCookieExchange(cookie: cookie, clientNonce: clientNonce)
    if let command = try? exchange.authenticateCommand(answering: reply) {
        let line = reply.lines.last { $0.text.hasPrefix("AUTHCHALLENGE ") }!.text
        let fields = Dictionary(line.split(separator: " ").compactMap { t -> (String, String)? in
            guard let eq = t.firstIndex(of: "=") else { return nil }
            return (String(t[..<eq]), String(t[t.index(after: eq)...]).uppercased())
        }, uniquingKeysWith: { first, _ in first })
        let nonce = hexBytes(fields["SERVERNONCE"] ?? "")
        let proof = HMAC<SHA256>.authenticationCode(
            for: cookie + clientNonce + nonce,
            using: SymmetricKey(data: Array("Tor safe cookie authentication server-to-controller hash".utf8)))
        precondition(fields["SERVERHASH"] == hex(Array(proof)), "answered a SERVERHASH that does not prove the cookie")
        precondition(command.hasPrefix("AUTHENTICATE "))
    }
    _ = TorControlFigures(getinfo: reply.keyValues, readAt: Date(timeIntervalSince1970: 1_767_225_600))
}

func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02X", $0) }.joined() }

func hexBytes(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex, let j = s.index(i, offsetBy: 2, limitedBy: s.endIndex), let b = UInt8(s[i..<j], radix: 16) {
        out.append(b)
        i = j
    }
    return out
}
