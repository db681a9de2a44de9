import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAccounting

func utc(_ s: String) -> Date { TorTime.parse(s)! }
func zone(_ id: String) -> TimeZone { TimeZone(identifier: id)! }

/// Expected edges were produced by running Tor's
/// `edge_of_accounting_period_containing()` verbatim in C against glibc 2.36
/// `mktime` (each case in a fresh process, TZ set to the zone), so they are
/// what tor computes on Debian bookworm.
let glibcEdgeVectors: [(zone: String, period: String, now: String, start: String, end: String)] = [
        ("UTC", "week 1 03:30", "2026-11-21T12:00:00Z", "2026-11-16T03:30:00Z", "2026-11-23T03:30:00Z"),
        ("UTC", "week 1 03:30", "2026-11-16T03:29:00Z", "2026-11-09T03:30:00Z", "2026-11-16T03:30:00Z"),
        ("UTC", "week 1 03:30", "2026-11-16T03:30:00Z", "2026-11-16T03:30:00Z", "2026-11-23T03:30:00Z"),
        ("UTC", "month 28 12:00", "2026-03-01T00:00:00Z", "2026-02-28T12:00:00Z", "2026-03-28T12:00:00Z"),
        ("UTC", "month 28 12:00", "2027-01-10T00:00:00Z", "2026-12-28T12:00:00Z", "2027-01-28T12:00:00Z"),
        ("UTC", "month 28 12:00", "2024-02-28T11:59:00Z", "2024-01-28T12:00:00Z", "2024-02-28T12:00:00Z"),
        ("UTC", "month 28 12:00", "2024-02-29T12:00:00Z", "2024-02-28T12:00:00Z", "2024-03-28T12:00:00Z"),
        ("UTC", "month 1 00:00", "2026-12-31T23:59:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("UTC", "month 1 00:00", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z"),
        ("UTC", "day 23:59", "2026-06-15T23:58:00Z", "2026-06-14T23:59:00Z", "2026-06-15T23:59:00Z"),
        ("Europe/Berlin", "day 00:00", "2026-03-29T12:00:00Z", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"),
        ("Europe/Berlin", "day 00:00", "2026-10-25T12:00:00Z", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z"),
        ("Europe/Berlin", "day 02:30", "2026-03-29T01:10:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"),
        ("Europe/Berlin", "day 02:30", "2026-03-28T12:00:00Z", "2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z"),
        ("Europe/Berlin", "day 02:30", "2026-10-25T00:40:00Z", "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"),
        ("Europe/Berlin", "day 02:30", "2026-10-25T01:40:00Z", "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"),
        ("Europe/Berlin", "day 02:30", "2026-10-25T01:10:00Z", "2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z"),
        ("Europe/Berlin", "week 7 02:00", "2026-03-29T06:00:00Z", "2026-03-29T01:00:00Z", "2026-04-05T00:00:00Z"),
        ("Europe/Berlin", "week 7 02:00", "2026-10-25T06:00:00Z", "2026-10-25T01:00:00Z", "2026-11-01T01:00:00Z"),
        ("Europe/Berlin", "month 25 03:00", "2026-04-01T00:00:00Z", "2026-03-25T02:00:00Z", "2026-04-25T01:00:00Z"),
        ("Europe/Berlin", "month 25 03:00", "2026-10-26T00:00:00Z", "2026-10-25T02:00:00Z", "2026-11-25T02:00:00Z"),
        ("America/New_York", "day 01:30", "2026-11-01T05:40:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"),
        ("America/New_York", "day 01:30", "2026-11-01T06:40:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"),
        ("America/New_York", "day 01:30", "2026-11-01T05:10:00Z", "2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z"),
        ("America/New_York", "day 02:30", "2026-03-08T07:10:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"),
        ("America/New_York", "day 02:30", "2026-03-08T06:40:00Z", "2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z"),
        ("America/New_York", "month 8 02:30", "2026-03-20T00:00:00Z", "2026-03-08T07:30:00Z", "2026-04-08T06:30:00Z"),
        ("Asia/Kolkata", "week 3 10:00", "2026-11-21T12:00:00Z", "2026-11-18T04:30:00Z", "2026-11-25T04:30:00Z"),
        ("Australia/Lord_Howe", "day 02:15", "2026-10-04T12:00:00Z", "2026-10-03T15:45:00Z", "2026-10-04T15:15:00Z"),
        ("Australia/Lord_Howe", "day 02:15", "2026-04-05T12:00:00Z", "2026-04-04T15:45:00Z", "2026-04-05T15:45:00Z"),
        ("Pacific/Chatham", "month 1 00:00", "2026-05-15T00:00:00Z", "2026-04-30T11:15:00Z", "2026-05-31T11:15:00Z"),
]

@Suite struct AccountingPeriodTests {
    @Test func weekOneAtThreeThirtyOnASaturdayIsTheMondayToMondayIntervalTorVerified() throws {
        let p = try AccountingPeriod(parsing: "week 1 03:30")
        let iv = p.interval(containing: utc("2026-11-21T12:00:00Z"), in: zone("UTC"))
        #expect(iv.start == utc("2026-11-16 03:30:00"))
        #expect(iv.end == utc("2026-11-23 03:30:00"))
    }

    @Test func everyEdgeMatchesGlibcMktimeRunningTorsCode() throws {
        for v in glibcEdgeVectors {
            let p = try AccountingPeriod(parsing: v.period)
            let iv = p.torInterval(containing: utc(v.now), in: zone(v.zone))
            #expect(iv.start == utc(v.start), "\(v.zone) \(v.period) at \(v.now): start")
            #expect(iv.end == utc(v.end), "\(v.zone) \(v.period) at \(v.now): end")
        }
    }

    @Test func dailyIntervalsAreTwentyThreeAndTwentyFiveHoursOnBerlinDSTDays() throws {
        let p = try AccountingPeriod(parsing: "day 00:00")
        #expect(p.interval(containing: utc("2026-03-29T12:00:00Z"), in: zone("Europe/Berlin")).duration == 23 * 3600)
        #expect(p.interval(containing: utc("2026-10-25T12:00:00Z"), in: zone("Europe/Berlin")).duration == 25 * 3600)
        #expect(p.interval(containing: utc("2026-07-01T12:00:00Z"), in: zone("Europe/Berlin")).duration == 24 * 3600)
    }

    @Test func aStartTimeInTheSkippedHourMovesForwardAsMktimeDoes() throws {
        // 02:30 does not exist in Berlin on 2026-03-29; glibc reads it with the
        // pre-jump offset, i.e. 03:30 CEST = 01:30 UTC, even though at 03:10
        // local that start lies 20 minutes in the future (Tor does the same).
        let p = try AccountingPeriod(parsing: "day 02:30")
        let iv = p.torInterval(containing: utc("2026-03-29T01:10:00Z"), in: zone("Europe/Berlin"))
        #expect(iv.start == utc("2026-03-29T01:30:00Z"))
    }

    @Test func monthlyPeriodsFollowCalendarMonthsOfTwentyEightToThirtyOneDays() throws {
        let p = try AccountingPeriod(parsing: "month 1 00:00")
        let utcZone = zone("UTC")
        let lengths = ["2026-02-10", "2024-02-10", "2026-04-10", "2026-01-10"].map {
            p.interval(containing: utc("\($0) 00:00:00"), in: utcZone).duration / 86_400
        }
        #expect(lengths == [28, 29, 30, 31])
    }

    @Test func rotateDayFifteenSpansTheMonthBoundary() throws {
        let p = try AccountingPeriod(parsing: "month 15 06:00")
        let iv = p.interval(containing: utc("2027-01-03T00:00:00Z"), in: zone("UTC"))
        #expect(iv.start == utc("2026-12-15 06:00:00"))
        #expect(iv.end == utc("2027-01-15 06:00:00"))
    }

    @Test func theSameInstantFallsInDifferentDaysInDifferentZones() throws {
        let p = try AccountingPeriod(parsing: "day 00:00")
        let now = utc("2026-06-01T02:00:00Z")
        #expect(p.interval(containing: now, in: zone("UTC")).start == utc("2026-06-01T00:00:00Z"))
        #expect(p.interval(containing: now, in: zone("America/New_York")).start == utc("2026-05-31T04:00:00Z"))
        #expect(p.interval(containing: now, in: zone("Asia/Tokyo")).start == utc("2026-05-31T15:00:00Z"))
    }

    @Test func consecutiveIntervalsTileTimeWithoutGapsOrOverlaps() throws {
        for spec in ["day 04:00", "week 3 10:00", "month 28 23:59"] {
            let p = try AccountingPeriod(parsing: spec)
            for id in ["Europe/Berlin", "America/New_York", "UTC"] {
                var iv = p.interval(containing: utc("2026-01-01T00:00:00Z"), in: zone(id))
                for _ in 0..<60 {
                    let next = p.interval(after: iv, in: zone(id))
                    #expect(next.start == iv.end, "\(spec) \(id) \(iv)")
                    iv = next
                }
            }
        }
    }

    @Test func torsValidationMessagesAreReproducedInTorsOrder() {
        func message(_ s: String) -> String? {
            do { _ = try AccountingPeriod(parsing: s); return nil } catch { return "\(error)" }
        }
        #expect(message("month 31 00:00") == "Monthly accounting must begin on a day between 1 and 28")
        #expect(message("week 0 00:00") == "Weekly accounting must begin on a day between 1 (Monday) and 7 (Sunday)")
        #expect(message("week 03:30") == "Weekly accounting must begin on a day between 1 (Monday) and 7 (Sunday)")
        #expect(message("day 1 03:30") == "Accounting unit 'day' requires 1 argument.")
        #expect(message("month 1") == "Accounting unit 'month' requires 2 arguments.")
        #expect(message("year 1 00:00") == "Unrecognized accounting unit 'year': only 'month', 'week', and 'day' are supported.")
        #expect(message("day 24:00") == "Accounting start time not parseable: bad hour.")
        #expect(message("day 12") == "Accounting start time not parseable: not in HH:MM format")
        #expect(message("day 12:60") == "Accounting start time not parseable: bad minute")
        #expect(message("day 12:30pm") == "Accounting start time not parseable: not in HH:MM format")
        #expect(message("day") == "Too few arguments to AccountingStart")
        #expect(message("DAY 0:05") == nil)
    }
}
