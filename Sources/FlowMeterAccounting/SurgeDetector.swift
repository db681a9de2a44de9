import FlowMeterCore
import FlowMeterConfig
import Foundation

/// What a surge was recognised by.
public enum SurgeKind: String, Sendable, Equatable {
    /// The cell's byte or packet rate, far above its own baseline.
    case rate
    /// Unanswered connection attempts per second (the flow table's counter),
    /// charged to the inbound cell of their relay and category.
    case attempts
    /// A rate surge of the `other` category while most new packets on the
    /// host were UDP: a flood to ports no relay listens on.
    case udp
}

/// One surge of one cell: `end` is nil while it lasts. No peer, no port:
/// the cell's labels, the times and the bytes counted in the cell meanwhile.
public struct SurgeSpan: Sendable, Equatable {
    public var relay: String
    public var category: Category
    public var direction: Direction
    public var kind: SurgeKind
    public var start: Date
    public var end: Date?
    public var bytes: UInt64
    public init(relay: String, category: Category, direction: Direction, kind: SurgeKind, start: Date, end: Date?, bytes: UInt64) {
        self.relay = relay; self.category = category; self.direction = direction
        self.kind = kind; self.start = start; self.end = end; self.bytes = bytes
    }
}

/// A cell's surge state for /metrics (`flowmeter_surge_*`).
public struct SurgeCellStatus: Sendable, Equatable {
    public var relay: String
    public var category: Category
    public var direction: Direction
    public var active: Bool
    public var events: UInt64
    /// Bytes counted in the cell while it surged, since the agent started.
    public var bytes: UInt64
    /// Start of the current (or last) surge, seconds since 1970; 0 if none.
    public var startSeconds: Double
}

/// The agent's counters at one instant, as the detector reads them.
public struct SurgeInput: Sendable {
    /// Per relay label: [category][direction] → (bytes, packets), cumulative.
    public var cells: [(relay: String, bytes: [UInt64], packets: [UInt64])] = []
    /// Per relay label: [category] → unanswered connection attempts, cumulative.
    public var attempts: [String: [UInt64]] = [:]
    /// UDP packets on the whole host, cumulative (the outer-protocol counter).
    public var udpPackets: UInt64 = 0
    /// All classified packets on the whole host, cumulative.
    public var packets: UInt64 = 0
    public init() {}
    static func index(_ c: Category, _ d: Direction) -> Int { Int(c.rawValue) * Direction.count + Int(d.rawValue) }
}

/// Surge detection per (relay, category, direction) from the agent's summed
/// counters, ticked once a second: no per-peer state (privacy) and nothing on
/// the per-packet path. Memory: a fixed record per cell of every relay label
/// seen (bounded by the configuration) and at most `maxPendingSpans` spans
/// waiting for the store.
///
/// A value: the agent keeps it behind a lock and ticks it from its one 1 s timer.
public struct SurgeDetector: Sendable {
    public let settings: SurgeSettings
    public static let maxPendingSpans = 1000

    /// EWMA pair of one rate. `current` follows within seconds; `baseline`
    /// follows over hours and is frozen while its cell surges.
    struct Rate: Sendable {
        var current = 0.0
        var baseline = 0.0
        mutating func update(_ rate: Double, dt: Double, settings s: SurgeSettings, freezeBaseline: Bool, first: Bool) {
            if first { current = rate; baseline = rate; return }
            current += (rate - current) * (1 - exp(-dt / s.currentWindowSeconds))
            if !freezeBaseline { baseline += (rate - baseline) * (1 - exp(-dt / s.baselineWindowSeconds)) }
        }
        func hot(floor: Double, _ s: SurgeSettings) -> Bool { current > max(floor, s.factor * baseline) }
        func cool(floor: Double, _ s: SurgeSettings) -> Bool { current <= max(floor, s.endFactor * baseline) }
    }

    struct Cell: Sendable {
        var bytes = Rate()
        var packets = Rate()
        var last: (bytes: UInt64, packets: UInt64)? = nil
        var observedSeconds = 0.0
        var open: SurgeSpan? = nil
        var coolSince: Date? = nil
        var events: UInt64 = 0
        var surgeBytes: UInt64 = 0
        var startSeconds = 0.0
    }

    struct AttemptCell: Sendable {
        var rate = Rate()
        var last: UInt64? = nil
    }

    private var relays: [String] = []
    /// [relay][category * 2 + direction]
    private var cells: [[Cell]] = []
    /// [relay][category]
    private var attempts: [[AttemptCell]] = []
    private var lastTick: Date? = nil
    private var lastHost: (udp: UInt64, packets: UInt64)? = nil
    private var pending: [SurgeSpan] = []
    /// Surges that started or ended at the last tick, for the agent's log.
    public private(set) var changes: [SurgeSpan] = []

    public init(settings: SurgeSettings) { self.settings = settings }

    /// One step: rates since the previous tick, then each cell's state. A
    /// tick more than 10 s after the previous one (suspend, clock jump) only
    /// takes the counters as the new reference.
    public mutating func tick(_ input: SurgeInput, now: Date) {
        changes.removeAll()
        guard settings.enabled else { return }
        let dt = lastTick.map { now.timeIntervalSince($0) } ?? 0
        let usable = dt > 0 && dt <= 10
        lastTick = now
        let udpShare = hostUDPShare(input)
        for cell in input.cells {
            let r = relayIndex(cell.relay)
            let attempted = attemptsHot(r, input.attempts[cell.relay], dt: dt, usable: usable)
            for c in Category.allCases {
                for d in Direction.allCases {
                    let i = SurgeInput.index(c, d)
                    let byAttempts = d == .inbound && attempted[Int(c.rawValue)]
                    var state = cells[r][i]
                    step(&state, relay: cell.relay, c, d, bytes: cell.bytes[i], packets: cell.packets[i],
                         attempts: byAttempts, udpShare: udpShare, dt: dt, usable: usable, now: now)
                    cells[r][i] = state
                }
            }
        }
    }

