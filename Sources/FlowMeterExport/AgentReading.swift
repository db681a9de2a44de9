import FlowMeterCore
import FlowMeterCapture
import FlowMeterAccounting
import FlowMeterReports
/// Everything the agent exports, read once per scrape: the counter blocks
/// summed (snapshot + sum, never touched per packet), the capture workers'
/// status and the control plane's own counters. `/metrics` and
/// `/api/v1/status` are two renderings of one reading.
public struct AgentReading: Sendable {
    /// Counters of the current generation and of every retired one (after
    /// reloads), each with the relay labels its indices refer to.
    public var generations: [(relayLabels: [String], snapshot: CounterSnapshot)] = []
    /// Connection metrics per generation, like `generations`; `current`
    /// marks the one whose `active` gauge is live (a retired table's open
    /// connections are no longer tracked, so its `active` is not shown).
    public var connections: [(relayLabels: [String], snapshot: ConnectionSnapshot, current: Bool)] = []
    public var workers: [CaptureWorkerStatus] = []
    /// Frames the interface never delivered to the kernel, so no capture saw
    /// them (sysfs `rx_missed_errors` + `rx_fifo_errors`), counted from the
    /// agent's start: a loss.
    public var interfaceDrops: [(interface: String, dropped: UInt64)] = []
    /// The interface's `rx_dropped` since the agent's start: frames the
    /// stack discarded after the capture saw them. Informative, not a loss.
    public var interfaceRxDropped: [(interface: String, dropped: UInt64)] = []
    /// Summaries dropped because an engine worker's ring was full (`rings` layout).
    public var engineRingDrops: [(interface: String, worker: Int, dropped: UInt64)] = []
    public var version: String = FlowMeterVersion.string
    public var startTimeSeconds: Double = 0
    public var nowSeconds: Double = 0
    public var reloadsSucceeded: UInt64 = 0
    public var reloadsFailed: UInt64 = 0
    public var refusedByPolicy: UInt64 = 0
    public var refusedByToken: UInt64 = 0
    /// Quotas as of this reading (`run --db` with quotas), for /metrics.
    public var quotas: [QuotaStatus] = []
    /// Every cell's surge state (the agent's detector), for /metrics.
    public var surges: [SurgeCellStatus] = []
    /// The accounting store's health; nil when the agent keeps no store.
    public var store: StoreHealth? = nil
    /// Each relay's own figures from its tor's control port.
    public var torControl: [TorControlStatus] = []
    /// The three answers of every first screen, for `/api/v1/status` (`top`).
    public var glance: Glance? = nil

    public init() {}

    /// Per (relay label, category, direction) values merged across
    /// generations by label, in first-seen label order.
    public var cells: CategoryTable { CategoryTable(generations) }

    /// (relay label, category) → metric value, merged across generations
    /// by label; `active` only from the current generation.
    public func connectionValue(relay label: String, _ c: Category, _ m: ConnectionMetric) -> UInt64 {
        var total: UInt64 = 0
        for (labels, snapshot, current) in connections where m != .active || current {
            for (i, l) in labels.enumerated() where l == label {
                total &+= snapshot.value(relay: i, category: c, m)
            }
        }
        return total
    }

    public var reasons: [(DecodeFailure, packets: UInt64, bytes: UInt64)] {
        DecodeFailure.allCases.map { r in
            (r, generations.reduce(0) { $0 &+ $1.snapshot.reasonPackets(r) },
             generations.reduce(0) { $0 &+ $1.snapshot.reasonBytes(r) })
        }
    }

    public var interfaces: [String] {
        var seen: [String] = []
        for w in workers where !seen.contains(w.interface) { seen.append(w.interface) }
        return seen
    }

    /// An interface's status: up only if every handle is up; gaps are the
    /// worst handle's (handles of one interface open and fail together, so
    /// summing would count one outage several times).
    public func interfaceStatus(_ name: String) -> (up: Bool, gaps: UInt64, gapSeconds: Double, kernelRingDrops: UInt64) {
        let ws = workers.filter { $0.interface == name }
        return (ws.allSatisfy(\.up), ws.map(\.gaps).max() ?? 0, ws.map(\.gapSeconds).max() ?? 0,
                ws.reduce(0) { $0 &+ $1.kernelRingDrops })
    }

    public var totalDrops: UInt64 {
        workers.reduce(0) { $0 &+ $1.kernelRingDrops } &+ interfaceDrops.reduce(0) { $0 &+ $1.dropped }
            &+ engineRingDrops.reduce(0) { $0 &+ $1.dropped }
    }

    public var totalGaps: UInt64 { interfaces.reduce(0) { $0 &+ interfaceStatus($1).gaps } }

    /// Counts since the start are a lower bound once packets were lost
    /// before or at the capture (a capture ring, the NIC, an engine ring) or
    /// an interface was not captured for a while. `interfaceRxDropped` is
    /// not a loss.
    public var isLowerBound: Bool { totalDrops > 0 || totalGaps > 0 }

    public var lowerBoundReasons: [String] {
        var out: [String] = []
        if workers.contains(where: { $0.kernelRingDrops > 0 }) { out.append("kernel_ring_drops") }
        if interfaceDrops.contains(where: { $0.dropped > 0 }) { out.append("interface_drops") }
        if engineRingDrops.contains(where: { $0.dropped > 0 }) { out.append("engine_ring_drops") }
        if totalGaps > 0 { out.append("capture_gaps") }
        return out
    }
}

/// Category counters merged by relay label.
public struct CategoryTable: Sendable {
    public private(set) var relays: [String] = []
    /// [relay][category][direction][field], flattened.
    private var values: [UInt64] = []
    private static let stride = Category.count * Direction.count * CellField.count

    init(_ generations: [(relayLabels: [String], snapshot: CounterSnapshot)]) {
        for (labels, snapshot) in generations {
            for slot in snapshot.slots {
                let label = slot.relay < labels.count ? labels[slot.relay] : "relay_\(slot.relay)"
                var r = relays.firstIndex(of: label) ?? -1
                if r < 0 {
                    r = relays.count
                    relays.append(label)
                    values.append(contentsOf: repeatElement(0, count: Self.stride))
                }
                for f in 0..<CellField.count {
                    values[Self.offset(r, slot.category, slot.direction, CellField(rawValue: f))] &+=
                        snapshot.value(slot, CellField(rawValue: f))
                }
            }
        }
    }

    private static func offset(_ relay: Int, _ c: Category, _ d: Direction, _ f: CellField) -> Int {
        relay * stride + (Int(c.rawValue) * Direction.count + Int(d.rawValue)) * CellField.count + f.rawValue
    }

    public func value(relay: Int, _ c: Category, _ d: Direction, _ f: CellField) -> UInt64 {
        values[Self.offset(relay, c, d, f)]
    }

    public func value(relay label: String, _ c: Category, _ d: Direction, _ f: CellField) -> UInt64 {
        guard let r = relays.firstIndex(of: label) else { return 0 }
        return value(relay: r, c, d, f)
    }

    /// The four counts of one cell (zero for a relay the table does not hold).
    public func counts(relay label: String, _ c: Category, _ d: Direction) -> CellCounts {
        var out = CellCounts()
        for f in 0..<CellField.count { out[CellField(rawValue: f)] = value(relay: label, c, d, CellField(rawValue: f)) }
        return out
    }
}

