import FlowMeterCore
import FlowMeterReports
import Foundation
import Synchronization

/// The last hour of the agent's counters at one-minute resolution, in memory
/// only, for the dashboard's live charts. Fed from the agent's 1 s tick; it
/// keeps one cumulative sample per minute in a fixed ring of `capacity`
/// slots, so its memory does not grow with uptime. The rates of a minute are
/// the difference of two samples; nothing per flow or per peer is kept.
public final class LiveHistory: Sendable {
    /// Cumulative wire bytes per (relay, category, direction), and the
    /// drop/gap totals, at the first tick of a minute.
    struct Sample: Sendable {
        var minute: Int64
        var bytes: [Key: UInt64]
        var lossEvents: UInt64
        /// Whether any cell was surging at this sample (the detector's state).
        var surging = false
    }
    /// One (relay, category, direction) cell: Core's one identity of a cell.
    public typealias Key = CellLabels

    /// Invariant: `ring.count <= capacity`; the oldest sample is at `head`
    /// once the ring is full.
    private struct Ring: Sendable {
        var slots: [Sample] = []
        var head = 0
        var latest: Sample? = nil
        /// When `latest` was observed: the live charts' data end.
        var latestAt: Date? = nil
    }
    public let capacity: Int
    private let ring = Mutex(Ring())

    /// 61 samples: sixty whole minutes between them.
    public init(capacity: Int = 61) {
        precondition(capacity >= 2)
        self.capacity = capacity
    }

    static func sample(_ r: AgentReading, minute: Int64) -> Sample {
        var bytes: [Key: UInt64] = [:]
        let table = r.cells
        for relay in table.relays {
            for c in Category.allCases {
                for d in Direction.allCases {
                    let v = table.value(relay: relay, c, d, .bytes)
                    if v > 0 { bytes[Key(relay: relay, category: c, direction: d)] = v }
                }
            }
        }
        return Sample(minute: minute, bytes: bytes, lossEvents: r.totalDrops &+ r.totalGaps,
                      surging: r.surges.contains(where: \.active))
    }

    /// Once a tick: keeps the reading as the minute's sample if it is the
    /// first of its minute, and always as the latest (the partial minute).
    public func observe(_ r: AgentReading, now: Date) {
        let minute = Int64(floor(now.timeIntervalSince1970 / 60))
        let s = Self.sample(r, minute: minute)
        ring.withLock { ring in
            // The agent's counters start at zero: that is the first sample,
            // so traffic before the first tick is not lost in the baseline.
            if ring.slots.isEmpty { ring.slots.append(Sample(minute: minute, bytes: [:], lossEvents: 0)) }
            ring.latest = s
            ring.latestAt = now
            let newest = ring.slots.isEmpty ? nil : ring.slots[(ring.head + ring.slots.count - 1) % ring.slots.count]
            guard newest?.minute != minute else { return }
            if ring.slots.count < capacity {
                ring.slots.append(s)
            } else {
                ring.slots[ring.head] = s
                ring.head = (ring.head + 1) % capacity
            }
        }
    }

    /// Per relay: bytes per minute from the oldest sample to now (the last
    /// step is the minute in progress), and minutes with drops or gaps.
    public func series() -> (series: [TrafficSeries], spans: [ChartSpan]) {
        let (samples, latest, latestAt) = ring.withLock { r in
            (Array(r.slots[r.head...] + r.slots[..<r.head]), r.latest, r.latestAt)
        }
        guard let first = samples.first, let latest else { return ([], []) }
        var points = samples
        if latest.minute != points.last?.minute || latest.bytes != points.last?.bytes { points.append(latest) }
        // Always the whole window, so a young agent's minutes sit at the right.
        let firstMinute = min(first.minute, latest.minute - Int64(capacity - 1))
        let start = Date(timeIntervalSince1970: Double(firstMinute * 60))
        let steps = Int(latest.minute - firstMinute + 1)
        var out: [String: TrafficSeries] = [:]
        var order: [String] = []
        var spans: [ChartSpan] = []
        for (a, b) in zip(points, points.dropFirst()) {
            let step = Int(a.minute - firstMinute)
            for (key, value) in b.bytes {
                if out[key.relay] == nil {
                    order.append(key.relay)
                    out[key.relay] = TrafficSeries(relay: key.relay, start: start, stepSeconds: 60, steps: steps)
                    out[key.relay]!.dataEnd = latestAt
                }
                let before = a.bytes[key] ?? 0
                // A reload can rename relays; a counter that went down is not traffic.
                out[key.relay]!.add(category: key.category.label, direction: key.direction.label, step: step,
                                    bytes: Double(value >= before ? value - before : 0))
            }
            let s = Date(timeIntervalSince1970: Double(a.minute * 60))
            if b.lossEvents != a.lossEvents {
                spans.append(ChartSpan(DateInterval(start: s, duration: 60), reason: "drops or capture gap"))
            }
            if a.surging || b.surging {
                spans.append(ChartSpan(DateInterval(start: s, duration: 60), reason: "surge"))
            }
        }
        return (order.sorted().map { out[$0]! }, spans)
    }

    /// Bytes per second of each (relay, category, direction) over the last
    /// complete minute (or since the first sample, if younger).
    public func recentRates(now: Date) -> [Key: Double] {
        let (samples, latest) = ring.withLock { r in (Array(r.slots[r.head...] + r.slots[..<r.head]), r.latest) }
        guard let latest, let base = samples.last(where: { $0.minute < latest.minute }) ?? samples.first else { return [:] }
        let seconds = max(1, now.timeIntervalSince1970 - Double(base.minute * 60))
        var out: [Key: Double] = [:]
        for (key, v) in latest.bytes {
            let before = base.bytes[key] ?? 0
            out[key] = Double(v >= before ? v - before : 0) / seconds
        }
        return out
    }
}
