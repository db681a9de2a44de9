import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAccounting

/// A host moving a steady 43 GB a day, a 1 TB (SI) monthly quota, 24.8 days
/// left: it obviously runs out. A store minutes or days old must say so,
/// say what it stands on, and never read the minutes before its start as
/// silence.
@Suite struct YoungStoreForecastTests {
    let quota = Quota(name: "provider", limit: 1_000_000_000_000, period: .torDefault, rule: .sum,
                      timeZone: zone("UTC"), scope: .provider)
    let now = utc("2026-12-07 04:48:00")  // 24.8 days before 2027-01-01
    let perSecondEachWay = 43e9 / 86_400 / 2

    /// What the store holds for traffic observed from `start`: hour buckets
    /// that begin on the hour (the first one before `start`).
    func history(from start: Date) -> MemoryStore {
        var b: [UsageBucket] = []
        var h = Date(timeIntervalSince1970: (start.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
        while h < now {
            let n = UInt64(perSecondEachWay * (min(h.addingTimeInterval(3600), now).timeIntervalSince(max(h, start))))
            b.append(bucket(h, direction: "in", wire: n, payload: n, tor: n))
            b.append(bucket(h, direction: "out", wire: n, payload: n, tor: n))
            h.addTimeInterval(3600)
        }
        return MemoryStore(all: b, start: start)
    }

    /// vnstat's formula on what was measured since `start`, over the period from it.
    func naive(_ f: QuotaForecast, from start: Date) -> Double {
        Double(f.usage.used) / now.timeIntervalSince(start) * f.usage.interval.end.timeIntervalSince(start)
    }

    @Test(arguments: [3000.0, 10_800.0, 86_400.0, 216_000.0])
    func aYoungStoreProjectsAtLeastItsMeasuredRateAndRunsOutAsItWill(age: TimeInterval) throws {
        let start = now.addingTimeInterval(-age)
        let f = try QuotaForecaster.forecast(quota, source: history(from: start), now: now)
        let p = try #require(f.projection)
        let implied = naive(f, from: start)
        #expect(p.endTotal >= implied * 0.999, "projected \(p.endTotal), the measured rate implies \(implied)")
        #expect(p.low <= implied && implied <= p.high, "range \(p.low)–\(p.high) misses \(implied)")
        // The period began six days before the data: counted at the measured rate, stated as such.
        #expect(abs(p.endTotal - 43e9 * 31) < 0.02 * 43e9 * 31, "\(p.endTotal)")
        #expect(p.exhaustion != nil && p.exhaustion! < f.usage.interval.end)
        #expect(abs(f.ownHistorySeconds - age) < 1, "observed \(f.ownHistorySeconds) s of a store \(age) s old")
        #expect(f.learnsFrom == start)
        #expect(f.unobservedSeconds == start.timeIntervalSince(f.usage.interval.start))
        #expect(f.usageIsLowerBound)
    }

    @Test func withSixDaysImportedTheLevelStandsOnThemAndTheViewsSaySo() throws {
        let start = now.addingTimeInterval(-50 * 60)
        var store = history(from: start)
        let monthStart = utc("2026-12-01 00:00:00")
        let before = UInt64(perSecondEachWay * start.timeIntervalSince(monthStart))
        store.seeds = [ImportedUsage(relay: "r1", start: monthStart, end: start, read: before, written: before,
                                     source: .vnstatDB, imported: start)]
        let f = try QuotaForecaster.forecast(quota, source: store, now: now)
        let p = try #require(f.projection)
        #expect(abs(p.endTotal - 43e9 * 31) < 0.01 * 43e9 * 31, "\(p.endTotal)")
        #expect(f.levelUsesImported && f.unobservedEstimate == 0 && !f.usageIsLowerBound)
        #expect(abs(f.historySeconds - now.timeIntervalSince(monthStart)) < 1)
        #expect(f.learnsFrom == monthStart)
    }

    @Test func underThirtyMinutesWithoutAnImportThereIsNoProjectionAndTheReasonSaysHowMuchDataThereIs() throws {
        let f = try QuotaForecaster.forecast(quota, source: history(from: now.addingTimeInterval(-600)), now: now)
        #expect(f.projection == nil)
        #expect(abs(f.ownHistorySeconds - 600) < 1)
    }
}

/// A history with imported seeds and a known first observation, as the store serves them.
struct MemoryStore: UsageHistorySource, ImportedUsageSource {
    var all: [UsageBucket]
    var start: Date
    var seeds: [ImportedUsage] = []
    func buckets(from: Date, to: Date) throws -> [UsageBucket] { all.filter { $0.start >= from && $0.start < to } }
    func gaps(from: Date, to: Date) throws -> [DateInterval] { [] }
    func observationStart() throws -> Date? { start }
    func importedUsage(overlapping interval: DateInterval) throws -> [ImportedUsage] { seeds }
}

/// `flowmeter backtest --ages`: young stores against vnstat's formula with the same history.
@Suite struct YoungStoreBacktestTests {
    static let quota = Quota(name: "p", limit: 200 << 40, period: .torDefault, rule: .sum,
                             timeZone: TimeZone(identifier: "UTC")!, scope: .provider)
    static let start = utc("2026-01-01 00:00:00")

    @Test(arguments: [SyntheticHistory.Shape.flat, .weekly, .step, .flood])
    func atEveryAgeFlowMeterIsNoWorseThanVnstatAndFromThreeDaysOnBetterWithoutAnImport(shape: SyntheticHistory.Shape) throws {
        let h = SyntheticHistory.generate(shape, start: Self.start, days: 90, seed: 1)
        let ages: [TimeInterval] = [600, 3600, 86_400, 3 * 86_400]
        let results = try YoungStoreBacktest.run(quota: Self.quota, source: h, from: Self.start,
                                                 to: Self.start.addingTimeInterval(90 * 86_400), ages: ages, everyDays: 4)
        for r in results {
            for (kind, b) in [("without import", r.withoutImport), ("with import", r.withImport)] {
                print("young \(shape.rawValue) \(Int(r.age)) s \(kind): FlowMeter \(b.flowMeterMAPE) % vnstat \(b.vnstatMAPE) % coverage \(b.coverage)")
                guard b.projectedPointCount > 0 else {
                    #expect(r.age < QuotaForecaster.minimumObservedSeconds && kind == "without import")
                    continue
                }
                #expect(b.flowMeterMAPE <= b.vnstatMAPE + 0.01, "\(shape) \(r.age) s \(kind)")
            }
            if r.age >= 3 * 86_400 { #expect(r.withoutImport.flowMeterMAPE < r.withoutImport.vnstatMAPE) }
        }
    }
}
