import FlowMeterCore
#if canImport(Glibc)
import Glibc
#endif

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