    private mutating func relayIndex(_ label: String) -> Int {
        if let r = relays.firstIndex(of: label) { return r }
        relays.append(label)
        cells.append(Array(repeating: Cell(), count: Category.count * Direction.count))
        attempts.append(Array(repeating: AttemptCell(), count: Category.count))
        return relays.count - 1
    }

    /// The share of the host's new packets since the last tick that were UDP.
    private mutating func hostUDPShare(_ input: SurgeInput) -> Double {
        defer { lastHost = (input.udpPackets, input.packets) }
        guard let last = lastHost, input.packets > last.packets, input.udpPackets >= last.udp else { return 0 }
        return Double(input.udpPackets - last.udp) / Double(input.packets - last.packets)
    }

    /// Per category: whether unanswered attempts surge (never while warming up).
    private mutating func attemptsHot(_ r: Int, _ counts: [UInt64]?, dt: Double, usable: Bool) -> [Bool] {
        var hot = Array(repeating: false, count: Category.count)
        guard let counts, counts.count == Category.count else { return hot }
        for c in 0..<Category.count {
            var a = attempts[r][c]
            defer { attempts[r][c] = a }
            guard let last = a.last, counts[c] >= last else { a.last = counts[c]; continue }
            a.last = counts[c]
            guard usable else { continue }
            let warm = cells[r][c * Direction.count].observedSeconds >= settings.warmupSeconds
            a.rate.update(Double(counts[c] - last) / dt, dt: dt, settings: settings,
                          freezeBaseline: cells[r][c * Direction.count].open != nil, first: false)
            hot[c] = warm && a.rate.hot(floor: settings.floorAttemptsPerSecond, settings)
        }
        return hot
    }

    private mutating func step(_ cell: inout Cell, relay: String, _ c: Category, _ d: Direction, bytes: UInt64, packets: UInt64,
                      attempts: Bool, udpShare: Double, dt: Double, usable: Bool, now: Date) {
        // Counters restart only with the agent; a smaller value is a new reference.
        guard let last = cell.last, bytes >= last.bytes, packets >= last.packets else {
            cell.last = (bytes, packets)
            return
        }
        cell.last = (bytes, packets)
        guard usable else { return }
        let newBytes = bytes - last.bytes
        let first = cell.observedSeconds == 0
        let surging = cell.open != nil
        cell.bytes.update(Double(newBytes) / dt, dt: dt, settings: settings, freezeBaseline: surging, first: first)
        cell.packets.update(Double(packets - last.packets) / dt, dt: dt, settings: settings, freezeBaseline: surging, first: first)
        cell.observedSeconds += dt
        if surging {
            cell.open!.bytes &+= newBytes
            cell.surgeBytes &+= newBytes
        }
        guard cell.observedSeconds >= settings.warmupSeconds else { return }
        let rateHot = cell.bytes.hot(floor: settings.floorBytesPerSecond, settings)
            || cell.packets.hot(floor: settings.floorPacketsPerSecond, settings)
        if !surging && (rateHot || attempts) {
            let kind: SurgeKind = attempts && !rateHot ? .attempts : (c == .other && udpShare >= 0.5 ? .udp : .rate)
            // The tick that crossed the threshold belongs to the surge.
            let span = SurgeSpan(relay: relay, category: c, direction: d, kind: kind, start: now.addingTimeInterval(-dt),
                                 end: nil, bytes: newBytes)
            cell.open = span
            cell.coolSince = nil
            cell.events += 1
            cell.surgeBytes &+= newBytes
            cell.startSeconds = span.start.timeIntervalSince1970
            changes.append(span)
        } else if surging {
            let cool = cell.bytes.cool(floor: settings.floorBytesPerSecond, settings)
                && cell.packets.cool(floor: settings.floorPacketsPerSecond, settings) && !attempts
            if !cool { cell.coolSince = nil; return }
            let since = cell.coolSince ?? now
            cell.coolSince = since
            guard now.timeIntervalSince(since) >= settings.holdSeconds else { return }
            var span = cell.open!
            span.end = now
            cell.open = nil
            cell.coolSince = nil
            enqueue(span)
            changes.append(span)
        }
    }

    private mutating func enqueue(_ span: SurgeSpan) {
        if pending.count >= Self.maxPendingSpans { pending.removeFirst() }
        pending.append(span)
    }

    /// Ended surges not yet handed over, then every open one (as it stands);
    /// the ended ones are handed over once.
    public mutating func drainSpans() -> [SurgeSpan] {
        defer { pending.removeAll() }
        return pending + openSpans
    }

    public var openSpans: [SurgeSpan] { cells.flatMap { $0.compactMap(\.open) } }

    /// Every cell seen so far, in relay, category, direction order.
    public var statuses: [SurgeCellStatus] {
        var out: [SurgeCellStatus] = []
        for (r, relay) in relays.enumerated() {
            for c in Category.allCases {
                for d in Direction.allCases {
                    let cell = cells[r][SurgeInput.index(c, d)]
                    out.append(SurgeCellStatus(relay: relay, category: c, direction: d, active: cell.open != nil,
                                               events: cell.events, bytes: cell.surgeBytes, startSeconds: cell.startSeconds))
                }
            }
        }
        return out
    }
}
