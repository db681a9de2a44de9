import FlowMeterCore
import Foundation

/// Where and how FlowMeter may ask a relay's tor for its own accounting
/// figures: its ControlPort or ControlSocket with cookie authentication
/// (docs/quotas.md, "Tor's own figures").
public struct TorControlSettings: Sendable, Equatable {
    /// A control listener: TCP on a loopback address, or a unix socket.
    public enum Endpoint: Sendable, Equatable, CustomStringConvertible {
        /// IPv4 (host order) or IPv6 loopback and a port.
        case tcp(address: IPAddress, port: UInt16)
        case unix(path: String)

        public var description: String {
            switch self {
            case .tcp(let a, let p):
                guard a.isIPv4 else { return "[::1]:\(p)" }  // only loopback is kept
                let v = a.ipv4Value
                return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF):\(p)"
            case .unix(let path): return "unix:\(path)"
            }
        }
    }
    public var endpoints: [Endpoint]
    /// `CookieAuthentication 1`.
    public var cookieAuthentication: Bool
    /// `CookieAuthFile`, else DataDirectory/control_auth_cookie: the only
    /// file FlowMeter reads as the cookie. The file a PROTOCOLINFO answer
    /// names is never read: whatever answers on the port may not be tor.
    public var cookieFile: String?
    /// Whether plain COOKIE authentication (the cookie itself on the wire)
    /// may be used when tor offers no SAFECOOKIE: the config file's
    /// `tor_control.plain_cookie`, off unless the operator turns it on.
    public var plainCookie: Bool

    public init(endpoints: [Endpoint], cookieAuthentication: Bool, cookieFile: String?, plainCookie: Bool = false) {
        self.endpoints = endpoints; self.cookieAuthentication = cookieAuthentication; self.cookieFile = cookieFile
        self.plainCookie = plainCookie
    }
}

extension Torrc {
    /// The torrc keys that decide how this relay's tor sees its own traffic:
    /// which peers its accounting counts (`CountPrivateBandwidth`, whose
    /// default `TestingTorNetwork 1` turns to 1, as tor.1 lists under
    /// TestingTorNetwork) and where its control port is.
    static func readTorView(_ entries: [TorrcEntry], into relay: inout TorInstance, warnings: inout [String]) throws(ConfigError) {
        var countPrivate: Bool? = nil
        var testing = false
        var cookieAuth = false
        var cookieFile: String? = nil
        var endpoints: [TorControlSettings.Endpoint] = []
        for e in entries {
            switch e.key {
            case "countprivatebandwidth": countPrivate = try boolean(e)
            case "testingtornetwork": testing = try boolean(e)
            case "cookieauthentication": cookieAuth = try boolean(e)
            case "cookieauthfile": cookieFile = unquoted(e.value)
            case "controlport", "controlsocket":
                if let endpoint = try controlEndpoint(e, warnings: &warnings) { endpoints.append(endpoint) }
            default: continue
            }
        }
        relay.testingTorNetwork = testing
        relay.countsPrivatePeers = countPrivate ?? testing
        guard !endpoints.isEmpty else { return }
        let file = cookieFile ?? relay.dataDirectory.map { $0 + "/control_auth_cookie" }
        relay.control = TorControlSettings(endpoints: endpoints, cookieAuthentication: cookieAuth, cookieFile: file)
        if !cookieAuth {
            warnings.append("\(relay.sourceFile ?? "torrc"): a control port without CookieAuthentication 1; FlowMeter reads tor's own figures only with cookie (or no) authentication")
        }
    }

    /// Tor's BOOL: 0 or 1.
    static func boolean(_ e: TorrcEntry) throws(ConfigError) -> Bool {
        switch e.value {
        case "1": return true
        case "0": return false
        default: throw ConfigError(file: e.file, line: e.line, "\(e.keyword) must be 0 or 1, got '\(e.value)'")
        }
    }

    static func unquoted(_ s: String) -> String {
        s.count >= 2 && s.hasPrefix("\"") && s.hasSuffix("\"") ? String(s.dropFirst().dropLast()) : s
    }

    /// `ControlPort [addr:]port|auto|0|unix:PATH [flags]`, `ControlSocket PATH|0`.
    /// nil when it does not listen or FlowMeter cannot reach it (warned).
    static func controlEndpoint(_ e: TorrcEntry, warnings: inout [String]) throws(ConfigError) -> TorControlSettings.Endpoint? {
        var value = e.value
        // A quoted unix path may hold spaces; flags follow it.
        let first: String
        if value.lowercased().hasPrefix("unix:\""), let close = value.dropFirst(6).firstIndex(of: "\"") {
            first = "unix:" + value[value.index(value.startIndex, offsetBy: 6)..<close]
        } else {
            value = unquoted(value)
            first = value.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init) ?? ""
        }
        guard !first.isEmpty else { throw ConfigError(file: e.file, line: e.line, "\(e.keyword) needs a port or path") }
        if e.key == "controlsocket" {
            return first == "0" ? nil : .unix(path: first)
        }
        if first.lowercased().hasPrefix("unix:") { return .unix(path: String(first.dropFirst(5))) }
        if first == "0" { return nil }
        if first.lowercased() == "auto" || first.hasSuffix(":auto") {
            warnings.append("\(e.file):\(e.line): ControlPort auto: the port is chosen by tor at start; FlowMeter cannot ask it")
            return nil
        }
        switch EndpointSpec.parse(first) {
        case .success(let spec):
            let address = spec.address ?? IPAddress(ipv4: 0x7F00_0001)  // tor's default: 127.0.0.1
            let loopback = address.isIPv4 ? address.ipv4Value >> 24 == 127 : address == IPAddress(hi: 0, lo: 1)
            guard loopback else {
                warnings.append("\(e.file):\(e.line): ControlPort \(first) is not a loopback address; FlowMeter asks tor only over loopback or a unix socket")
                return nil
            }
            return .tcp(address: address, port: spec.port.rawValue)
        case .failure(.badPort(let p)):
            throw ConfigError(file: e.file, line: e.line, "ControlPort: '\(p)' is not a port number (1–65535)")
        case .failure(.badAddress(let a)):
            throw ConfigError(file: e.file, line: e.line, "ControlPort: '\(a)' is not an IP address")
        }
    }
}
