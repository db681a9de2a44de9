import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAccounting

/// An in-memory history, as the SQLite store will serve it.
struct MemoryHistory: UsageHistorySource {
    var all: [UsageBucket]
    var gapList: [DateInterval] = []
    func buckets(from: Date, to: Date) throws -> [UsageBucket] { all.filter { $0.start >= from && $0.start < to } }
    func gaps(from: Date, to: Date) throws -> [DateInterval] { gapList }
}

/// Hourly buckets of `perHour` bytes each way from `from` for `hours` hours, minus `skip`.
func steady(from: Date, hours: Int, perHour: UInt64, skip: Range<Int> = 0..<0) -> [UsageBucket] {
    (0..<hours).filter { !skip.contains($0) }.flatMap { h -> [UsageBucket] in
        let s = from.addingTimeInterval(Double(h) * 3600)
        return [bucket(s, direction: "in", wire: perHour, payload: perHour, tor: perHour),
                bucket(s, direction: "out", wire: perHour, payload: perHour, tor: perHour)]
    }
}

@Suite struct ForecastTests {
    let monthStart = utc("2026-11-01 00:00:00")
    func quota(_ limit: UInt64, rule: AccountingRule = .sum) -> Quota {
        Quota(name: "q", limit: limit, period: .torDefault, rule: rule, timeZone: zone("UTC"), scope: .provider)
    }

    @Test func noProjectionExistsBeforeThirtyMinutesOfData() throws {
        let b = [bucket(monthStart, seconds: 1200, direction: "in", wire: 1000)]
        let early = try QuotaForecaster.forecast(quota(1 << 40), source: MemoryHistory(all: b), now: monthStart.addingTimeInterval(1200))
        #expect(early.projection == nil)
        #expect(early.usage.used == 1000)
        let b2 = b + [bucket(monthStart.addingTimeInterval(1200), seconds: 1200, direction: "in", wire: 1000)]
        let later = try QuotaForecaster.forecast(quota(1 << 40), source: MemoryHistory(all: b2), now: monthStart.addingTimeInterval(2400))
        #expect(later.projection != nil)
        #expect(later.method == QuotaForecaster.methodName)
    }

    @Test func steadyTrafficProjectsItsRateOverTheWholePeriodAndExhaustsOnTime() throws {
        // 1 GB/h each way for 10 days of a 30-day month; rule sum.
        let now = monthStart.addingTimeInterval(10 * 86_400)
        let f = try QuotaForecaster.forecast(quota(1_000_000_000_000), source: MemoryHistory(all: steady(from: monthStart, hours: 240, perHour: 1_000_000_000)), now: now)
        let p = try #require(f.projection)
        #expect(abs(p.endTotal - 1_440_000_000_000) < 1e6)
        #expect(p.low <= p.endTotal && p.endTotal <= p.high)
        // 2 GB/h against 1 TB: exhausted after 500 h.
        let exhaustion = try #require(p.exhaustion)
        #expect(abs(exhaustion.timeIntervalSince(monthStart.addingTimeInterval(500 * 3600))) < 60)
        #expect(abs(f.periodToDateRate! - 2_000_000_000 / 3600) < 1)
        #expect(abs(f.trailing24hRate! - 2_000_000_000 / 3600) < 1)
        // 520 GB left over 20 days: 26 GB a day; per direction under sum: 520e9 / (20·86400) / 2 B/s.
        #expect(abs(f.dailyBudget! - 26_000_000_000) < 1)
        #expect(f.relayBandwidthRateToLast == UInt64(520_000_000_000.0 / (20 * 86_400) / 2))
    }

