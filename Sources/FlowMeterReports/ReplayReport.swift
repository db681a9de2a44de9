import FlowMeterFormat
import FlowMeterCore
import FlowMeterAccounting
import FlowMeterStore
import Foundation

/// The `replay --json` document. Schema version 1 (docs/replay-json.md):
/// fields may be added; existing ones are never renamed or removed.
public struct ReplayReport: Codable, Sendable {
    public static let schemaVersion = 1

    public struct Totals: Codable, Sendable {
        public var packets: UInt64
        public var bytes: UInt64
        public var captured_bytes: UInt64
    }
    /// One cell (relay, category, direction and its four counts, flat in the
    /// JSON) and, from an engine replay, its connection counts.
    public struct CategoryRow: Codable, Sendable, Equatable {
        public var cell: Cell
        public var connections: CellConnections?

        public init(_ cell: Cell, connections: CellConnections? = nil) {
            self.cell = cell; self.connections = connections
        }

        public init(from decoder: any Decoder) throws {
            cell = try Cell(from: decoder)
            connections = try CellConnections.present(in: decoder) ? try CellConnections(from: decoder) : nil
        }

        /// The cell's fields and the connection fields side by side in one object.
        public func encode(to encoder: any Encoder) throws {
            try cell.encode(to: encoder)
            try connections?.encode(to: encoder)
        }
    }
    /// Engine replay only: each `ConnectionMetric` under its label
    /// (`connections_opened`, ...). Connections are per (relay, category): the
    /// same values stand on the `in` and `out` rows — do not add them up across
    /// directions (the top-level `connections` list has each pair once).
    public struct CellConnections: Codable, Sendable, Equatable {
        var values: [UInt64]

        public init(_ value: (ConnectionMetric) -> UInt64) {
            values = ConnectionMetric.allCases.map(value)
        }

        public subscript(metric: ConnectionMetric) -> UInt64 { values[metric.rawValue] }

        struct Key: CodingKey {
            var stringValue: String
            init(_ metric: ConnectionMetric) { stringValue = metric.label }
            init?(stringValue: String) { self.stringValue = stringValue }
            var intValue: Int? { nil }
            init?(intValue: Int) { nil }
        }

