import FlowMeterCore
import FlowMeterConfig
import Foundation

/// How much of a quota the current period has used, from the store's buckets.
public struct QuotaUsage: Sendable, Equatable {
    public var quotaName: String
    public var interval: DateInterval
    /// Bytes received / sent in the scope's layer since the period started.
    public var read: UInt64
    public var written: UInt64
    /// `rule.bytes(read:written:)`: what is compared with the limit.
    public var used: UInt64
    public var limit: UInt64
    public var remaining: UInt64 { limit > used ? limit - used : 0 }
    public var fractionUsed: Double { limit == 0 ? 0 : Double(used) / Double(limit) }

    /// Sums the buckets of `quota`'s scope that start in [period start, now).
    public static func measure(_ quota: Quota, buckets: [UsageBucket], now: Date) -> QuotaUsage {
        measure(quota, buckets: buckets, interval: quota.interval(containing: now), now: now)
    }

    /// The same over a given period (tor's own interval for a Tor quota).
    public static func measure(_ quota: Quota, buckets: [UsageBucket], interval: DateInterval, now: Date) -> QuotaUsage {
        var read: UInt64 = 0, written: UInt64 = 0
        for b in buckets where b.start >= interval.start && b.start < now && quota.scope.includes(b) {
            let n = quota.scope.bytes(of: b)
            if b.direction == .inbound { read &+= n } else if b.direction == .outbound { written &+= n }
        }
        return QuotaUsage(quotaName: quota.name, interval: interval, read: read, written: written,
                          used: quota.rule.bytes(read: read, written: written), limit: quota.limit)
    }

    public static func measure(_ quota: Quota, source: UsageHistorySource, now: Date) throws -> QuotaUsage {
        let interval = quota.interval(containing: now)
        return measure(quota, buckets: try source.buckets(from: interval.start, to: now), now: now)
    }
}

/// What Tor does with its stored counters when it starts (or re-reads its
/// configuration) — `configure_accounting()`, docs/tor-facts.md §1.3.
public enum IntervalContinuity: Sendable, Equatable {
    /// No stored interval: start a new one.
    case noStoredInterval
    /// The stored start is the computed start: continue.
    case continued
    /// The start moved by at most ±50 % of the stored period's length (a
    /// changed AccountingStart, a small clock step): keep the counters,
    /// keep the stored start, end at the end of the period containing now.
    case moved(fraction: Double)
    /// Moved forward by ≥ 99 %: the interval simply elapsed; start a new one.
    case elapsed(fraction: Double)
    /// Anything else (incl. the clock going back more than half a period):
    /// Tor warns "Mismatched accounting interval" and starts a fresh one.
    case mismatched(fraction: Double)

    /// Whether the stored byte counters still count.
    public var keepsCounters: Bool {
        switch self {
        case .continued, .moved: return true
        default: return false
        }
    }

    /// Decides as Tor does and returns the interval Tor then uses.
    public static func decide(storedStart: Date?, now: Date, period: AccountingPeriod,
                              zone: TimeZone) -> (IntervalContinuity, DateInterval) {
        let current = period.torInterval(containing: now, in: zone)
        guard let stored = storedStart else { return (.noStoredInterval, current) }
        if stored == current.start {
            return (.continued, current)
        }
        let duration = period.lengthOfPeriod(containing: stored, in: zone)
        let delta = current.start.timeIntervalSince(stored) / duration
        if -0.50 <= delta && delta <= 0.50 {
            let end = period.edge(containing: now, getEnd: true, in: zone,
                                  previousOffset: zone.secondsFromGMT(for: current.start))
            return (.moved(fraction: delta), DateInterval(start: min(stored, end), end: end))
        }
        if delta >= 0.99 { return (.elapsed(fraction: delta), current) }
        return (.mismatched(fraction: delta), current)
    }
}
