import FlowMeterCore
import FlowMeterCapture
import FlowMeterConfig
import FlowMeterExport
import Foundation
import Logging
import Yams

/// How the live agent captures, listens and runs: the `agent:` section of the
/// FlowMeter config file (keys in docs/agent.md). Every key is optional; the
/// defaults are the safe ones (headers only, loopback only, no token).
///
/// Invariants (checked by `parse`): `snaplen` in 64...262144, `bufferBytes`
/// (when set) and `bufferBytesMax` in 1 MiB...4 GiB, `timeoutMilliseconds` in
/// 1...1000, `captureThreads` in 0...64, `flowTableMax` in 4096...2²⁶.
public struct AgentSettings: Sendable, Equatable {
    /// The documented default port. 9477 is not taken in Prometheus's
    /// default-port allocation list and is not a Tor default.
    public static let defaultPort = 9477

    public var listenHost: String = "127.0.0.1"
    public var listenPort: Int = AgentSettings.defaultPort
    /// MetricsPortPolicy-style rules; the default admits loopback only.
    public var accessPolicy: AccessPolicy = .loopbackOnly
    public var bearerTokenFile: String? = nil
    /// Empty: the interfaces that carry the configured addresses.
    public var interfaces: [String] = []
    /// Headers only. 128 bytes hold Ethernet + two VLAN tags + IPv6 with a
    /// few extension headers + TCP with options; nothing of the payload we
    /// are not allowed to look at.
    public var snaplen: Int = 128
    /// The kernel ring per capture handle (TPACKET_V3 blocks), all of it
    /// resident from the start. nil (`auto`, the default): sized from the
    /// interface's speed and the handles sharing it (`CaptureSizing`), at
    /// most `bufferBytesMax`.
    public var bufferBytes: Int? = nil
    /// The most `auto` gives one handle: 32 MiB holds about 150k header-only
    /// packets, ~100 ms of a 1.5 M packets/s flood.
    public var bufferBytesMax: Int = 32 << 20
    /// The flow tables' ceiling in entries, over all capture threads
    /// together. Each table starts at 4,096 entries and grows with the
    /// connections seen (`FlowTableGrowth.growing`); at this ceiling a full
    /// bucket evicts its least valuable flow. 60 bytes per entry: the
    /// default 2²⁰ is at most 60 MiB.
    public var flowTableMax: Int = FlowTableConfiguration.defaultCapacity
    /// TPACKET_V3 block timeout: a partly filled block is handed over after
    /// this long. 100 ms bounds how stale a scrape can be, while still
    /// letting busy links fill whole blocks (a wakeup per
    /// several blocks under traffic: `LiveCaptureOptions.gatherNanos`, not
    /// one per packet). Immediate mode is not used: libpcap falls back to
    /// TPACKET_V2 (a wakeup per packet) when it is on.
    public var timeoutMilliseconds: Int = 100
    public var bpfFilter: String? = nil
    /// The unprivileged user to become once the capture handles are open.
    public var user: String? = nil
    /// Capture handles per interface, joined in one PACKET_FANOUT (hash)
    /// group; 0 means one per CPU the process may run on.
    public var captureThreads: Int = 0
    /// `fanout` (default): `captureThreads` handles per interface, each
    /// decoding and counting. `rings`: one capture thread per interface
    /// feeding the engine's per-core workers through SPSC rings. Measured
    /// against each other in BENCHMARKS.md ("Live capture").
    public var captureLayout: CaptureLayout = .fanout
    public enum CaptureLayout: String, Sendable, Equatable { case fanout, rings }
    /// Where the final counters and (by default) the accounting store are
    /// written; nil: `$STATE_DIRECTORY` (systemd's StateDirectory=), else
    /// /var/lib/flowmeter (see `effectiveStateDirectory`).
    public var stateDirectory: String? = nil
    /// The config file's top-level `surge:` section (read by the CLI).
    public var surge = SurgeSettings()
    /// Messages below this level are not logged (`--log-level` overrides).
    public var logLevel: Logger.Level = .info

