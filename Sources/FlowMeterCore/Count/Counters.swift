import Synchronization

/// Outer-layer protocol counters (packets), kept so totals can be checked
/// against other tools (tshark) and exported by family.
public struct ProtocolCounter: RawRepresentable, Hashable, Sendable, CaseIterable {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let ipv4 = ProtocolCounter(rawValue: 0)
    public static let ipv6 = ProtocolCounter(rawValue: 1)
    public static let tcp = ProtocolCounter(rawValue: 2)
    public static let udp = ProtocolCounter(rawValue: 3)
    public static let icmp = ProtocolCounter(rawValue: 4)
    public static let icmpv6 = ProtocolCounter(rawValue: 5)
    public static let allCases: [ProtocolCounter] = (0..<6).map { ProtocolCounter(rawValue: $0) }
    public static let count = 6
    public var label: String { ["ipv4", "ipv6", "tcp", "udp", "icmp", "icmpv6"][rawValue] }
}

/// The values kept per (relay, category, direction).
public struct CellField: RawRepresentable, Hashable, Sendable {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let packets = CellField(rawValue: 0)
    /// Original wire length (pcap `len`): what a provider bills.
    public static let bytes = CellField(rawValue: 1)
    /// Transport payload: what a socket reads or writes.
    public static let payloadBytes = CellField(rawValue: 2)
    /// Transport payload exchanged with peers Tor counts (not internal addresses).
    public static let torPayloadBytes = CellField(rawValue: 3)
    public static let count = 4

    /// The one list of a cell's counts, in layout order. Everything that
    /// names them — Prometheus families (`flowmeter_<name>_total`), the
    /// store's columns and upsert, row decoding, CSV and JSON fields — is
    /// derived from it; only the store's migrations spell the columns out,
    /// since a migration's SQL must never change.
    public static let all: [CellField] = [.packets, .bytes, .payloadBytes, .torPayloadBytes]

    /// snake_case: the SQL column, the CSV and JSON field.
    public var name: String { ["packets", "bytes", "payload_bytes", "tor_payload_bytes"][rawValue] }

    /// What the count holds, for a person (the Prometheus HELP text).
    public var meaning: String {
        [
            "Packets counted, by relay instance, traffic category and direction.",
            "Bytes on the wire (original packet length, link header included), by relay instance, category and direction.",
            "Transport payload bytes as the headers state them (what sockets read and write).",
            "Transport payload bytes exchanged with peers Tor's accounting counts (not internal addresses).",
        ][rawValue]
    }
}

/// The shape of a counter array: how many relays, and where each value lives.
public struct CounterLayout: Sendable, Equatable {
    public let relayCount: Int
    public init(relayCount: Int) { self.relayCount = max(1, relayCount) }

    public var cellCount: Int { relayCount * Category.count * Direction.count }
    @inline(__always)
    public func cellIndex(_ slot: CounterSlot) -> Int {
        // Wrapping arithmetic: relay < relayCount, so no term can overflow.
        (slot.relay &* Category.count &+ Int(slot.category.rawValue)) &* Direction.count &+ Int(slot.direction.rawValue)
    }
    /// The inverse of `cellIndex`: the one place a cell number is taken apart.
    @inline(__always)
    public static func slot(ofCell cell: Int) -> CounterSlot {
        CounterSlot(relay: cell / (Category.count * Direction.count),
                    category: Category(rawValue: UInt8(truncatingIfNeeded: (cell / Direction.count) % Category.count)),
                    direction: Direction(rawValue: UInt8(truncatingIfNeeded: cell % Direction.count)))
    }
    public func slot(ofCell cell: Int) -> CounterSlot { Self.slot(ofCell: cell) }
    @inline(__always)
    package func index(_ slot: CounterSlot, _ field: CellField) -> Int { cellIndex(slot) * CellField.count + field.rawValue }
    var reasonBase: Int { cellCount * CellField.count }
    @inline(__always)
    package func reasonIndex(_ r: DecodeFailure, bytes: Bool) -> Int { reasonBase + Int(r.rawValue) * 2 + (bytes ? 1 : 0) }
    var protocolBase: Int { reasonBase + DecodeFailure.count * 2 }
    var total: Int { protocolBase + ProtocolCounter.count }
}

/// 64-bit counters with exactly one writer (the thread that owns the block),
/// readable by any thread at any time without a lock: each value is an
/// `Atomic<UInt64>` that the owner updates with a relaxed load and store
/// (no read-modify-write needed with one writer; measured as cheap as plain
/// memory, BENCHMARKS.md "Build costs"). Readers use relaxed loads; a snapshot is per-value
/// consistent, which is all a counter needs.
public final class CounterBlock: @unchecked Sendable {
    // @unchecked Sendable — Safe: the storage is only touched through atomics,
    // written by one owner thread and read by others.
    public let layout: CounterLayout
    private let storage: UnsafeMutablePointer<Atomic<UInt64>>
    /// `layout.protocolBase`, kept so the per-packet protocol count does not
    /// recompute it (with overflow checks) from the relay count.
    private let protocolBase: Int

    public init(layout: CounterLayout) {
        self.layout = layout
        protocolBase = layout.protocolBase
        storage = .allocate(capacity: layout.total)
        for i in 0..<layout.total { (storage + i).initialize(to: Atomic(0)) }
    }

    deinit {
        storage.deinitialize(count: layout.total)
        storage.deallocate()
    }

