import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAccounting

/// The period returned for an instant always contains it, Tor's edges kept:
/// when Tor's own interval at that instant does not (HH:MM in the skipped or
/// repeated hour), the neighbouring period between Tor's edges that does.
@Suite struct PeriodContainsNowTests {
    /// Every minute of the hours around `transition` (UTC).
    static func minutes(around transition: String) -> [Date] {
        let t = utc(transition)
        return (-180...180).map { t.addingTimeInterval(Double($0) * 60) }
    }

    @Test(arguments: ["day 02:30", "day 02:00", "day 03:00", "week 7 02:30", "month 25 02:30", "day 00:00"])
    func everyInstantOfBerlinsOctoberFallBackHourLiesInItsPeriod(period: String) throws {
        let p = try AccountingPeriod(parsing: period)
        // 2026-10-25 03:00 CEST → 02:00 CET at 01:00 UTC: 02:00–03:00 happens twice.
        for now in Self.minutes(around: "2026-10-25T01:00:00Z") {
            let iv = p.interval(containing: now, in: zone("Europe/Berlin"))
            #expect(iv.start <= now && now < iv.end, "\(period) at \(now): \(iv)")
        }
    }

    @Test(arguments: ["day 02:30", "week 7 02:30", "month 28 02:30"])
    func everyInstantAroundBerlinsMarchSkippedHourLiesInItsPeriod(period: String) throws {
        let p = try AccountingPeriod(parsing: period)
        for now in Self.minutes(around: "2026-03-29T01:00:00Z") {
            let iv = p.interval(containing: now, in: zone("Europe/Berlin"))
            #expect(iv.start <= now && now < iv.end, "\(period) at \(now): \(iv)")
        }
    }

    @Test func theRepeatedHourBelongsToTheSaturdayPeriodWhichEndsAtTheSecondTwoThirty() throws {
        let p = try AccountingPeriod(parsing: "day 02:30")
        let berlin = zone("Europe/Berlin")
        // 02:40 CEST (first pass), where Tor's interval starts at 02:30 CET, 50 minutes later.
        #expect(p.torInterval(containing: utc("2026-10-25T00:40:00Z"), in: berlin).start == utc("2026-10-25T01:30:00Z"))
        let saturday = DateInterval(start: utc("2026-10-24T00:30:00Z"), end: utc("2026-10-25T01:30:00Z"))
        #expect(p.interval(containing: utc("2026-10-25T00:40:00Z"), in: berlin) == saturday)
        // 02:10 CET (second pass), where Tor's interval ended at 02:30 CEST, 40 minutes before.
        #expect(p.interval(containing: utc("2026-10-25T01:10:00Z"), in: berlin) == saturday)
        // 02:40 CET: Tor's own interval, which contains it.
        #expect(p.interval(containing: utc("2026-10-25T01:40:00Z"), in: berlin)
                == p.torInterval(containing: utc("2026-10-25T01:40:00Z"), in: berlin))
    }

    @Test func aQuotaInBerlinForecastsThePeriodContainingNow() throws {
        let quota = try Quota(spec: "daily 5GiB day 02:30 sum tz=Europe/Berlin", defaultZone: zone("UTC"))
        for now in Self.minutes(around: "2026-10-25T01:00:00Z") {
            let iv = quota.interval(containing: now)
            #expect(iv.start <= now && now < iv.end, "\(now): \(iv)")
        }
    }

    @Test func whereTorsIntervalContainsTheInstantItIsReturnedUnchanged() throws {
        for v in glibcEdgeVectors {
            let p = try AccountingPeriod(parsing: v.period)
            let now = utc(v.now)
            let tor = p.torInterval(containing: now, in: zone(v.zone))
            if tor.start <= now && now < tor.end { #expect(p.interval(containing: now, in: zone(v.zone)) == tor) }
        }
    }
}
