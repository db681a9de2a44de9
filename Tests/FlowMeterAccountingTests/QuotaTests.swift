import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAccounting

@Suite struct ByteQuantityTests {
    @Test func torUnitsArePowersOfTwoAndCaseInsensitiveAsInTor() throws {
        #expect(try ByteQuantity.parseTor("1 GB").bytes == 1 << 30)
        #expect(try ByteQuantity.parseTor("500 GBytes").bytes == 500 << 30)
        #expect(try ByteQuantity.parseTor("1000 KBytes").bytes == 1000 << 10)
        #expect(try ByteQuantity.parseTor("8 mbits").bytes == 8 << 17)
        #expect(try ByteQuantity.parseTor("2 TBits").bytes == 2 << 37)
        #expect(try ByteQuantity.parseTor("1.5 kb").bytes == 1536)
        #expect(try ByteQuantity.parseTor("4096").bytes == 4096)
        #expect(throws: ByteQuantityError.self) { try ByteQuantity.parseTor("1 GiB") }
    }

    @Test func quotaLimitsNeedAnExplicitBaseAndRefuseTheAmbiguousSymbols() throws {
        #expect(try ByteQuantity.parseLimit("10TiB").bytes == 10 << 40)
        #expect(try ByteQuantity.parseLimit("10 TBytes").bytes == 10 << 40)
        #expect(try ByteQuantity.parseLimit("10TB-SI").bytes == 10_000_000_000_000)
        #expect(try ByteQuantity.parseLimit("1.5 gb-si").bytes == 1_500_000_000)
        #expect(try ByteQuantity.parseLimit("123").bytes == 123)
        do {
            _ = try ByteQuantity.parseLimit("10TB")
            Issue.record("10TB must be refused")
        } catch let e as ByteQuantityError {
            #expect(e.description.contains("TiB") && e.description.contains("TB-SI"))
        }
        #expect(throws: ByteQuantityError.self) { try ByteQuantity.parseLimit("5 GB") }
    }
}

@Suite struct QuotaSpecTests {
    @Test func aProviderQuotaParsesWithItsPeriodConsumedByArity() throws {
        let q = try Quota(spec: "provider 10TB-SI month 14 00:00 sum provider", defaultZone: zone("UTC"))
        #expect(q.name == "provider")
        #expect(q.limit == 10_000_000_000_000)
        #expect(q.period == AccountingPeriod(unchecked: .month, day: 14, hour: 0, minute: 0))
        #expect(q.rule == .sum)
        #expect(q.scope == .provider)
    }

    @Test func aTorQuotaNamesItsRelayAndAZone() throws {
        let q = try Quota(spec: "tor1 500 GBytes week 3 10:00 max tor:relay1 tz=Europe/Berlin", defaultZone: zone("UTC"))
        #expect(q.limit == 500 << 30)
        #expect(q.scope == .tor(relay: "relay1"))
        #expect(q.torRelay == "relay1")
        #expect(q.timeZone.identifier == "Europe/Berlin")
        let d = try Quota(spec: "d 1GiB day 12:00 out", defaultZone: zone("UTC"))
        #expect(d.scope == .provider)
    }

    @Test func badQuotaSpecsSayWhatIsWrong() {
        func message(_ s: String) -> String {
            do { _ = try Quota(spec: s, defaultZone: zone("UTC")); return "" } catch { return "\(error)" }
        }
        #expect(message("q 10TB month 1 00:00 sum").contains("ambiguous"))
        #expect(message("q 10TiB month 31 00:00 sum").contains("between 1 and 28"))
        #expect(message("q 10TiB fortnight 1 00:00 sum").contains("day, week or month"))
        #expect(message("q 10TiB day 00:00 total").contains("'sum', 'max', 'in', or 'out'"))
        #expect(message("q 10TiB day 00:00 sum nowhere").contains("Unknown scope"))
        #expect(message("q 10TiB day 00:00 sum wire:bogus").contains("Unknown category"))
        #expect(message("q 10TiB day 00:00 sum provider extra").contains("unexpected"))
        #expect(message("q 10TiB day 00:00 sum tz=Mars/Base").contains("unknown time zone"))
        #expect(message("q 10TiB day 00:00").contains("no rule"))
    }

    @Test func torrcAccountingBecomesATorQuotaWithTorsDefaults() throws {
        let q = try #require(try Quota.fromTorrc(relay: "r1", settings: TorAccountingSettings(maxBytes: 1 << 30), zone: zone("UTC")))
        #expect(q.period == .torDefault && q.rule == .max && q.scope == .tor(relay: "r1"))
        #expect(try Quota.fromTorrc(relay: "r1", settings: TorAccountingSettings(maxBytes: 0), zone: zone("UTC")) == nil)
    }
}

func bucket(_ start: Date, seconds: Int = 3600, relay: String = "r1", category: String = "or_inbound",
            direction: String = "in", wire: UInt64 = 0, payload: UInt64 = 0, tor: UInt64 = 0) -> UsageBucket {
    UsageBucket(start: start, durationSeconds: seconds,
                cell: Cell(relay: relay, category: Category(label: category)!, direction: Direction(label: direction)!,
                           CellCounts(packets: 1, bytes: wire, payloadBytes: payload, torPayloadBytes: tor)))
}

