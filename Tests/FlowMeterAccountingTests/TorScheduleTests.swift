import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAccounting

/// The three vectors verified against tor 0.4.9.11 (docs/tor-facts.md §2.4):
/// TZ=UTC, `AccountingStart day 00:00`, AccountingMax 1 GiB, rule max, the
/// interval starting 2026-11-21 00:00:00, and this fingerprint.
@Suite struct TorScheduleTests {
    let fp = try! TorFingerprint(hex: "E3614183D5214D52D9DD48CEB23C2CB6B653D287")
    let config = TorHibernationConfig(accountingMax: 1 << 30, period: try! AccountingPeriod(parsing: "day 00:00"),
                                      rule: .max, timeZone: TimeZone(identifier: "UTC")!)
    let interval = DateInterval(start: utc("2026-11-21 00:00:00"), end: utc("2026-11-22 00:00:00"))
    let previousStart = utc("2026-11-20 00:00:00")

    @Test func theWakeupDigestStartsWithTheVerifiedBytes() {
        let d = TorSchedule.wakeupDigest(intervalStart: interval.start, fingerprint: fp)
        #expect(Array(d.prefix(4)) == [0x75, 0x4b, 0x70, 0x7e])
        #expect(TorSchedule.wakeup(interval: interval, expectedBytesPerMinute: 1, accountingMax: 1 << 30, fingerprint: fp).digestValue == 2_121_288_565)
    }

    @Test func vectorOneWakesAt033725AndExhaustsAround204125() {
        let state = TorAccountingState(intervalStart: previousStart, bytesRead: 629_145_600, bytesWritten: 524_288_000, secondsActive: 36_000)
        let e = TorSchedule.expectedUsage(after: state, config: config)
        #expect(e.bytesPerMinute == 1_048_576 && e.basis == .activeSeconds && !e.usesDivideBy60Quirk)
        let w = TorSchedule.wakeup(interval: interval, expectedBytesPerMinute: e.bytesPerMinute, accountingMax: 1 << 30, fingerprint: fp)
        #expect(w.timeToExhaustSeconds == 61_440 && w.timeToConsiderSeconds == 24_960)
        #expect(w.wake == utc("2026-11-21 03:37:25"))
        #expect(w.expectedExhaustion == utc("2026-11-21 20:41:25"))
    }

    @Test func vectorTwoWakesAt184925() {
        let state = TorAccountingState(intervalStart: previousStart, bytesRead: 356_800_000, secondsActive: 6000)
        let e = TorSchedule.expectedUsage(after: state, config: config)
        #expect(e.bytesPerMinute == 3_568_000)
        let w = TorSchedule.wakeup(interval: interval, expectedBytesPerMinute: e.bytesPerMinute, accountingMax: 1 << 30, fingerprint: fp)
        #expect(w.timeToExhaustSeconds == 18_000 && w.timeToConsiderSeconds == 68_400)
        #expect(w.wake == utc("2026-11-21 18:49:25"))
    }

    @Test func vectorThreeHitsTheDivideBy60QuirkAndWakesAtTheIntervalStart() {
        let state = TorAccountingState(intervalStart: previousStart, bytesRead: 1_020_054_732, secondsActive: 40_000,
                                       softLimitHitAt: previousStart.addingTimeInterval(36_000), bytesAtSoftLimit: 1_020_054_732)
        let e = TorSchedule.expectedUsage(after: state, config: config)
        #expect(e.bytesPerMinute == 472 && e.basis == .softLimit && e.usesDivideBy60Quirk)
        #expect(e.intendedBytesPerMinute == 28_334 * 60)
        let w = TorSchedule.wakeup(interval: interval, expectedBytesPerMinute: 472, accountingMax: 1 << 30, fingerprint: fp)
        #expect(w.wake == interval.start)
        #expect(w.expectedExhaustion == interval.end)
    }

    @Test func theReportReproducesVectorOneFromAStateFileAfterTheIntervalElapsed() throws {
        let state = try TorAccountingState(stateFile: """
            # Tor state file
            AccountingBytesReadInInterval 629145600
            AccountingBytesWrittenInInterval 524288000
            AccountingIntervalStart 2026-11-20 00:00:00
            AccountingSecondsActive 10 hours
            LastWritten 2026-11-20 23:59:00
            """)
        let r = TorSchedule.report(config: config, state: state, fingerprint: fp, now: utc("2026-11-21 00:00:05"))
        #expect(r.continuity == .elapsed(fraction: 1))
        #expect(r.current.interval == interval)
        #expect(r.current.wakeup?.wake == utc("2026-11-21 03:37:25"))
        #expect(r.current.expectedUsage.bytesPerMinute == 1_048_576)
        #expect(r.current.usedBytes == 0)
        // Dormant until 03:37:25, then E/60 B/s: soft at 95 % … hard at 1 GiB.
        let soft = TorSchedule.softLimit(accountingMax: 1 << 30, expectedBytesPerMinute: 1_048_576)
        #expect(r.current.softLimit == soft)
        #expect(r.current.predictedHardHibernation == utc("2026-11-21 20:41:25"))
        #expect(r.next.interval.start == interval.end)
        #expect(r.next.expectedUsage.basis == .none && r.next.wakeup?.wake == interval.end)
    }