    /// The state directory in use: the configured one, systemd's (the first
    /// of `$STATE_DIRECTORY`), else `root`/var/lib/flowmeter.
    public func effectiveStateDirectory(environment: [String: String] = ProcessInfo.processInfo.environment,
                                        root: String = "/") -> String {
        if let stateDirectory { return stateDirectory }
        if let systemd = environment["STATE_DIRECTORY"]?.split(separator: ":").first, !systemd.isEmpty { return String(systemd) }
        return (root.hasSuffix("/") ? String(root.dropLast()) : root) + "/var/lib/flowmeter"
    }

    public init() {}

    /// Reads the `agent:` mapping. `file` names the config file in errors.
    public static func parse(_ node: Node?, file: String) throws(ConfigError) -> AgentSettings {
        var s = AgentSettings()
        guard let node else { return s }
        guard let mapping = node.mapping else {
            throw ConfigError(file: file, line: node.mark?.line, "agent: expected a mapping of settings")
        }
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            let setting = Setting(key: key, value: value, file: file, line: value.mark?.line ?? keyNode.mark?.line)
            guard let apply = appliers[key] else {
                throw ConfigError(file: file, line: keyNode.mark?.line, "agent: unknown key \"\(key)\"")
            }
            try apply(&s, setting)
        }
        return s
    }

    /// One `key: value` of the section, with where it was written.
    struct Setting {
        var key: String, value: Node, file: String, line: Int?
        func fail(_ message: String) -> ConfigError { ConfigError(file: file, line: line, "agent.\(key): \(message)") }
        func item(_ node: Node, _ message: String) -> ConfigError { ConfigError(file: file, line: node.mark?.line ?? line, "agent.\(key): \(message)") }
    }
    typealias Applier = @Sendable (inout AgentSettings, Setting) throws(ConfigError) -> Void

    /// One applier per key: adding a setting is adding a line here.
    static let appliers: [String: Applier] = [
        "listen": { s, k throws(ConfigError) in (s.listenHost, s.listenPort) = try listen(k) },
        "access_policy": { s, k throws(ConfigError) in s.accessPolicy = try accessPolicy(k) },
        "bearer_token_file": { s, k throws(ConfigError) in s.bearerTokenFile = try nonEmpty(k, "expected a file name") },
        "interfaces": { s, k throws(ConfigError) in s.interfaces = try interfaceNames(k) },
        "snaplen": { s, k throws(ConfigError) in s.snaplen = try int(k, 64...262_144, "expected 64 to 262144 bytes") },
        "buffer_size": { s, k throws(ConfigError) in s.bufferBytes = k.value.string == "auto" ? nil : try bufferSize(k) },
        "buffer_size_max": { s, k throws(ConfigError) in s.bufferBytesMax = try bufferSize(k) },
        "flow_table_max": { s, k throws(ConfigError) in
            s.flowTableMax = try int(k, 4096...(1 << 26), "expected 4096 to 67108864 entries")
        },
        "timeout_ms": { s, k throws(ConfigError) in s.timeoutMilliseconds = try int(k, 1...1000, "expected 1 to 1000 milliseconds") },
        "bpf_filter": { s, k throws(ConfigError) in s.bpfFilter = try bpfFilter(k) },
        "user": { s, k throws(ConfigError) in s.user = try nonEmpty(k, "expected a user name") },
        "capture_threads": { s, k throws(ConfigError) in s.captureThreads = try int(k, 0...64, "expected 0 (one per CPU) to 64") },
        "capture_layout": { s, k throws(ConfigError) in
            guard let text = k.value.string, let layout = CaptureLayout(rawValue: text) else { throw k.fail("expected fanout or rings") }
            s.captureLayout = layout
        },
        "state_directory": { s, k throws(ConfigError) in s.stateDirectory = try nonEmpty(k, "expected a directory") },
        "log_level": { s, k throws(ConfigError) in s.logLevel = try logLevel(k) },
    ]

    static func listen(_ k: Setting) throws(ConfigError) -> (String, Int) {
        guard let text = k.value.string, let (host, port) = parseListen(text) else {
            throw k.fail("expected ADDRESS:PORT, e.g. 127.0.0.1:\(defaultPort) or [::1]:\(defaultPort)")
        }
        return (host, port)
    }

    static func accessPolicy(_ k: Setting) throws(ConfigError) -> AccessPolicy {
        guard let items = k.value.sequence else { throw k.fail("expected a list of \"accept|reject CIDR\" rules") }
        var rules: [AccessPolicy.Rule] = []
        for item in items {
            guard let text = item.string, let rule = AccessPolicy.Rule(parsing: text) else {
                throw k.item(item, "\"\(item.string ?? "?")\" is not \"accept|reject CIDR\" (or *)")
            }
            rules.append(rule)
        }
        return AccessPolicy(rules: rules)
    }

    static func interfaceNames(_ k: Setting) throws(ConfigError) -> [String] {
        guard let items = k.value.sequence else { throw k.fail("expected a list of interface names") }
        return try items.map { item throws(ConfigError) in
            guard let name = item.string, isInterfaceName(name) else {
                throw k.item(item, "\"\(item.string ?? "?")\" is not an interface name")
            }
            return name
        }
    }

    static func bufferSize(_ k: Setting) throws(ConfigError) -> Int {
        let expected = k.key == "buffer_size" ? "expected auto or a size from 1MiB to 4GiB, e.g. 32MiB"
                                              : "expected a size from 1MiB to 4GiB, e.g. 32MiB"
        guard let text = k.value.string else { throw k.fail(expected) }
        // The one size grammar (ByteQuantity, as quota limits): `MB` is refused as ambiguous, never read as 2^20.
        let size: ByteQuantity
        do { size = try ByteQuantity.parseLimit(text) } catch { throw k.fail("\(expected): \(error)") }
        guard size.bytes >= 1 << 20, size.bytes <= 1 << 32 else { throw k.fail(expected) }
        return Int(size.bytes)
    }

    /// Compiled here, so a filter libpcap refuses stops the start (exit 2).
    static func bpfFilter(_ k: Setting) throws(ConfigError) -> String? {
        guard let text = k.value.string else { throw k.fail("expected a filter expression") }
        if text.isEmpty { return nil }
        if let problem = BPFFilterCheck.problem(text) { throw k.fail("\"\(text)\" does not compile: \(problem)") }
        return text
    }

    static func logLevel(_ k: Setting) throws(ConfigError) -> Logger.Level {
        guard let text = k.value.string, let level = Logger.Level(rawValue: text) else {
            throw k.fail("expected one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return level
    }

    static func int(_ k: Setting, _ range: ClosedRange<Int>, _ message: String) throws(ConfigError) -> Int {
        guard let n = k.value.int, range.contains(n) else { throw k.fail(message) }
        return n
    }

    static func nonEmpty(_ k: Setting, _ message: String) throws(ConfigError) -> String {
        guard let text = k.value.string, !text.isEmpty else { throw k.fail(message) }
        return text
    }

    /// `127.0.0.1:9477`, `[::1]:9477`, `0.0.0.0:9477`.
    public static func parseListen(_ text: String) -> (host: String, port: Int)? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return nil }  // bare IPv6 needs brackets
        }
        guard let port = Int(portText), (1...65535).contains(port),
              IPAddress(parsing: String(host)) != nil else { return nil }
        return (String(host), port)
    }

    /// Linux IFNAMSIZ-1 characters, no slash, no whitespace.
    static func isInterfaceName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 15 && !name.contains("/") && !name.contains(" ") && name != "." && name != ".."
    }
}
