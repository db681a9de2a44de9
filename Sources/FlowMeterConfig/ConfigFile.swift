import FlowMeterCore
import FlowMeterFormat
import Foundation
import Yams

/// The FlowMeter config file (YAML, docs/configuration.md), kept as parsed
/// nodes where other parts of the control plane own the section (agent,
/// store, quotas), so each reports errors with its own lines.
public struct ConfigFile: @unchecked Sendable {
    // @unchecked: Yams.Node is an immutable value tree that is not marked Sendable.
    public var path: String
    public var hostAddresses: [IPAddress] = []
    public var ephemeralPorts: ClosedRange<UInt16>? = nil
    public var relayPorts: [PortNumber]? = nil
    public var directoryPorts: [PortNumber]? = nil
    public var resolvers: [IPAddress] = []
    public var relays: [HostModel.Relay] = []
    /// `tor_control.plain_cookie`: plain COOKIE authentication is allowed
    /// where tor offers no SAFECOOKIE (`TorControlSettings.plainCookie`).
    public var torControlPlainCookie = false
    /// Sections parsed elsewhere, with their marks intact.
    public var sections: [String: Node] = [:]

    static let ownedSections: Set<String> = ["agent", "store", "quotas", "pools", "surge"]

    public static func load(_ path: String) throws(ConfigError) -> ConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ConfigError(file: path, "is not UTF-8 text") }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(file: path, line: YAMLNodes.line(of: error), "YAML syntax: \(YAMLNodes.problem(of: error))")
        } catch {
            throw ConfigError(file: path, "YAML syntax: \(error)")
        }
        var config = ConfigFile(path: path)
        guard let root else { return config }  // an empty file is a valid, empty config
        let r = YAMLNodes(file: path)
        for (key, value) in try r.mapping(root, "the top level") {
            switch key {
            case "host":
                for (k, v) in try r.mapping(value, "host") {
                    switch k {
                    case "addresses": config.hostAddresses = try r.addresses(v, "host.addresses")
                    case "ephemeral_ports": config.ephemeralPorts = try r.portRange(v, "host.ephemeral_ports")
                    default: throw r.error(v, "unknown key 'host.\(k)' (expected addresses, ephemeral_ports)")
                    }
                }
            case "relay_ports": config.relayPorts = try r.ports(value, "relay_ports")
            case "directory_ports": config.directoryPorts = try r.ports(value, "directory_ports")
            case "resolvers": config.resolvers = try r.addresses(value, "resolvers")
            case "relays":
                for item in try r.sequence(value, "relays") { config.relays.append(try relay(item, r)) }
            case "tor_control":
                for (k, v) in try r.mapping(value, "tor_control") {
                    switch k {
                    case "plain_cookie": config.torControlPlainCookie = try r.bool(v, "tor_control.plain_cookie")
                    default: throw r.error(v, "unknown key 'tor_control.\(k)' (expected plain_cookie)")
                    }
                }
            default:
                guard ownedSections.contains(key) else {
                    throw r.error(value, "unknown key '\(key)' (expected host, relay_ports, directory_ports, resolvers, relays, tor_control, quotas, pools, store, agent, surge)")
                }
                config.sections[key] = value
            }
        }
        return config
    }

    private static func relay(_ node: Node, _ r: YAMLNodes) throws(ConfigError) -> HostModel.Relay {
        var relay = HostModel.Relay(name: "")
        var exitAddresses: [IPAddress] = []
        for (k, v) in try r.mapping(node, "a relays entry") {
            switch k {
            case "name":
                relay.name = try r.string(v, "relays.name")
                // The name is a label in the store, /metrics and every report.
                guard Format.isPrintable(relay.name) else {
                    throw r.error(v, "relays.name must be printable: no control or format characters")
                }
            case "or_ports": relay.orListeners = try r.listeners(v, "relays.or_ports")
            case "dir_ports": relay.dirListeners = try r.listeners(v, "relays.dir_ports")
            case "addresses": relay.addresses = try r.addresses(v, "relays.addresses")
            case "exit": relay.isExit = try r.bool(v, "relays.exit")
            case "exit_addresses": exitAddresses = try r.addresses(v, "relays.exit_addresses")
            default: throw r.error(v, "unknown key 'relays.\(k)' (expected name, or_ports, dir_ports, addresses, exit, exit_addresses)")
            }
        }
        guard !relay.name.isEmpty else { throw r.error(node, "a relays entry needs a name") }
        relay.addresses = Torrc.unique(relay.addresses + (relay.orListeners + relay.dirListeners).compactMap(\.address))
        relay.orOutboundAddresses = relay.addresses
        if relay.isExit { relay.exitAddresses = exitAddresses.isEmpty ? relay.addresses : exitAddresses }
        relay.addresses = Torrc.unique(relay.addresses + exitAddresses)
        return relay
    }
}