    @Test func afterTheQuirkThePredictionsUseTheRateTorMeantAndTheSoftLimitHugsTheHardOne() {
        let state = TorAccountingState(intervalStart: previousStart, bytesRead: 1_020_054_732, secondsActive: 40_000,
                                       softLimitHitAt: previousStart.addingTimeInterval(36_000), bytesAtSoftLimit: 1_020_054_732)
        let r = TorSchedule.report(config: config, state: state, fingerprint: fp, now: interval.start)
        #expect(r.current.expectedUsage.bytesPerMinute == 472)
        #expect(r.current.softLimit == (1 << 30) - 472 * 180)
        #expect(r.current.wakeup?.wake == interval.start)
        #expect(r.rate == Double(28_334 * 60) / 60)
        #expect(r.current.predictedHardHibernation == interval.start.addingTimeInterval(Double(1 << 30) / 28_334))
    }

    @Test func aRestartInTheSameIntervalKeepsTheStoredEAndCounters() throws {
        let state = TorAccountingState(intervalStart: interval.start, bytesRead: 100 << 20, bytesWritten: 50 << 20,
                                       secondsActive: 3600, expectedUsage: 1_048_576)
        let r = TorSchedule.report(config: config, state: state, fingerprint: fp, now: utc("2026-11-21 12:00:00"))
        #expect(r.continuity == .continued)
        #expect(r.current.usedBytes == 100 << 20)
        #expect(r.current.wakeup?.wake == utc("2026-11-21 03:37:25"))
        // next interval's E comes from these counters: 100 MiB / 60 min.
        #expect(r.next.expectedUsage.bytesPerMinute == (100 << 20) / 60)
    }

    @Test func theSoftLimitIsTheLargestOfNinetyFivePercentFiveHundredMebibytesAndThreeHours() {
        #expect(TorSchedule.softLimit(accountingMax: 1000, expectedBytesPerMinute: 0) == 950)
        let tib: UInt64 = 1 << 40
        #expect(TorSchedule.softLimit(accountingMax: tib, expectedBytesPerMinute: 0) == tib - 500 * 1024 * 1024)
        #expect(TorSchedule.softLimit(accountingMax: tib, expectedBytesPerMinute: 1024) == tib - 1024 * 180)
        #expect(TorSchedule.softLimit(accountingMax: 1 << 30, expectedBytesPerMinute: 1_048_576) == UInt64(Double(1 << 30) * 0.95))
    }

    @Test func expectedUsageIsCappedByRelayBandwidthRateAndDoubledForSum() {
        var c = config
        c.relayBandwidthRate = 1000
        let state = TorAccountingState(intervalStart: previousStart, bytesRead: 629_145_600, secondsActive: 36_000)
        #expect(TorSchedule.expectedUsage(after: state, config: c) == TorExpectedUsage(bytesPerMinute: 60_000, basis: .activeSeconds, capped: true, intendedBytesPerMinute: nil))
        c.rule = .sum
        #expect(TorSchedule.expectedUsage(after: state, config: c).bytesPerMinute == 120_000)
    }

    @Test func underThirtyMinutesOfActivityGivesNoEstimate() {
        let state = TorAccountingState(intervalStart: previousStart, bytesRead: 1 << 30, secondsActive: 1799)
        #expect(TorSchedule.expectedUsage(after: state, config: config).basis == .none)
    }

    @Test func withNoEstimateTorWakesAtTheIntervalStartEvenWithoutAFingerprint() {
        let w = TorSchedule.wakeupIfKnown(interval: interval, expectedBytesPerMinute: 0, accountingMax: 1 << 30, fingerprint: nil)
        #expect(w?.wake == interval.start)
        #expect(TorSchedule.wakeupIfKnown(interval: interval, expectedBytesPerMinute: 5, accountingMax: 1 << 30, fingerprint: nil) == nil)
    }

    @Test func fingerprintAndTorrcFilesAreRead() throws {
        let f = try TorFingerprint(fingerprintFile: "MyRelay E3614183D5214D52D9DD48CEB23C2CB6B653D287\n")
        #expect(f == fp.withNickname("MyRelay"))
        let path = makeTemporaryDirectory("torrc-acct") + "/torrc"
        writeFile(path, Data("""
            Nickname MyRelay
            ORPort 9001
            AccountingMax 1 GBytes # per day
            accountingstart day 00:00
            AccountingRule sum
            RelayBandwidthRate 1000 KBytes
            DataDirectory /var/lib/tor
            """.utf8))
        let relay = try Torrc.relay(from: path).0
        let t = try #require(relay.accounting)
        #expect(t.maxBytes == 1 << 30 && t.start == "day 00:00" && t.rule == "sum")
        #expect(t.relayBandwidthRate == 1000 << 10 && relay.dataDirectory == "/var/lib/tor")
    }
}

extension TorFingerprint {
    func withNickname(_ n: String) -> TorFingerprint { var c = self; c.nickname = n; return c }
}