@Suite struct QuotaUsageTests {
    let t0 = utc("2026-11-21T00:00:00Z")
    var buckets: [UsageBucket] {
        [bucket(t0, category: "or_inbound", direction: "in", wire: 1100, payload: 1000, tor: 900),
         bucket(t0, category: "or_outbound", direction: "out", wire: 2200, payload: 2000, tor: 1800),
         bucket(t0, category: "dns", direction: "out", wire: 300, payload: 200, tor: 200),
         bucket(t0, relay: "host", category: "other", direction: "in", wire: 50, payload: 40, tor: 0),
         bucket(t0, relay: "r2", category: "exit", direction: "out", wire: 7000, payload: 6000, tor: 6000)]
    }

    @Test func rulesCountSumMaxInAndOutAsTorDoes() {
        #expect(AccountingRule.sum.bytes(read: 10, written: 90) == 100)
        #expect(AccountingRule.max.bytes(read: 10, written: 90) == 90)
        #expect(AccountingRule.in.bytes(read: 10, written: 90) == 10)
        #expect(AccountingRule.out.bytes(read: 10, written: 90) == 90)
    }

    @Test func aProviderQuotaCountsEveryWireByteWhileATorQuotaCountsOneRelaysPayload() throws {
        let now = t0.addingTimeInterval(7200)
        let provider = try Quota(spec: "p 1TiB day 00:00 sum provider", defaultZone: zone("UTC"))
        let tor = try Quota(spec: "t 1TiB day 00:00 sum tor:r1", defaultZone: zone("UTC"))
        #expect(QuotaUsage.measure(provider, buckets: buckets, now: now).used == 1100 + 2200 + 300 + 50 + 7000)
        let u = QuotaUsage.measure(tor, buckets: buckets, now: now)
        #expect(u.read == 900 && u.written == 1800 && u.used == 2700) // no DNS, no other relay
        let payloadExit = try Quota(spec: "x 1TiB day 00:00 out payload:exit,dns", defaultZone: zone("UTC"))
        #expect(QuotaUsage.measure(payloadExit, buckets: buckets, now: now).used == 6200)
    }

    @Test func bucketsBeforeThePeriodOrAfterNowAreNotCounted() throws {
        let q = try Quota(spec: "p 1TiB day 00:00 sum provider", defaultZone: zone("UTC"))
        let bs = [bucket(t0.addingTimeInterval(-3600), wire: 5), bucket(t0, wire: 7), bucket(t0.addingTimeInterval(7200), wire: 11)]
        #expect(QuotaUsage.measure(q, buckets: bs, now: t0.addingTimeInterval(3600)).used == 7)
    }
}

@Suite struct IntervalContinuityTests {
    let day = AccountingPeriod(unchecked: .day, day: 0, hour: 0, minute: 0)
    let utcZone = zone("UTC")

    @Test func restartInsideTheSameIntervalContinuesWithTheCounters() {
        let (c, iv) = IntervalContinuity.decide(storedStart: utc("2026-11-21 00:00:00"), now: utc("2026-11-21 13:00:00"),
                                                period: day, zone: utcZone)
        #expect(c == .continued && c.keepsCounters)
        #expect(iv == DateInterval(start: utc("2026-11-21 00:00:00"), end: utc("2026-11-22 00:00:00")))
    }

    @Test func aStartMovedByAtMostHalfAPeriodKeepsTheCounters() throws {
        // AccountingStart changed from 00:00 to 10:00: the start moves by 10/24.
        let p = try AccountingPeriod(parsing: "day 10:00")
        let (c, iv) = IntervalContinuity.decide(storedStart: utc("2026-11-21 00:00:00"), now: utc("2026-11-21 13:00:00"),
                                                period: p, zone: utcZone)
        #expect(c == .moved(fraction: 10.0 / 24.0) && c.keepsCounters)
        #expect(iv.start == utc("2026-11-21 00:00:00") && iv.end == utc("2026-11-22 10:00:00"))
    }

    @Test func aStartMovedByMoreThanHalfButLessThanAWholePeriodIsAMismatch() throws {
        let p = try AccountingPeriod(parsing: "day 18:00")
        let (c, _) = IntervalContinuity.decide(storedStart: utc("2026-11-20 00:00:00"), now: utc("2026-11-21 01:00:00"),
                                               period: p, zone: utcZone)
        #expect(c == .mismatched(fraction: 18.0 / 24.0) && !c.keepsCounters)
    }

    @Test func theClockJumpingForwardPastTheIntervalStartsANewOne() {
        let (c, iv) = IntervalContinuity.decide(storedStart: utc("2026-11-21 00:00:00"), now: utc("2026-11-24 05:00:00"),
                                                period: day, zone: utcZone)
        #expect(c == .elapsed(fraction: 3) && !c.keepsCounters)
        #expect(iv.start == utc("2026-11-24 00:00:00"))
    }

    @Test func theClockJumpingBackwardAWholePeriodIsAMismatchThatResets() {
        let (c, iv) = IntervalContinuity.decide(storedStart: utc("2026-11-21 00:00:00"), now: utc("2026-11-20 05:00:00"),
                                                period: day, zone: utcZone)
        #expect(c == .mismatched(fraction: -1) && !c.keepsCounters)
        #expect(iv.start == utc("2026-11-20 00:00:00"))
    }

    @Test func noStoredIntervalStartsFresh() {
        #expect(IntervalContinuity.decide(storedStart: nil, now: utc("2026-11-20 05:00:00"), period: day, zone: utcZone).0 == .noStoredInterval)
    }
}