    @Test func captureGapsAreNotReadAsZeroTraffic() throws {
        // Capture stopped for two of the first ten days: the rate stays 1 GB/h.
        let now = monthStart.addingTimeInterval(10 * 86_400)
        let gap = DateInterval(start: monthStart.addingTimeInterval(3 * 86_400), duration: 2 * 86_400)
        let history = MemoryHistory(all: steady(from: monthStart, hours: 240, perHour: 1_000_000_000, skip: 72..<120), gapList: [gap])
        let f = try QuotaForecaster.forecast(quota(1 << 50, rule: .in), source: history, now: now)
        let p = try #require(f.projection)
        // 192 GB seen + 20 days × 24 GB; vnstat would spread 192 GB over 10 days.
        #expect(abs(p.endTotal - (192e9 + 480e9)) < 1e6)
        #expect(f.observedSeconds == 8 * 86_400)
        let vnstat = QuotaForecaster.vnstatEstimate(bytes: f.usage.read, elapsedSeconds: 10 * 86_400, periodSeconds: 30 * 86_400)
        #expect(Double(vnstat) < p.endTotal * 0.9)
    }

    @Test func anExhaustedQuotaReportsWhenTheLimitWasCrossed() throws {
        let now = monthStart.addingTimeInterval(2 * 86_400)
        let f = try QuotaForecaster.forecast(quota(10_000_000_000, rule: .max), source: MemoryHistory(all: steady(from: monthStart, hours: 48, perHour: 1_000_000_000)), now: now)
        #expect(f.usage.remaining == 0)
        #expect(f.projection?.exhaustion == monthStart.addingTimeInterval(10 * 3600))
        #expect(f.dailyBudget == 0)
    }

    @Test func theForecastJSONHasTheContractKeysWithNullWhenThereIsNoProjection() throws {
        let q = quota(1 << 40)
        let f = try QuotaForecaster.forecast(q, source: MemoryHistory(all: []), now: monthStart.addingTimeInterval(60))
        let data = try JSONEncoder().encode(QuotaForecastJSON(quota: q, forecast: f))
        let obj = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["name", "limit_bytes", "used_bytes", "period_start", "period_end"] { #expect(obj[key] != nil, "\(key)") }
        #expect(obj["period_start"] as? String == "2026-11-01T00:00:00Z")
        #expect(obj["period_end"] as? String == "2026-12-01T00:00:00Z")
        #expect(obj["projected_end_bytes"] is NSNull)
        #expect(obj["projected_exhaustion"] is NSNull)
        #expect(obj["tor"] is NSNull)
        #expect(try JSONDecoder().decode(QuotaForecastJSON.self, from: data) == QuotaForecastJSON(quota: q, forecast: f))
    }
}

@Suite struct QuotaStatusTests {
    @Test func aTorQuotasStatusCarriesTorsScheduleDrivenByTheProjectedRate() throws {
        let dayStart = utc("2026-11-21 00:00:00")
        let q = Quota(name: "tor-r1", limit: 1 << 30, period: try AccountingPeriod(parsing: "day 00:00"), rule: .max,
                      timeZone: zone("UTC"), scope: .tor(relay: "r1"), torRelay: "r1")
        let config = TorHibernationConfig(accountingMax: 1 << 30, period: q.period, rule: .max, timeZone: zone("UTC"))
        let state = TorAccountingState(intervalStart: utc("2026-11-20 00:00:00"), bytesRead: 629_145_600,
                                       bytesWritten: 524_288_000, secondsActive: 36_000)
        let fp = try TorFingerprint(hex: "E3614183D5214D52D9DD48CEB23C2CB6B653D287")
        let history = MemoryHistory(all: steady(from: dayStart.addingTimeInterval(-86_400), hours: 30, perHour: 36_000_000))
        let now = dayStart.addingTimeInterval(6 * 3600)
        let s = try QuotaStatus.evaluate(q, source: history, now: now, tor: .init(config: config, state: state, fingerprint: fp))
        let tor = try #require(s.tor)
        #expect(tor.current.wakeup?.wake == utc("2026-11-21 03:37:25"))
        #expect(abs(tor.rate - 10_000) < 1)   // 36 MB/h = 10 kB/s, rule max
        let json = s.json
        #expect(json.tor?.wakeup == "2026-11-21T03:37:25Z")
        #expect(json.used_bytes == 6 * 36_000_000)
    }
}
