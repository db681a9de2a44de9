import FlowMeterCore
import FlowMeterFormat
import Foundation

/// One `Keyword value` line of a torrc, with where it came from.
public struct TorrcEntry: Equatable, Sendable {
    public var keyword: String   // as written
    public var value: String
    public var file: String
    public var line: Int
    public var key: String { keyword.lowercased() }
}

/// Reads the parts of a torrc FlowMeter needs (docs/configuration.md), the way
/// Tor reads it (`TorrcReader`: comments, continuations, CRLF, `%include`).
/// Unknown options are ignored.
public enum Torrc {
    /// All entries of `path`, includes expanded in place.
    public static func entries(of path: String) throws(ConfigError) -> [TorrcEntry] {
        var reader = TorrcReader()
        return try reader.entries(of: path)
    }

    /// Builds the relay instance a torrc describes. Without `Nickname` it is
    /// labelled `defaultName` (else the file name without extension, made
    /// printable); without `DataDirectory`, tor's default for this layout is
    /// `defaultDataDirectory`.
    /// `defaults` is read first and overridden by the torrc, as tor reads
    /// `--defaults-torrc FILE -f TORRC` (`layered`).
    public static func relay(from path: String, defaultName: String? = nil, defaultDataDirectory: String? = nil,
                             defaults: TorrcDefaults? = nil) throws(ConfigError) -> (TorInstance, [String]) {
        // A label in the store and every report: printable (StoredRow.text).
        let base = Format.printable(((path as NSString).lastPathComponent as NSString).deletingPathExtension)
        var builder = RelayBuilder(name: defaultName ?? (base.isEmpty ? "relay" : base), source: path)
        builder.relay.dataDirectory = defaultDataDirectory
        var layers: [[TorrcEntry]] = []
        if let defaults {
            var reader = TorrcReader()
            layers.append(try reader.entries(of: defaults.path, replacing: defaults.instanceName.map { [("@@NAME@@", $0)] } ?? []))
        }
        layers.append(try entries(of: path))
        let all = layered(layers)
        for e in all { try builder.apply(e) }
        var (relay, warnings) = builder.finish()
        try readTorView(all, into: &relay, warnings: &warnings)
        return (relay, warnings)
    }

    static func unique(_ addresses: [IPAddress]) -> [IPAddress] {
        var seen = Set<IPAddress>()
        return addresses.filter { seen.insert($0).inserted }
    }

    /// `ORPort [address:]port|auto [flags]`; nil when it does not listen.
    static func listenerSpec(_ e: TorrcEntry, warnings: inout [String]) throws(ConfigError) -> HostModel.Listener? {
        let tokens = e.value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let first = tokens.first else { throw ConfigError(file: e.file, line: e.line, "\(e.keyword) needs a port") }
        let flags = Set(tokens.dropFirst().map { $0.lowercased() })
        let known: Set<String> = ["nolisten", "noadvertise", "ipv4only", "ipv6only"]
        if let unknown = flags.subtracting(known).first {
            throw ConfigError(file: e.file, line: e.line, "\(e.keyword): unknown flag '\(unknown)'")
        }
        if flags.contains("nolisten") { return nil }
        if first.lowercased() == "auto" || first.hasSuffix(":auto") {
            warnings.append("\(e.file):\(e.line): \(e.keyword) auto: the port is chosen by Tor at start; FlowMeter cannot match it")
            return nil
        }
        switch EndpointSpec.parse(first) {
        case .success(let spec):
            if spec.port.rawValue == 0 { return nil }
            return HostModel.Listener(address: spec.address, port: spec.port)
        case .failure(.badPort(let p)):
            throw ConfigError(file: e.file, line: e.line, "\(e.keyword): '\(p)' is not a port number (1–65535)")
        case .failure(.badAddress(let a)):
            throw ConfigError(file: e.file, line: e.line, "\(e.keyword): '\(a)' is not an IP address")
        }
    }

    /// Tor's MEMUNIT syntax: a number and a unit, powers of two (unitparse.c).
    static func memoryUnits(_ e: TorrcEntry) throws(ConfigError) -> UInt64 {
        do {
            return try ByteQuantity.parseTor(e.value).bytes
        } catch {
            throw ConfigError(file: e.file, line: e.line, "\(e.keyword): '\(e.value)' is not a size like '500 GBytes' (\(error))")
        }
    }
}
