import FlowMeterCore
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
/// Tor reads it: case-insensitive keywords, `#` comments, `\` continuation,
/// `%include` of files and directories. Unknown options are ignored.
public enum Torrc {
    static let maxIncludeDepth = 8

    /// All entries of `path`, includes expanded in place.
    public static func entries(of path: String) throws(ConfigError) -> [TorrcEntry] {
        try entries(of: path, depth: 0)
    }

    private static func entries(of path: String, depth: Int) throws(ConfigError) -> [TorrcEntry] {
        guard depth <= maxIncludeDepth else { throw ConfigError(file: path, "%include nested more than \(maxIncludeDepth) deep") }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let exists = FileManager.default.fileExists(atPath: path)
            throw ConfigError(file: path, exists ? "cannot be read as UTF-8 text" : "no such file")
        }
        var out: [TorrcEntry] = []
        var pending = ""
        var pendingLine = 0
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = String(raw)
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]) }
            line = line.trimmingCharacters(in: .whitespaces)
            if pending.isEmpty { pendingLine = i + 1 }
            if line.hasSuffix("\\") {
                pending += String(line.dropLast()) + " "
                continue
            }
            line = (pending + line).trimmingCharacters(in: .whitespaces)
            pending = ""
            if line.isEmpty { continue }
            let parts = line.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" })
            let keyword = String(parts[0])
            let value = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
            if keyword.lowercased() == "%include" {
                guard !value.isEmpty else { throw ConfigError(file: path, line: pendingLine, "%include needs a path") }
                // Relative to the including file's directory.
                let directory = (path as NSString).deletingLastPathComponent
                let target = value.hasPrefix("/") || directory.isEmpty ? value : directory + "/" + value
                for file in try includeTargets(target, from: path, line: pendingLine) {
                    out += try entries(of: file, depth: depth + 1)
                }
                continue
            }
            out.append(TorrcEntry(keyword: keyword, value: value, file: path, line: pendingLine))
        }
        return out
    }

    private static func includeTargets(_ target: String, from file: String, line: Int) throws(ConfigError) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory) else {
            throw ConfigError(file: file, line: line, "%include \(target): no such file or directory")
        }
        guard isDirectory.boolValue else { return [target] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: target)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { target + "/" + $0 }
    }

    /// Builds the relay instance a torrc describes.
    public static func relay(from path: String) throws(ConfigError) -> (TorInstance, [String]) {
        let entries = try entries(of: path)
        var warnings: [String] = []
        let base = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        var relay = TorInstance(relay: HostModel.Relay(name: base.isEmpty ? "relay" : base))
        relay.sourceFile = path
        var exitRelay: Bool? = nil
        var policyAccepts = false
        var reducedPolicy = false
        var outboundAny: [IPAddress] = []
        var outboundOR: [IPAddress] = []
        var outboundExit: [IPAddress] = []
        var accountingMax: UInt64? = nil
        var accountingStart: String? = nil
        var accountingRule: String? = nil
        var relayRate: UInt64? = nil
        var rate: UInt64? = nil

        func address(_ e: TorrcEntry) throws(ConfigError) -> IPAddress? {
            let token = e.value.split(separator: " ").first.map(String.init) ?? ""
            if let a = IPAddress(parsing: token) { return a }
            if token.isEmpty { throw ConfigError(file: e.file, line: e.line, "\(e.keyword) needs an address") }
            warnings.append("\(e.file):\(e.line): \(e.keyword) \(token) is not an IP address; FlowMeter never resolves names, so it is ignored")
            return nil
        }

        for e in entries {
            switch e.key {
            case "nickname":
                guard !e.value.isEmpty, e.value.count <= 19, e.value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
                    throw ConfigError(file: e.file, line: e.line, "Nickname must be 1–19 letters or digits, got '\(e.value)'")
                }
                relay.nickname = e.value
                relay.name = e.value
            case "orport", "dirport":
                if let listener = try listenerSpec(e, warnings: &warnings) {
                    if e.key == "orport" { relay.orListeners.append(listener) } else { relay.dirListeners.append(listener) }
                    if let a = listener.address { relay.addresses.append(a) }
                }
            case "address":
                if let a = try address(e) { relay.addresses.append(a) }
            case "outboundbindaddress":
                if let a = try address(e) { outboundAny.append(a) }
            case "outboundbindaddressor":
                if let a = try address(e) { outboundOR.append(a) }
            case "outboundbindaddressexit":
                if let a = try address(e) { outboundExit.append(a) }
            case "exitrelay":
                switch e.value.lowercased() {
                case "1": exitRelay = true
                case "0": exitRelay = false
                case "auto": exitRelay = nil
                default: throw ConfigError(file: e.file, line: e.line, "ExitRelay must be 0, 1 or auto, got '\(e.value)'")
                }
            case "exitpolicy":
                for item in e.value.split(separator: ",") {
                    let t = item.trimmingCharacters(in: .whitespaces).lowercased()
                    if t.hasPrefix("accept") { policyAccepts = true }
                }
            case "reducedexitpolicy":
                reducedPolicy = e.value == "1"
            case "accountingmax":
                accountingMax = try memoryUnits(e)
            case "accountingstart":
                accountingStart = e.value
            case "accountingrule":
                guard ["sum", "max", "in", "out"].contains(e.value) else {
                    throw ConfigError(file: e.file, line: e.line, "AccountingRule must be sum, max, in or out, got '\(e.value)'")
                }
                accountingRule = e.value
            case "relaybandwidthrate":
                relayRate = try memoryUnits(e)
            case "bandwidthrate":
                rate = try memoryUnits(e)
            case "datadirectory":
                relay.dataDirectory = e.value
            default:
                continue
            }
        }
        relay.isExit = exitRelay ?? (policyAccepts || reducedPolicy)
        relay.orOutboundAddresses = outboundOR.isEmpty ? outboundAny : outboundOR
        relay.addresses += outboundAny + outboundOR + outboundExit
        if relay.isExit {
            relay.exitAddresses = !outboundExit.isEmpty ? outboundExit
                : !outboundAny.isEmpty ? outboundAny : relay.addresses
        }
        relay.addresses = unique(relay.addresses)
        if let max = accountingMax, max > 0 {
            var acct = TorAccountingSettings(maxBytes: max, start: accountingStart, rule: accountingRule)
            acct.relayBandwidthRate = relayRate
            acct.bandwidthRate = rate
            relay.accounting = acct
        }
        try readTorView(entries, into: &relay, warnings: &warnings)
        if relay.orListeners.isEmpty {
            warnings.append("\(path): no listening ORPort; or_inbound traffic for \(relay.name) cannot be recognised")
        }
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