    @inline(__always)
    private func bump(_ i: Int, _ v: UInt64) {
        // Safe: i < layout.total by construction of CounterLayout's indices.
        let current = storage[i].load(ordering: .relaxed)
        storage[i].store(current &+ v, ordering: .relaxed)
    }

    @inline(__always)
    private func countProtocols(_ s: PacketSummary) {
        guard s.family != 0 else { return }
        // Wrapping additions: the base and the offsets are small (no overflow trap per packet).
        let base = protocolBase
        bump(base &+ (s.family == 4 ? ProtocolCounter.ipv4.rawValue : ProtocolCounter.ipv6.rawValue), 1)
        guard s.transportHeaderPresent else { return }
        switch s.proto.rawValue {
        case IPProtocol.tcp.rawValue: bump(base &+ ProtocolCounter.tcp.rawValue, 1)
        case IPProtocol.udp.rawValue: bump(base &+ ProtocolCounter.udp.rawValue, 1)
        case IPProtocol.icmp.rawValue: bump(base &+ ProtocolCounter.icmp.rawValue, 1)
        case IPProtocol.icmpv6.rawValue: bump(base &+ ProtocolCounter.icmpv6.rawValue, 1)
        default: break
        }
    }

    /// Counts a decoded packet into its slot. `peerIsTorInternal`: the slot's
    /// relay's tor leaves the peer out of its accounting
    /// (`Classifier.torIgnores`), so the payload is not Tor payload.
    @inline(__always)
    public func count(_ s: PacketSummary, into slot: CounterSlot, peerIsTorInternal: Bool) {
        count(s, cell: layout.cellIndex(slot), peerIsTorInternal: peerIsTorInternal)
    }

    /// Counts a decoded packet into cell `cell` (`CounterLayout.cellIndex`).
    @inline(__always)
    func count(_ s: PacketSummary, cell: Int, peerIsTorInternal: Bool) {
        let base = cell &* CellField.count
        bump(base, 1)
        bump(base &+ 1, UInt64(s.wireLength))
        bump(base &+ 2, UInt64(s.payloadLength))
        if !peerIsTorInternal { bump(base &+ 3, UInt64(s.payloadLength)) }
        countProtocols(s)
    }

    /// Counts a packet that could not be decoded under its reason.
    @inline(__always)
    public func countFailure(_ s: PacketSummary) {
        bump(layout.reasonIndex(s.failure, bytes: false), 1)
        bump(layout.reasonIndex(s.failure, bytes: true), UInt64(s.wireLength))
        countProtocols(s)
    }

    /// A copy of every value, read with relaxed loads.
    public func snapshot() -> CounterSnapshot {
        var values = [UInt64](repeating: 0, count: layout.total)
        for i in 0..<layout.total { values[i] = storage[i].load(ordering: .relaxed) }
        return CounterSnapshot(layout: layout, values: values)
    }
}

/// Plain counter values, summable across workers and captures.
public struct CounterSnapshot: Sendable, Equatable {
    public let layout: CounterLayout
    public package(set) var values: [UInt64]

    public init(layout: CounterLayout) {
        self.layout = layout
        values = [UInt64](repeating: 0, count: layout.total)
    }

    init(layout: CounterLayout, values: [UInt64]) {
        self.layout = layout
        self.values = values
    }

    /// The four counts of one cell (a `CounterLayout.cellIndex`).
    public func counts(cell: Int) -> CellCounts {
        let i = cell * CellField.count
        return CellCounts(packets: values[i], bytes: values[i + 1], payloadBytes: values[i + 2], torPayloadBytes: values[i + 3])
    }

    public func counts(_ slot: CounterSlot) -> CellCounts { counts(cell: layout.cellIndex(slot)) }

    public static func + (a: CounterSnapshot, b: CounterSnapshot) -> CounterSnapshot {
        precondition(a.layout == b.layout, "summing snapshots of different layouts")
        var r = a
        for i in r.values.indices { r.values[i] &+= b.values[i] }
        return r
    }

    public static func += (a: inout CounterSnapshot, b: CounterSnapshot) { a = a + b }

    public func value(_ slot: CounterSlot, _ field: CellField) -> UInt64 { values[layout.index(slot, field)] }
    public func reasonPackets(_ r: DecodeFailure) -> UInt64 { values[layout.reasonIndex(r, bytes: false)] }
    public func reasonBytes(_ r: DecodeFailure) -> UInt64 { values[layout.reasonIndex(r, bytes: true)] }
    public func protocolPackets(_ p: ProtocolCounter) -> UInt64 { values[layout.protocolBase + p.rawValue] }

    /// Every (relay, category, direction) slot in a stable order.
    public var slots: [CounterSlot] {
        var out: [CounterSlot] = []
        for r in 0..<layout.relayCount {
            for c in Category.allCases { for d in Direction.allCases { out.append(CounterSlot(relay: r, category: c, direction: d)) } }
        }
        return out
    }

    public var classifiedPackets: UInt64 { slots.reduce(0) { $0 + value($1, .packets) } }
    public var classifiedBytes: UInt64 { slots.reduce(0) { $0 + value($1, .bytes) } }
    public var undecodedPackets: UInt64 { DecodeFailure.allCases.reduce(0) { $0 + reasonPackets($1) } }
    public var undecodedBytes: UInt64 { DecodeFailure.allCases.reduce(0) { $0 + reasonBytes($1) } }
    /// Categories plus reasons: must equal what the capture held.
    public var accountedPackets: UInt64 { classifiedPackets + undecodedPackets }
    public var accountedBytes: UInt64 { classifiedBytes + undecodedBytes }
}
