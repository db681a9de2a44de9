import FlowMeterCore
import Foundation

/// The backtest of a store only `age` old: FlowMeter installed `age` before
/// each projection instant, with or without an import of what came before
/// (as `flowmeter import` of vnstat's database gives it), against vnstat's
/// formula with the same history (`getestimates()`: a database created in
/// the period projects from its creation, docs/tor-facts.md §6.1).
public enum YoungStoreBacktest {
    public struct Result: Sendable {
        public var age: TimeInterval
        public var withoutImport: BacktestResult
        public var withImport: BacktestResult
    }

    /// For every complete period of `quota` in [from, to) and every
    /// `everyDays`-th day boundary in it, at each age.
    public static func run(quota: Quota, source: UsageHistorySource, from: Date, to: Date, ages: [TimeInterval],
                           everyDays: Int = 1) throws -> [Result] {
        let buckets = try source.buckets(from: from, to: to).filter { quota.scope.includes($0) }
        let dataStart = buckets.map(\.start).min() ?? to
        var results = ages.map { Result(age: $0, withoutImport: .init(periods: [], method: QuotaForecaster.methodName),
                                        withImport: .init(periods: [], method: QuotaForecaster.methodName)) }
        var iv = quota.interval(containing: max(from, dataStart))
        if iv.start < dataStart { iv = quota.period.interval(after: iv, in: quota.timeZone) }
        while iv.end <= to && iv.duration > 0 {
            let inPeriod = buckets.filter { $0.start >= iv.start && $0.start < iv.end }
            let actual = QuotaUsage.measure(quota, buckets: inPeriod, interval: iv, now: iv.end)
            let total = Double(actual.used)
            for (a, age) in ages.enumerated() {
                var plain: [BacktestResult.Point] = [], imported: [BacktestResult.Point] = []
                var k = 1.0
                while true {
                    let now = iv.start.addingTimeInterval(k * 86_400)
                    if now >= iv.end { break }
                    k += Double(max(1, everyDays))
                    let installed = now.addingTimeInterval(-age)
                    plain.append(point(quota, buckets: buckets, period: iv, installed: installed, now: now, importing: false))
                    imported.append(point(quota, buckets: buckets, period: iv, installed: installed, now: now, importing: true))
                }
                results[a].withoutImport.periods.append(.init(interval: iv, actual: total, points: plain))
                results[a].withImport.periods.append(.init(interval: iv, actual: total, points: imported))
            }
            iv = quota.period.interval(after: iv, in: quota.timeZone)
        }
        return results
    }

    /// One projection instant: the store holds only what came after
    /// `installed` (a bucket it cuts is counted pro rata, the history's
    /// rows being even within themselves); `importing` adds what the period
    /// used before it as an imported seed.
    static func point(_ quota: Quota, buckets: [UsageBucket], period iv: DateInterval, installed: Date, now: Date,
                      importing: Bool) -> BacktestResult.Point {
        let before = buckets.filter { $0.start < now && $0.start >= iv.start }
        let kept = clip(before, from: installed)
        let traffic = HourlyTraffic(buckets: kept, gaps: [], scope: quota.scope, from: max(installed, now.addingTimeInterval(-QuotaForecaster.windowSeconds)),
                                    to: now, zone: quota.timeZone, observationStart: installed)
        var usage = QuotaUsage.measure(quota, buckets: kept, interval: iv, now: now)
        var seed: ImportedUsage? = nil
        if importing && installed > iv.start {
            let earlier = clip(before, until: installed)
            let u = QuotaUsage.measure(quota, buckets: earlier, interval: iv, now: installed)
            seed = ImportedUsage(relay: quota.scope.relay ?? HistoryFile.relayLabel, start: iv.start, end: installed,
                                 read: u.read, written: u.written, source: .vnstatDB, imported: installed)
            usage.read &+= u.read; usage.written &+= u.written
            usage.used = quota.rule.bytes(read: usage.read, written: usage.written)
        }
        let f = QuotaForecaster.forecast(quota, traffic: traffic, usage: usage, now: now, seed: seed)
        // vnstat's database: created at the install, or holding the whole period when imported.
        let created = importing ? iv.start : max(iv.start, installed)
        let div = Int(now.timeIntervalSince(created)), mult = Int(iv.end.timeIntervalSince(created))
        let v = quota.rule.bytes(read: Double(QuotaForecaster.vnstatEstimate(bytes: usage.read, elapsedSeconds: div, periodSeconds: mult)),
                                 written: Double(QuotaForecaster.vnstatEstimate(bytes: usage.written, elapsedSeconds: div, periodSeconds: mult)))
        let p = f.projection
        return .init(at: now, flowMeter: p?.endTotal ?? .nan, vnstat: v, low: p?.low ?? .nan, high: p?.high ?? .nan)
    }

    /// The buckets' parts at or after `start`.
    static func clip(_ buckets: [UsageBucket], from start: Date) -> [UsageBucket] {
        buckets.compactMap { b in
            let end = b.start.addingTimeInterval(Double(b.durationSeconds))
            guard end > start else { return nil }
            guard b.start < start else { return b }
            return scaled(b, from: start, to: end)
        }
    }

    /// The buckets' parts before `end`.
    static func clip(_ buckets: [UsageBucket], until end: Date) -> [UsageBucket] {
        buckets.compactMap { b in
            guard b.start < end else { return nil }
            let bEnd = b.start.addingTimeInterval(Double(b.durationSeconds))
            return bEnd <= end ? b : scaled(b, from: b.start, to: end)
        }
    }

    private static func scaled(_ b: UsageBucket, from: Date, to: Date) -> UsageBucket {
        let f = to.timeIntervalSince(from) / Double(max(1, b.durationSeconds))
        var c = b.cell.counts
        c.packets = UInt64(Double(c.packets) * f); c.bytes = UInt64(Double(c.bytes) * f)
        c.payloadBytes = UInt64(Double(c.payloadBytes) * f); c.torPayloadBytes = UInt64(Double(c.torPayloadBytes) * f)
        var cell = b.cell
        cell.counts = c
        return UsageBucket(start: from, durationSeconds: max(1, Int(to.timeIntervalSince(from).rounded())), cell: cell)
    }
}
