import FlowMeterAccounting
import FlowMeterCore
import Foundation

/// A pool's traffic as the central store holds it: for every member host,
/// category and direction, the exact increase of the host's counters between
/// consecutive read instants (hour boundaries, the period's start, now), as
/// `UsageBucket`s whose relay label is the host's name. So the forecaster,
/// `QuotaUsage` and `RateAdvice` read a fleet as they read one store, with
/// hosts where a store has relays.
///
/// Invariant: buckets are in start order and never straddle a read instant
/// (the increase across a hole in the samples is spread evenly over it); a
/// bucket's bytes are in the field of the pool scope's layer.
public struct FleetHistory: UsageHistorySource, Sendable {
    public private(set) var allBuckets: [UsageBucket]
    /// Spans whose counts are incomplete (a member silent, or restarted while
    /// the store had no samples from it): never read as zero traffic.
    public private(set) var gapSpans: [DateInterval]
    /// Per member host, its newest sample in the store.
    public var newestSample: [String: Date]
    /// Members the store has no series of in the window read.
    public var missingHosts: [String]
    /// What makes the counts a lower bound, in words.
    public var notes: [String]

    public init(buckets: [UsageBucket], gaps: [DateInterval], newestSample: [String: Date] = [:],
                missingHosts: [String] = [], notes: [String] = []) {
        allBuckets = buckets.sorted { $0.start < $1.start }
        gapSpans = gaps.sorted { $0.start < $1.start }
        self.newestSample = newestSample; self.missingHosts = missingHosts; self.notes = notes
    }

    public func buckets(from: Date, to: Date) throws -> [UsageBucket] {
        allBuckets.filter { $0.start >= from && $0.start < to }
    }

    public func gaps(from: Date, to: Date) throws -> [DateInterval] {
        gapSpans.filter { $0.end > from && $0.start < to }
    }
}

/// One (host, category, direction) counter of the central store, read at
/// successive instants, and how its readings become increments.
struct CounterReadings {
    struct Key: Hashable, Comparable {
        var host: String
        var category: Category
        var direction: Direction
        static func < (a: Key, b: Key) -> Bool {
            (a.host, a.category.rawValue, a.direction.rawValue) < (b.host, b.category.rawValue, b.direction.rawValue)
        }
    }

    /// An increase over (from, to], and whether it is known exactly.
    struct Step: Equatable {
        var from: Date
        var to: Date
        var bytes: UInt64
    }

    /// The increments between consecutive readings of one counter.
    /// - Parameters:
    ///   - readings: (instant, value) in time order; instants the counter had
    ///     no sample at are absent.
    ///   - grid: every read instant, in order (to find the one before the first reading).
    ///   - suspicious: whether (a, b] may hold a counter reset (then `refine` answers).
    ///   - refine: the exact increase over (a, b] from raw samples.
    ///   - startedAt: when the agent whose counter gave the first reading started.
    static func steps(_ readings: [(Date, Double)], grid: [Date], suspicious: (Date, Date) -> Bool,
                      refine: (Date, Date) throws -> UInt64, startedAt: (Date) throws -> Date?) throws -> [Step] {
        guard let first = readings.first else { return [] }
        var out: [Step] = []
        // A counter seen first after the window's start began at zero if its
        // agent started since the read instant before (FlowMeter counts from
        // its start); else what it held came before our data and is not counted.
        if let before = grid.last(where: { $0 < first.0 }), let started = try startedAt(first.0), started >= before {
            if first.1 > 0 { out.append(Step(from: max(before, min(started, first.0)), to: first.0, bytes: UInt64(first.1))) }
        }
        for i in readings.indices.dropFirst() {
            let (a, va) = readings[i - 1], (b, vb) = readings[i]
            let bytes: UInt64
            if vb < va || suspicious(a, b) {
                bytes = try refine(a, b)
            } else {
                bytes = UInt64(vb - va)
            }
            if bytes > 0 { out += split(Step(from: a, to: b, bytes: bytes), at: grid) }
        }
        return out
    }

    /// A step across read instants it has no reading at (a hole in the
    /// samples) spread evenly over them, so no bucket straddles the period's
    /// start; the parts add up to the whole exactly.
    static func split(_ step: Step, at grid: [Date]) -> [Step] {
        let inside = grid.filter { $0 > step.from && $0 < step.to }
        guard !inside.isEmpty else { return [step] }
        let edges = [step.from] + inside + [step.to]
        let span = step.to.timeIntervalSince(step.from)
        var out: [Step] = []
        var given: UInt64 = 0
        for (a, b) in zip(edges, edges.dropFirst()) {
            let upTo = b == step.to ? step.bytes
                : UInt64((Double(step.bytes) * b.timeIntervalSince(step.from) / span).rounded(.down))
            if upTo > given { out.append(Step(from: a, to: b, bytes: upTo - given)) }
            given = max(given, upTo)
        }
        return out
    }

    /// The exact increase of one raw series over (a, b]: consecutive
    /// differences, and after a reset the value counted since it. `base` is
    /// the last sample at or before `a` (nil: the series began inside, at zero).
    static func increase(_ samples: [PromSample], after a: Double, base: Double?) -> UInt64 {
        var previous = base
        var total: Double = 0
        for s in samples where s.time > a {
            if let p = previous, s.value >= p { total += s.value - p } else { total += s.value }
            previous = s.value
        }
        return UInt64(max(0, total))
    }

    /// The bucket of one step, its bytes in `layer`'s field.
    static func bucket(_ key: Key, _ step: Step, layer: QuotaScope.Layer) -> UsageBucket {
        var counts = CellCounts()
        switch layer {
        case .wire: counts.bytes = step.bytes
        case .payload: counts.payloadBytes = step.bytes
        case .tor: counts.torPayloadBytes = step.bytes
        }
        let seconds = max(1, Int(step.to.timeIntervalSince(step.from).rounded()))
        return UsageBucket(start: step.from, durationSeconds: seconds,
                           cell: Cell(relay: key.host, category: key.category, direction: key.direction, counts))
    }
}
