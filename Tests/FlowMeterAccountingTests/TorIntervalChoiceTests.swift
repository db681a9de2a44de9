import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAccounting

/// One answer per relay to "which accounting interval is tor in, and how
/// much has it used": tor's control port, else its state file, else the
/// schedule computed from AccountingStart. The relay here kept an interval
/// from 2026-11-30 (AccountingStart was moved to the 1st), so the computed
/// interval (from 2026-12-01) is wrong for it.
@Suite struct TorIntervalChoiceTests {
    let now = utc("2026-12-07 12:00:00")
    let stored = utc("2026-11-30 00:00:00")
    var config: TorHibernationConfig { TorHibernationConfig(accountingMax: 1 << 40, rule: .sum, timeZone: zone("UTC")) }
    var quota: Quota {
        Quota(name: "tor-exit", limit: 1 << 40, period: .torDefault, rule: .sum, timeZone: zone("UTC"),
              scope: .tor(relay: "exit"), torRelay: "exit")
    }
    var state: TorAccountingState {
        TorAccountingState(intervalStart: stored, bytesRead: 40_000_000_000, bytesWritten: 46_000_000_000, secondsActive: 600_000)
    }
    /// FlowMeter's own Tor-payload buckets: 100 MB each way per hour for the last 30 hours.
    var history: MemoryHistory {
        MemoryHistory(all: (0..<30).flatMap { h -> [UsageBucket] in
            let s = now.addingTimeInterval(Double(h - 30) * 3600)
            return [bucket(s, relay: "exit", direction: "in", wire: 110_000_000, payload: 100_000_000, tor: 100_000_000),
                    bucket(s, relay: "exit", direction: "out", wire: 110_000_000, payload: 100_000_000, tor: 100_000_000)]
        })
    }
    func figures(at: Date) -> TorControlFigures {
        TorControlFigures(readAt: at, accountingEnabled: true, hibernating: .awake, bytesRead: 41_000_000_000, bytesWritten: 47_000_000_000,
                          intervalStart: stored, intervalEnd: utc("2027-01-01 00:00:00"))
    }

    @Test func theControlPortWinsWithTorsOwnIntervalAndExactBytes() throws {
        let inputs = QuotaStatus.TorInputs(config: config, state: state, fingerprint: nil, stateSavedAt: now.addingTimeInterval(-3600))
        let s = try QuotaStatus.evaluate(quota, source: history, now: now, tor: inputs, control: figures(at: now))
        #expect(s.intervalSource == .torControl && s.source == "tor_control")
        #expect(s.forecast.usage.interval == DateInterval(start: stored, end: utc("2027-01-01 00:00:00")))
        #expect(s.forecast.usage.used == 88_000_000_000)
        #expect(s.tor?.current.interval == s.forecast.usage.interval, "tor's schedule is for the same interval")
        #expect(s.tor?.current.usedBytes == 88_000_000_000)
    }

    @Test func withoutTheControlPortTheStateFileGivesTheIntervalAndItsBytesUpToItsSave() throws {
        let saved = now.addingTimeInterval(-5 * 3600)
        let inputs = QuotaStatus.TorInputs(config: config, state: state, fingerprint: nil, stateSavedAt: saved)
        let s = try QuotaStatus.evaluate(quota, source: history, now: now, tor: inputs)
        #expect(s.intervalSource == .torStateFile && s.source == "packets")
        #expect(s.forecast.usage.interval.start == stored)
        // tor's 86 GB up to its save, then FlowMeter's 5 hours of 200 MB.
        #expect(s.forecast.usage.used == 86_000_000_000 + 5 * 200_000_000)
        #expect(s.forecast.imported?.source == .torState)
        #expect(s.tor?.current.interval.start == stored)
    }

    @Test func aStateFileWhoseIntervalHasEndedGivesWayToTheComputedInterval() throws {
        var old = state
        old.intervalStart = utc("2026-10-01 00:00:00")
        let inputs = QuotaStatus.TorInputs(config: config, state: old, fingerprint: nil, stateSavedAt: utc("2026-10-20 00:00:00"))
        let s = try QuotaStatus.evaluate(quota, source: history, now: now, tor: inputs)
        #expect(s.intervalSource == .computed)
        #expect(s.forecast.usage.interval.start == utc("2026-12-01 00:00:00"))
        #expect(s.forecast.usage.used == 60 * 100_000_000 / 2 * 2)
        #expect(s.tor?.current.interval == s.forecast.usage.interval)
    }

    @Test func withNeitherTheIntervalIsComputedAndSaysSo() throws {
        let s = try QuotaStatus.evaluate(quota, source: history, now: now,
                                         tor: QuotaStatus.TorInputs(config: config, state: TorAccountingState(), fingerprint: nil))
        #expect(s.intervalSource == .computed)
        #expect(s.forecast.usage.interval.start == utc("2026-12-01 00:00:00"))
    }

    @Test func aControlReadingFromAnIntervalThatHasSinceEndedIsNotUsed() {
        let choice = TorIntervalChoice.choose(relay: "exit", config: config, state: nil, stateSavedAt: nil,
                                              control: figures(at: now), now: utc("2027-01-02 00:00:00"))
        #expect(choice.source == .computed)
    }

    @Test func theStateFilesLastWrittenLineIsRead() throws {
        let s = try TorAccountingState(stateFile: "LastWritten 2026-12-07 11:00:00\nAccountingIntervalStart 2026-11-30 00:00:00\n")
        #expect(s.lastWritten == utc("2026-12-07 11:00:00"))
    }
}
