import FlowMeterFormat
import Foundation

/// The screen of `flowmeter top`, built from two successive status
/// documents (rates are their difference over their `read_at`). The document
/// comes from whatever answers at `--agent`, so every string from it is made
/// printable (`Format.printable`) before it reaches the terminal, and the
/// work is linear in its size.
public enum TopView {
    /// The part of `/api/v1/status` the view shows. Decoded with
    /// `.convertFromSnakeCase`, so it reads the document whether its keys are
    /// camelCase (schema 1) or snake_case; fields it does not know are ignored
    /// and every extra is optional.
    public struct Status: Decodable, Sendable {
        public struct Cell: Decodable, Sendable { var relay: String; var category: String; var direction: String; var bytes: UInt64 }
        public struct Connections: Decodable, Sendable {
            var relay: String; var category: String
            var active: UInt64?; var peak: UInt64?; var unansweredAttempts: UInt64?
        }
        public struct Quota: Decodable, Sendable {
            var name: String; var periodStart: String?; var periodEnd: String?
            var usedBytes: UInt64; var limitBytes: UInt64; var usedFraction: Double?
            var projectedLowBytes: Double?; var projectedHighBytes: Double?; var projectedExhaustion: String?
            var torSoftLimit: String?; var torHardLimit: String?; var torWakeup: String?
            var intervalSource: String?; var history: String?
        }
        public struct Interface: Decodable, Sendable { var name: String; var up: Bool }
        var readAt: String
        var lowerBound: Bool?
        var lowerBoundReasons: [String]?
        var categories: [Cell]
        var connections: [Connections]?
        var quotas: [Quota]?
        var interfaces: [Interface]?
        /// The three answers (`Glance`), from agents that send them; a
        /// malformed one is ignored rather than failing the screen.
        var glance: Lenient<Glance>?

        public static func decode(_ data: Data) throws -> Status {
            let d = JSONDecoder()
            d.keyDecodingStrategy = .convertFromSnakeCase
            return try d.decode(Status.self, from: data)
        }

        var readSeconds: Double? {
            Format.parseISO8601(readAt)?.timeIntervalSince1970
        }
    }

    /// A value decoded if it can be, else nil, without failing its container.
    struct Lenient<T: Decodable & Sendable>: Decodable, Sendable {
        var value: T?
        init(from decoder: any Decoder) throws { value = try? T(from: decoder) }
    }

    /// At most this many relay/category rows are drawn; a note says how
    /// many more the document had.
    public static let maxRows = 200

    /// Every line of one screen from two successive documents, with no
    /// height limit (`TopScreen` for the terminal's size, keys and smoothing).
    public static func lines(_ s: Status, previous: Status?, agent: String, width: Int) -> [String] {
        var screen = TopScreen(agent: agent)
        screen.width = width
        if let previous { screen.observe(previous) }
        screen.observe(s)
        return screen.lines()
    }

    static func connectionLines(_ s: Status, relays: [String], width: Int) -> [String] {
        guard let conns = s.connections, !conns.isEmpty else { return [] }
        var sums: [String: (active: UInt64, peak: UInt64, unanswered: UInt64)] = [:]
        for c in conns {
            var t = sums[c.relay] ?? (0, 0, 0)
            // Saturating: the figures come from outside and must not trap.
            t.active = t.active.addingClamped(c.active ?? 0)
            t.peak = t.peak.addingClamped(c.peak ?? 0)
            t.unanswered = t.unanswered.addingClamped(c.unansweredAttempts ?? 0)
            sums[c.relay] = t
        }
        var out = [""]
        for relay in relays.prefix(maxRows) {
            guard let t = sums[relay] else { continue }
            out.append(fit("connections \(relay): \(t.active) active, \(t.peak) peak, \(t.unanswered) unanswered attempts", width))
        }
        return out
    }

    /// Each quota from the document's `quotas` (agents without `glance`).
    static func quotaLines(_ s: Status, width: Int) -> [String] {
        var out: [String] = []
        for q in (s.quotas ?? []).prefix(maxRows) {
            out.append("")
            let fraction = q.usedFraction ?? (q.limitBytes == 0 ? 0 : Double(q.usedBytes) / Double(q.limitBytes))
            let pct = fraction.isFinite ? fraction * 100 : 0
            out.append(fit("quota \(q.name): \(SVG.bytes(Double(q.usedBytes))) of \(SVG.bytes(Double(q.limitBytes))) (\(String(format: "%.1f", pct)) %) \(bar(pct, 20))", width))
            if let lo = q.projectedLowBytes, let hi = q.projectedHighBytes {
                out.append(fit("  projected \(SVG.bytes(lo))–\(SVG.bytes(hi)) at \(short(q.periodEnd)); runs out: \(q.projectedExhaustion.map(short) ?? "no")", width))
            }
            let tor = [q.torSoftLimit.map { "soft limit \(short($0))" }, q.torHardLimit.map { "hard limit \(short($0))" },
                       q.torWakeup.map { "wake-up \(short($0))" }].compactMap { $0 }
            if !tor.isEmpty { out.append(fit("  Tor: " + tor.joined(separator: ", "), width)) }
            if let source = q.intervalSource { out.append(fit("  interval: \(source), since \(short(q.periodStart))", width)) }
            if let history = q.history { out.append(fit("  " + history, width)) }
        }
        return out
    }

    struct CellKey: Hashable {
        var relay: String, category: String, direction: String
        init(_ r: String, _ c: String, _ d: String) { relay = r; category = c; direction = d }
    }

    /// Bytes per cell; a cell listed twice keeps its first figure.
    static func index(_ s: Status) -> [CellKey: UInt64] {
        var out: [CellKey: UInt64] = [:]
        for c in s.categories where out[CellKey(c.relay, c.category, c.direction)] == nil {
            out[CellKey(c.relay, c.category, c.direction)] = c.bytes
        }
        return out
    }

    /// Relays in the order the document first names them.
    static func relays(_ s: Status) -> [String] {
        var seen = Set<String>(), out: [String] = []
        for c in s.categories where seen.insert(c.relay).inserted { out.append(c.relay) }
        return out
    }

    /// relay 12, category 12, four numbers right-aligned 12 each: 76 columns.
    /// Every cell is made printable first, so its width is what the terminal shows.
    static func row(_ f: [String]) -> String {
        Format.cell(f[0], 12) + " " + Format.cell(f[1], 11) + f[2...].map { Format.cell($0, 12, right: true) }.joined(separator: " ")
    }

    /// The line made printable and cut to `width`: every line with text from
    /// the document goes through here or `row`.
    static func fit(_ s: String, _ width: Int) -> String { Format.printable(s, limit: width) }
    static func short(_ iso: String?) -> String {
        guard let iso else { return "?" }
        return String(iso.prefix(16)).replacingOccurrences(of: "T", with: " ")
    }
    static func bar(_ percent: Double, _ n: Int) -> String {
        let filled = Int(max(0, min(Double(n), (percent / 100 * Double(n)).rounded())))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: n - filled) + "]"
    }
}

extension UInt64 {
    func addingClamped(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
