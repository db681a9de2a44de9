import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAccounting

/// Level changes, the lower-bound mark and the torrc advice.
@Suite struct LevelShiftAndAdviceTests {
    static let start = utc("2026-01-01 00:00:00")
    static let quota = Quota(name: "p", limit: 200 << 40, period: .torDefault, rule: .sum,
                             timeZone: TimeZone(identifier: "UTC")!, scope: .provider)

    static func forecast(_ h: HistoryFile, at now: Date) -> QuotaForecast {
        let buckets = try! h.buckets(from: start, to: now)
        let traffic = HourlyTraffic(buckets: buckets, gaps: try! h.gaps(from: start, to: now), scope: .provider,
                                    from: start, to: now, zone: TimeZone(identifier: "UTC")!)
        let period = buckets.filter { $0.start >= quota.interval(containing: now).start }
        return QuotaForecaster.forecast(quota, traffic: traffic, usage: QuotaUsage.measure(quota, buckets: period, now: now), now: now)
    }

    @Test func aDoubledRelayBandwidthRateIsALevelChangeNotATrend() throws {
        // The step shape doubles on 10 February (day 40); a week later the
        // projection learns from the step on and projects the new level flat.
        let h = SyntheticHistory.generate(.step, start: Self.start, days: 60)
        let f = Self.forecast(h, at: utc("2026-02-18 00:00:00"))
        let change = try #require(f.levelChange)
        #expect(abs(change.timeIntervalSince(utc("2026-02-10 00:00:00"))) <= 2 * 86_400, "\(change)")
        #expect(try #require(f.learnsFrom) >= utc("2026-02-08 00:00:00"))
        let p = try #require(f.projection)
        // 17 days at ~40 MB/s per direction, 11 more at the same: ≈ 2.05 GB/s·day each way.
        let actualRest = 40_000_000.0 * 2.025 * 11 * 86_400
        #expect(abs(p.endTotal - Double(f.usage.used) - actualRest) / actualRest < 0.08)
    }

    @Test func steadyTrafficHasNoLevelChange() {
        let h = SyntheticHistory.generate(.flat, start: Self.start, days: 60)
        let f = Self.forecast(h, at: utc("2026-02-18 00:00:00"))
        #expect(f.levelChange == nil)
        #expect(f.learnsFrom! <= utc("2025-12-31 00:00:00").addingTimeInterval(3 * 86_400))
    }

    @Test func aFloodThatEndedIsNoLevelChange() {
        // Floods last one to three days; a change must hold four, so at most
        // a rare forecast (two floods close together) reads one as a new level.
        let h = SyntheticHistory.generate(.flood, start: Self.start, days: 120)
        var changes = 0
        for d in 30..<120 {
            if Self.forecast(h, at: Self.start.addingTimeInterval(Double(d) * 86_400)).levelChange != nil { changes += 1 }
        }
        #expect(changes <= 2, "\(changes) of 90 forecasts saw a level change")
    }

    @Test func theAdviceIsATorrcLineAndSaysWhenTorWouldRefuseIt() {
        #expect(RateAdvice.torrcLine(420_000) == "RelayBandwidthRate 410 KBytes")
        let low = RateAdvice(bytesPerSecond: 193, hostWide: false, shares: [])
        #expect(low.belowTorMinimum)
        #expect(!RateAdvice(bytesPerSecond: 76_800, hostWide: false, shares: []).belowTorMinimum)
    }

    @Test func aHostWideQuotasRateIsSharedAmongRelaysByTheirTraffic() throws {
        let now = utc("2026-11-10 00:00:00")
        let recent = [bucket(now.addingTimeInterval(-3600), relay: "guardA", wire: 3_000),
                      bucket(now.addingTimeInterval(-3600), relay: "exitB", wire: 1_000),
                      bucket(now.addingTimeInterval(-3600), relay: "host", wire: 1_000)]
        let a = RateAdvice.advise(rate: 1_000_000, quota: Self.quota, recent: recent)
        #expect(a.hostWide)
        // The host's own fifth keeps flowing; the relays share the rest 3:1.
        #expect(a.bytesPerSecond == 800_000)
        #expect(a.shares.map(\.relay) == ["exitB", "guardA"])
        #expect(a.shares.map(\.bytesPerSecond) == [200_000, 600_000])
        #expect(a.shares[1].torrc == "RelayBandwidthRate 585 KBytes")
        let one = RateAdvice.advise(rate: 1_000_000, quota: Quota(name: "t", limit: 1 << 40, period: .torDefault, rule: .max,
                                                                   timeZone: TimeZone(identifier: "UTC")!, scope: .tor(relay: "guardA")),
                                    recent: recent)
        #expect(!one.hostWide && one.shares.isEmpty && one.bytesPerSecond == 1_000_000)
    }

    @Test func aPeriodThatBeganBeforeTheFirstDataIsALowerBound() throws {
        let monthStart = utc("2026-11-01 00:00:00")
        let q = Quota(name: "q", limit: 1 << 40, period: .torDefault, rule: .sum, timeZone: zone("UTC"), scope: .provider)
        let late = steady(from: monthStart.addingTimeInterval(5 * 86_400), hours: 48, perHour: 1_000_000)
        let f = try QuotaForecaster.forecast(q, source: MemoryHistory(all: late), now: monthStart.addingTimeInterval(7 * 86_400))
        #expect(f.usageIsLowerBound)
        #expect(QuotaForecastJSON(quota: q, forecast: f).used_is_lower_bound)
        let whole = steady(from: monthStart, hours: 48, perHour: 1_000_000)
        #expect(try !QuotaForecaster.forecast(q, source: MemoryHistory(all: whole), now: monthStart.addingTimeInterval(2 * 86_400)).usageIsLowerBound)
    }

    @Test func anImportedSeedReplacesWhatFlowMeterCountedBeforeItsEnd() throws {
        struct Seeded: UsageHistorySource, ImportedUsageSource {
            var history: MemoryHistory
            var seeds: [ImportedUsage]
            func buckets(from: Date, to: Date) throws -> [UsageBucket] { try history.buckets(from: from, to: to) }
            func gaps(from: Date, to: Date) throws -> [DateInterval] { [] }
            func importedUsage(overlapping interval: DateInterval) throws -> [ImportedUsage] { seeds }
        }
        let monthStart = utc("2026-11-01 00:00:00")
        let q = Quota(name: "q", limit: 1 << 40, period: .torDefault, rule: .sum, timeZone: zone("UTC"), scope: .provider)
        // FlowMeter from day 5; the seed covers day 0 to day 6.
        let buckets = steady(from: monthStart.addingTimeInterval(5 * 86_400), hours: 48, perHour: 1_000_000)
        let seed = ImportedUsage(relay: "host", start: monthStart, end: monthStart.addingTimeInterval(6 * 86_400),
                                 read: 500_000_000, written: 400_000_000, source: .vnstatDB, imported: monthStart)
        let f = try QuotaForecaster.forecast(q, source: Seeded(history: MemoryHistory(all: buckets), seeds: [seed]),
                                             now: monthStart.addingTimeInterval(7 * 86_400))
        #expect(f.imported == seed)
        #expect(!f.usageIsLowerBound)
        #expect(f.usage.read == 500_000_000 + 24 * 1_000_000)
        #expect(f.usage.used == 900_000_000 + 48 * 1_000_000)
    }
}