/// Typed reads of YAML nodes that fail with the node's line.
public struct YAMLNodes {
    public let file: String
    public init(file: String) { self.file = file }

    public func error(_ node: Node, _ message: String) -> ConfigError {
        ConfigError(file: file, line: node.mark?.line, message)
    }

    static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    static func problem(of error: YamlError) -> String {
        switch error {
        case .scanner(_, let p, _, _), .parser(_, let p, _, _), .composer(_, let p, _, _): return p
        default: return "\(error)"
        }
    }

    public func mapping(_ node: Node, _ what: String) throws(ConfigError) -> [(String, Node)] {
        guard case .mapping(let m) = node else { throw error(node, "\(what) must be a mapping of keys to values") }
        var out: [(String, Node)] = []
        for (k, v) in m {
            guard let key = k.string else { throw error(k, "keys in \(what) must be strings") }
            out.append((key, v))
        }
        return out
    }

    public func sequence(_ node: Node, _ what: String) throws(ConfigError) -> [Node] {
        if case .sequence(let s) = node { return Array(s) }
        throw error(node, "\(what) must be a list")
    }

    public func string(_ node: Node, _ what: String) throws(ConfigError) -> String {
        guard case .scalar(let s) = node else { throw error(node, "\(what) must be a single value") }
        return s.string
    }

    public func bool(_ node: Node, _ what: String) throws(ConfigError) -> Bool {
        switch try string(node, what).lowercased() {
        case "true", "yes", "1": return true
        case "false", "no", "0": return false
        case let other: throw error(node, "\(what) must be true or false, got '\(other)'")
        }
    }

    public func int(_ node: Node, _ what: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        let text = try string(node, what)
        guard let v = Int(text), range.contains(v) else {
            throw error(node, "\(what) must be a whole number in \(range.lowerBound)…\(range.upperBound), got '\(text)'")
        }
        return v
    }

    /// A list of values, or a single value standing for a one-element list.
    func list(_ node: Node, _ what: String) throws(ConfigError) -> [Node] {
        if case .sequence(let s) = node { return Array(s) }
        return [node]
    }

    public func addresses(_ node: Node, _ what: String) throws(ConfigError) -> [IPAddress] {
        var out: [IPAddress] = []
        for item in try list(node, what) {
            let text = try string(item, what)
            guard let a = IPAddress(parsing: text) else {
                throw error(item, "\(what): '\(text)' is not an IP address (names are never resolved)")
            }
            out.append(a)
        }
        return out
    }

    public func ports(_ node: Node, _ what: String) throws(ConfigError) -> [PortNumber] {
        var out: [PortNumber] = []
        for item in try list(node, what) { out.append(PortNumber(UInt16(try int(item, what, in: 1...65535)))) }
        return out
    }

    public func portRange(_ node: Node, _ what: String) throws(ConfigError) -> ClosedRange<UInt16> {
        let text = try string(node, what)
        let parts = text.split(separator: "-").map { UInt16($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let lo = parts[0], let hi = parts[1], lo >= 1, lo <= hi else {
            throw error(node, "\(what) must be a range like 32768-60999, got '\(text)'")
        }
        return lo...hi
    }

    public func listeners(_ node: Node, _ what: String) throws(ConfigError) -> [HostModel.Listener] {
        var out: [HostModel.Listener] = []
        for item in try list(node, what) {
            let text = try string(item, what)
            switch EndpointSpec.parse(text) {
            case .success(let spec) where spec.port.rawValue != 0:
                out.append(HostModel.Listener(address: spec.address, port: spec.port))
            default:
                throw error(item, "\(what): '\(text)' is not ADDRESS:PORT or PORT")
            }
        }
        return out
    }
}
