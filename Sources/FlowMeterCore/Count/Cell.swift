/// The four counts kept per (relay, category, direction): packets, wire
/// bytes (pcap `len`, what a provider bills), transport payload bytes, and
/// payload bytes exchanged with peers Tor's accounting counts. 64-bit, summed
/// with wrapping `+` like the counters they come from.
public struct CellCounts: Sendable, Equatable, Hashable, Codable {
    public var packets: UInt64
    public var bytes: UInt64
    public var payloadBytes: UInt64
    public var torPayloadBytes: UInt64

    public init(packets: UInt64 = 0, bytes: UInt64 = 0, payloadBytes: UInt64 = 0, torPayloadBytes: UInt64 = 0) {
        self.packets = packets; self.bytes = bytes
        self.payloadBytes = payloadBytes; self.torPayloadBytes = torPayloadBytes
    }

    public static let zero = CellCounts()
    public var isZero: Bool { self == .zero }

    public static func + (a: CellCounts, b: CellCounts) -> CellCounts {
        CellCounts(packets: a.packets &+ b.packets, bytes: a.bytes &+ b.bytes,
                   payloadBytes: a.payloadBytes &+ b.payloadBytes, torPayloadBytes: a.torPayloadBytes &+ b.torPayloadBytes)
    }

    public static func += (a: inout CellCounts, b: CellCounts) { a = a + b }

    /// Wrapping difference, for counters read twice (the later minus the earlier).
    public static func - (a: CellCounts, b: CellCounts) -> CellCounts {
        CellCounts(packets: a.packets &- b.packets, bytes: a.bytes &- b.bytes,
                   payloadBytes: a.payloadBytes &- b.payloadBytes, torPayloadBytes: a.torPayloadBytes &- b.torPayloadBytes)
    }

    /// Each count of `a` less `b`'s, or nil when any would go below zero
    /// (counters restarted in between).
    public static func delta(_ a: CellCounts, since b: CellCounts) -> CellCounts? {
        guard a.packets >= b.packets, a.bytes >= b.bytes, a.payloadBytes >= b.payloadBytes,
              a.torPayloadBytes >= b.torPayloadBytes else { return nil }
        return CellCounts(packets: a.packets - b.packets, bytes: a.bytes - b.bytes,
                          payloadBytes: a.payloadBytes - b.payloadBytes, torPayloadBytes: a.torPayloadBytes - b.torPayloadBytes)
    }

    /// The value of one field (the counters' flat layout names them by `CellField`).
    public subscript(field: CellField) -> UInt64 {
        get {
            switch field {
            case .packets: packets
            case .bytes: bytes
            case .payloadBytes: payloadBytes
            default: torPayloadBytes
            }
        }
        set {
            switch field {
            case .packets: packets = newValue
            case .bytes: bytes = newValue
            case .payloadBytes: payloadBytes = newValue
            default: torPayloadBytes = newValue
            }
        }
    }
}

/// Where counts belong: a relay instance's label ("host" for the host
/// itself), a category and a direction. Labels only: nothing here can name a
/// peer, a port or a flow.
public struct CellLabels: Sendable, Hashable {
    public var relay: String
    public var category: Category
    public var direction: Direction

    public init(relay: String, category: Category, direction: Direction) {
        self.relay = relay; self.category = category; self.direction = direction
    }
}

/// One (relay, category, direction) with its counts: the one cell type the
/// store, the reports, the status document and the exporter share. Its JSON
/// is flat: `relay`, `category`, `direction` (labels such as `or_inbound`,
/// `in`) and the four counts.
@dynamicMemberLookup
public struct Cell: Sendable, Hashable, Codable {
    public var labels: CellLabels
    public var counts: CellCounts

    public init(_ labels: CellLabels, _ counts: CellCounts) {
        self.labels = labels; self.counts = counts
    }

    public init(relay: String, category: Category, direction: Direction, _ counts: CellCounts) {
        self.init(CellLabels(relay: relay, category: category, direction: direction), counts)
    }

    public subscript<T>(dynamicMember path: WritableKeyPath<CellLabels, T>) -> T {
        get { labels[keyPath: path] }
        set { labels[keyPath: path] = newValue }
    }

    public subscript<T>(dynamicMember path: WritableKeyPath<CellCounts, T>) -> T {
        get { counts[keyPath: path] }
        set { counts[keyPath: path] = newValue }
    }

    enum CodingKeys: String, CodingKey { case relay, category, direction }

    /// A label that is not one of FlowMeter's (a damaged or foreign document).
    public struct UnknownLabel: Error, CustomStringConvertible {
        public var label: String
        public init(label: String) { self.label = label }
        public var description: String { "unknown label '\(label)'" }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let category = try c.decode(String.self, forKey: .category)
        let direction = try c.decode(String.self, forKey: .direction)
        guard let cat = Category(label: category) else { throw UnknownLabel(label: category) }
        guard let dir = Direction(label: direction) else { throw UnknownLabel(label: direction) }
        labels = CellLabels(relay: try c.decode(String.self, forKey: .relay), category: cat, direction: dir)
        counts = try CellCounts(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(labels.relay, forKey: .relay)
        try c.encode(labels.category.label, forKey: .category)
        try c.encode(labels.direction.label, forKey: .direction)
        try counts.encode(to: encoder)
    }
}
