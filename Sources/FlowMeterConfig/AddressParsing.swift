import FlowMeterCore
#if canImport(Glibc)
import Glibc
#endif

extension IPAddress {
    /// Parses an IPv4 or IPv6 literal (brackets around IPv6 allowed). No name
    /// resolution ever happens: FlowMeter must not leak lookups of its peers.
    public init?(parsing text: String) {
        var s = Substring(text)
        if s.hasPrefix("["), s.hasSuffix("]") { s = s.dropFirst().dropLast() }
        let literal = String(s)
        var v4 = in_addr()
        if inet_pton(AF_INET, literal, &v4) == 1 {
            self.init(ipv4: UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, literal, &v6) == 1 else { return nil }
        // Safe: inet_pton/inet_ntop write and read the local in_addr/in6_addr and the buffer within their own sizes; the buffer is NUL-terminated.
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        var hi: UInt64 = 0
        var lo: UInt64 = 0
        for i in 0..<8 { hi = hi << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { lo = lo << 8 | UInt64(bytes[i]) }
        self.init(hi: hi, lo: lo)
    }

    /// Text form, for configuration echoes and tests only — never for a peer.
    public var configText: String {
        if isIPv4 {
            let v = ipv4Value
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        }
        var a = in6_addr()
        withUnsafeMutableBytes(of: &a) { raw in
            for i in 0..<8 { raw[i] = UInt8(truncatingIfNeeded: hi >> (56 - 8 * i)) }
            for i in 0..<8 { raw[8 + i] = UInt8(truncatingIfNeeded: lo >> (56 - 8 * i)) }
        }
        var buf = [CChar](repeating: 0, count: 64)
        _ = inet_ntop(AF_INET6, &a, &buf, 64)
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// An address and port written as `1.2.3.4:9001`, `[2001:db8::1]:9001`, or a
/// bare port (address nil).
public struct EndpointSpec: Equatable, Sendable {
    public var address: IPAddress?
    public var port: PortNumber

    public enum ParseError: Error, Equatable { case badPort(String), badAddress(String) }

    public static func parse(_ text: String) -> Result<EndpointSpec, ParseError> {
        var addressPart: String? = nil
        var portPart = text
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .failure(.badAddress(text)) }
            addressPart = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return .failure(.badPort(text)) }
            portPart = String(rest.dropFirst())
        } else if let colon = text.lastIndex(of: ":") {
            addressPart = String(text[..<colon])
            portPart = String(text[text.index(after: colon)...])
        }
        guard let p = UInt16(portPart) else { return .failure(.badPort(portPart)) }
        var address: IPAddress? = nil
        if let addressPart {
            guard let a = IPAddress(parsing: addressPart) else { return .failure(.badAddress(addressPart)) }
            address = a.isUnspecified ? nil : a
        }
        return .success(EndpointSpec(address: address, port: PortNumber(p)))
    }
}