        static func present(in decoder: any Decoder) throws -> Bool {
            try decoder.container(keyedBy: Key.self).contains(Key(.opened))
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            values = try ConnectionMetric.allCases.map { try c.decode(UInt64.self, forKey: Key($0)) }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: Key.self)
            for m in ConnectionMetric.allCases { try c.encode(self[m], forKey: Key(m)) }
        }
    }
    public struct ConnectionRow: Codable, Sendable, Equatable {
        public var relay: String
        public var category: String
        public var opened: UInt64
        public var unanswered: UInt64
        public var closed: UInt64
        public var active: UInt64
        /// Exact with one worker; with several, the sum of per-worker peaks (an upper bound).
        public var peak: UInt64
    }
    public struct FlowTableRow: Codable, Sendable, Equatable {
        public var capacity: Int
        public var evictions: UInt64
        public var bytes_reserved: Int
    }
    public struct UndecodedRow: Codable, Sendable, Equatable {
        public var reason: String
        public var packets: UInt64
        public var bytes: UInt64
        /// For `link_type_unsupported`: the link types, by libpcap name.
        public var link_types: [LinkTypeRow]?
    }
    public struct LinkTypeRow: Codable, Sendable, Equatable {
        public var link_type: Int32
        public var name: String
        public var packets: UInt64
        public var bytes: UInt64
    }
    public struct FileRow: Codable, Sendable {
        public var path: String
        public var link_type: Int32?
        public var link_type_name: String?
        public var packets: UInt64
        public var bytes: UInt64
        public var first_packet: String?
        public var last_packet: String?
        public var error: String?
    }

    public var schema_version: Int
    public var totals: Totals
    public var first_packet: String?
    public var last_packet: String?
    public var relays: [String]
    public var categories: [CategoryRow]
    public var undecoded: [UndecodedRow]
    public var protocols: [String: UInt64]
    public var files: [FileRow]
    /// Categories plus undecoded reasons equal exactly what was read.
    public var invariant_holds: Bool
    // Engine replay only.
    public var workers: Int?
    public var connections: [ConnectionRow]?
    public var flow_table: FlowTableRow?
    public var ring_drops: [UInt64]?

    /// The report of an engine replay: counters plus connections and the flow table.
    public init(_ e: EngineResult) {
        self.init(e.replay)
        let c = e.connections
        for i in categories.indices {
            let relay = relays.firstIndex(of: categories[i].cell.relay)!, category = categories[i].cell.category
            categories[i].connections = CellConnections { c.value(relay: relay, category: category, $0) }
        }
        connections = relays.indices.flatMap { relay in
            Category.allCases.map { category in
                ConnectionRow(relay: relays[relay], category: category.label,
                              opened: c.value(relay: relay, category: category, .opened),
                              unanswered: c.value(relay: relay, category: category, .unanswered),
                              closed: c.value(relay: relay, category: category, .closed),
                              active: c.value(relay: relay, category: category, .active),
                              peak: c.value(relay: relay, category: category, .peak))
            }
        }
        flow_table = FlowTableRow(capacity: e.flowTable.capacity, evictions: e.flowTable.evictions,
                                  bytes_reserved: e.flowTable.bytesReserved)
        workers = e.workers
        ring_drops = e.ringDrops
    }

    public init(_ r: ReplayResult) {
        schema_version = ReplayReport.schemaVersion
        totals = Totals(packets: r.totals.packets, bytes: r.totals.bytes, captured_bytes: r.totals.capturedBytes)
        first_packet = r.totals.firstTimestampNanos.map(Format.iso8601(nanos:))
        last_packet = r.totals.lastTimestampNanos.map(Format.iso8601(nanos:))
        relays = r.labels
        let c = r.counters
        categories = c.slots.map { slot in
            CategoryRow(Cell(relay: r.labels[slot.relay], category: slot.category, direction: slot.direction,
                             c.counts(slot)))
        }
        undecoded = DecodeFailure.allCases.map { reason in
            UndecodedRow(reason: reason.label, packets: c.reasonPackets(reason), bytes: c.reasonBytes(reason),
                         link_types: reason == .linkTypeUnsupported
                            ? r.unsupportedLinkTypes.map { LinkTypeRow(link_type: $0.linkType, name: $0.name, packets: $0.packets, bytes: $0.bytes) }
                            : nil)
        }
        protocols = Dictionary(uniqueKeysWithValues: ProtocolCounter.allCases.map { ($0.label, c.protocolPackets($0)) })
        files = r.files.map { f in
            FileRow(path: f.path, link_type: f.linkType?.rawValue, link_type_name: f.linkTypeName,
                    packets: f.totals.packets, bytes: f.totals.bytes,
                    first_packet: f.totals.firstTimestampNanos.map(Format.iso8601(nanos:)),
                    last_packet: f.totals.lastTimestampNanos.map(Format.iso8601(nanos:)),
                    error: f.error?.description)
        }
        invariant_holds = r.invariantHolds
    }

    public func json() -> String {
        // Safe to force: every field is a plain value type JSONEncoder accepts.
        try! JSONStyle.string(self)
    }

    /// A table a person reads at a glance: non-zero cells only, largest first
    /// within each relay, then the undecoded reasons and the totals check.
    public func table() -> String {
        var out = ""
        let rows = categories.map(\.cell).filter { $0.packets > 0 }
        let header = ["relay", "category", "dir", "packets", "bytes", "share"]
        var lines: [[String]] = []
        for r in rows {
            let share = totals.bytes > 0 ? Double(r.bytes) / Double(totals.bytes) * 100 : 0
            lines.append([r.relay, r.category.label, r.direction.label, Format.grouped(r.packets), Format.bytes(r.bytes),
                          String(format: "%5.1f%%", share)])
        }
        for u in undecoded where u.packets > 0 {
            var name = u.reason
            if let lts = u.link_types, !lts.isEmpty { name += " (" + lts.map(\.name).joined(separator: ", ") + ")" }
            let share = totals.bytes > 0 ? Double(u.bytes) / Double(totals.bytes) * 100 : 0
            lines.append(["undecoded", name, "", Format.grouped(u.packets), Format.bytes(u.bytes), String(format: "%5.1f%%", share)])
        }
        lines.append(["total", "", "", Format.grouped(totals.packets), Format.bytes(totals.bytes), invariant_holds ? "exact" : "MISMATCH"])
        let total = lines.removeLast()
        out += TextTable(header: header, rows: lines, footer: [total], rightAlignedFrom: 3).render()
        if let f = first_packet, let l = last_packet { out += "capture time: \(f) – \(l) (UTC)\n" }
        return out
    }
}
