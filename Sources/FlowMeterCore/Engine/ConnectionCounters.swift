import Synchronization

/// The connection metrics kept per (relay, category). Semantics: docs/engine.md.
public struct ConnectionMetric: RawRepresentable, Hashable, Sendable, CaseIterable {
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// TCP: 3-way handshake completed, or (first seen mid-stream) payload seen
    /// both ways. UDP: packets seen both ways.
    public static let opened = ConnectionMetric(rawValue: 0)
    /// A SYN (UDP: a first packet) that never got an answer before the flow
    /// ended: idle timeout, RST, eviction, or the end of a replay.
    public static let unanswered = ConnectionMetric(rawValue: 1)
    /// An opened connection that ended: FIN both ways, RST, idle timeout, eviction.
    public static let closed = ConnectionMetric(rawValue: 2)
    /// Opened and not yet closed.
    public static let active = ConnectionMetric(rawValue: 3)
    /// The most `active` at once (see `ConnectionSnapshot` for the sum over workers).
    public static let peak = ConnectionMetric(rawValue: 4)
    public static let count = 5
    public static let allCases: [ConnectionMetric] = (0..<5).map { ConnectionMetric(rawValue: $0) }
    public var label: String {
        ["connections_opened", "connection_attempts_unanswered", "connections_closed",
         "connections_active", "connections_peak"][rawValue]
    }
}

/// A (relay, category) pair as one number, relay × `Category.count` +
/// category: what a flow-table entry keeps to say whose connection it is,
/// and the connection metrics' row. A counter cell's pair is its cell number
/// over `Direction.count` (`CounterLayout.cellIndex`), so a flow whose cell
/// is known gets its pair with a shift, where taking the cell apart into
/// relay and category cost two divisions per new flow (callgrind).
struct ConnectionGroup: Equatable {
    var rawValue: UInt32

    init(rawValue: UInt32) { self.rawValue = rawValue }

    @inline(__always)
    init(relay: Int, category: UInt8) {
        rawValue = UInt32(truncatingIfNeeded: relay &* Category.count &+ Int(category))
    }

    /// The pair of counter cell `cell` (either direction).
    @inline(__always)
    init(cell: Int) {
        rawValue = UInt32(truncatingIfNeeded: cell / Direction.count)
    }

    /// Where the pair's `ConnectionMetric.count` values start.
    @inline(__always)
    var base: Int { Int(rawValue) &* ConnectionMetric.count }
}

/// Connection metrics of one worker: one writer (the worker), readable by any
/// thread without a lock, like `CounterBlock` (relaxed load + store by the owner).
final class ConnectionCounters: @unchecked Sendable {
    // @unchecked Sendable — Safe: storage is touched only through atomics,
    // written by the owning worker and read by others.
    let relayCount: Int
    private let storage: UnsafeMutablePointer<Atomic<UInt64>>
    private var total: Int { relayCount * Category.count * ConnectionMetric.count }

    init(relayCount: Int) {
        self.relayCount = max(1, relayCount)
        let n = self.relayCount * Category.count * ConnectionMetric.count
        storage = .allocate(capacity: n)
        for i in 0..<n { (storage + i).initialize(to: Atomic(0)) }
    }

    deinit {
        storage.deinitialize(count: total)
        storage.deallocate()
    }

    @inline(__always)
    static func base(relay: Int, category: UInt8) -> Int {
        ConnectionGroup(relay: relay, category: category).base
    }

    @inline(__always)
    private func bump(_ i: Int) {
        // Safe: i < total by construction of `base`; one writer, so load+store is enough.
        storage[i].store(storage[i].load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    @inline(__always)
    func opened(_ group: ConnectionGroup) {
        let b = group.base
        bump(b + ConnectionMetric.opened.rawValue)
        let active = storage[b + 3].load(ordering: .relaxed) &+ 1
        storage[b + 3].store(active, ordering: .relaxed)
        if active > storage[b + 4].load(ordering: .relaxed) { storage[b + 4].store(active, ordering: .relaxed) }
    }

    @inline(__always)
    func closed(_ group: ConnectionGroup) {
        let b = group.base
        bump(b + ConnectionMetric.closed.rawValue)
        storage[b + 3].store(storage[b + 3].load(ordering: .relaxed) &- 1, ordering: .relaxed)
    }

    @inline(__always)
    func unanswered(_ group: ConnectionGroup) {
        bump(group.base + ConnectionMetric.unanswered.rawValue)
    }

    func snapshot() -> ConnectionSnapshot {
        var values = [UInt64](repeating: 0, count: total)
        for i in 0..<total { values[i] = storage[i].load(ordering: .relaxed) }
        return ConnectionSnapshot(relayCount: relayCount, values: values)
    }
}

/// Connection metrics summed over workers (and files), per (relay, category).
///
/// `peak` is the one metric that cannot be summed exactly: each worker knows
/// its own peak of concurrent connections, not when the others had theirs. The
/// sum of per-worker peaks is exported: exact with one worker, an upper bound
/// (never below the true peak) with several.
public struct ConnectionSnapshot: Sendable, Equatable {
    public let relayCount: Int
    public internal(set) var values: [UInt64]

    public init(relayCount: Int) {
        self.relayCount = max(1, relayCount)
        values = [UInt64](repeating: 0, count: self.relayCount * Category.count * ConnectionMetric.count)
    }

    init(relayCount: Int, values: [UInt64]) {
        self.relayCount = relayCount
        self.values = values
    }

    /// One metric of one (relay index, category); relay 0 is the host itself,
    /// as in `HostModel.relayLabels`.
    public func value(relay: Int, category: Category, _ metric: ConnectionMetric) -> UInt64 {
        values[ConnectionCounters.base(relay: relay, category: category.rawValue) + metric.rawValue]
    }

    /// A metric summed over every relay and category.
    public func total(_ metric: ConnectionMetric) -> UInt64 {
        stride(from: metric.rawValue, to: values.count, by: ConnectionMetric.count).reduce(0) { $0 &+ values[$1] }
    }

    public static func + (a: ConnectionSnapshot, b: ConnectionSnapshot) -> ConnectionSnapshot {
        precondition(a.relayCount == b.relayCount, "summing connection snapshots of different layouts")
        var r = a
        for i in r.values.indices { r.values[i] &+= b.values[i] }
        return r
    }

    public static func += (a: inout ConnectionSnapshot, b: ConnectionSnapshot) { a = a + b }

    /// The same values with `peak` zeroed: what is identical whatever the
    /// number of workers.
    public var withoutPeak: ConnectionSnapshot {
        var r = self
        for i in stride(from: ConnectionMetric.peak.rawValue, to: r.values.count, by: ConnectionMetric.count) {
            r.values[i] = 0
        }
        return r
    }
}
