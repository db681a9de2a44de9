import Foundation
import Testing
@testable import FlowMeterAccounting

/// Tor's own figures (GETINFO) and the live soft/hard limit prediction.
@Suite struct TorOwnViewTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func figures(_ read: UInt64, _ written: UInt64, at: Date, state: TorHibernationState = .awake) -> TorControlFigures {
        TorControlFigures(readAt: at, accountingEnabled: true, hibernating: state, bytesRead: read, bytesWritten: written,
                          intervalStart: Date(timeIntervalSince1970: 1_799_971_200), intervalEnd: Date(timeIntervalSince1970: 1_800_057_600),
                          intervalWake: Date(timeIntervalSince1970: 1_799_971_200))
    }

    @Test func getinfoAnswersAreParsed() {
        let f = TorControlFigures(getinfo: [
            "accounting/enabled": "1", "accounting/hibernating": "soft", "accounting/bytes": "1234 5678",
            "accounting/interval-start": "2026-11-27 00:00:00", "accounting/interval-end": "2026-11-28 00:00:00",
            "accounting/interval-wake": "2026-11-27 00:00:00", "traffic/read": "99", "traffic/written": "77",
            "fingerprint": "E3614183D5214D52D9DD48CEB23C2CB6B653D287"], readAt: Self.t0)
        #expect(f.accountingEnabled && f.hibernating == .soft)
        #expect(f.bytesRead == 1234 && f.bytesWritten == 5678 && f.trafficRead == 99 && f.trafficWritten == 77)
        #expect(f.intervalStart.map(TorTime.format) == "2026-11-27 00:00:00")
        #expect(f.intervalEnd.map(TorTime.format) == "2026-11-28 00:00:00")
        #expect(f.fingerprint == "E3614183D5214D52D9DD48CEB23C2CB6B653D287")
    }

    @Test func malformedValuesLeaveFieldsUnset() {
        let f = TorControlFigures(getinfo: ["accounting/bytes": "12", "accounting/hibernating": "sleepy", "traffic/read": "-1"], readAt: Self.t0)
        #expect(f.bytesRead == 0 && f.hibernating == nil && f.trafficRead == 0 && !f.accountingEnabled)
    }

    @Test func whileAwakeTheLimitsArePredictedAtTheRecentRate() {
        // 20 MiB, sum: soft limit 95 % = 19,922,944 bytes; 100,000 B/s.
        let m: UInt64 = 20 << 20
        let samples = (0...6).map { (Self.t0.addingTimeInterval(Double($0) * 10), UInt64($0) * 1_000_000) }
        let p = TorLivePredictor.predict(samples: samples, latest: Self.figures(3_000_000, 3_000_000, at: samples.last!.0),
                                         accountingMax: m, now: samples.last!.0)
        #expect(p.rate == 100_000)
        #expect(p.softLimit == 19_922_944)
        #expect(p.softLimitAt == samples.last!.0.addingTimeInterval(Double(19_922_944 - 6_000_000) / 100_000))
        #expect(p.hardLimitAt == samples.last!.0.addingTimeInterval(Double(m - 6_000_000) / 100_000))
        #expect(p.wakeAt == nil)
    }

    @Test func onlyTheLastMinuteSetsTheRate() {
        var samples = (0...5).map { (Self.t0.addingTimeInterval(Double($0) * 60), UInt64($0) * 60_000_000) }
        samples.append((Self.t0.addingTimeInterval(360), 300_000_000 + 600))  // then almost idle
        let p = TorLivePredictor.predict(samples: samples, latest: Self.figures(0, 0, at: samples.last!.0),
                                         accountingMax: 1 << 40, now: samples.last!.0)
        #expect(p.rate == 600.0 / 60)
    }

    @Test func withoutTrafficNothingIsPredicted() {
        let samples = [(Self.t0, UInt64(5)), (Self.t0.addingTimeInterval(10), UInt64(5))]
        let p = TorLivePredictor.predict(samples: samples, latest: Self.figures(5, 0, at: samples[1].0), accountingMax: 100, now: samples[1].0)
        #expect(p.softLimitAt == nil && p.hardLimitAt == nil)
    }

    @Test func whileHibernatingTheWakeUpIsShown() {
        let now = Self.t0
        var f = Self.figures(1, 1, at: now, state: .hard)
        #expect(TorLivePredictor.predict(samples: [], latest: f, accountingMax: 100, now: now).wakeAt == f.intervalEnd)
        f.intervalWake = now.addingTimeInterval(600)
        let p = TorLivePredictor.predict(samples: [], latest: f, accountingMax: 100, now: now)
        #expect(p.wakeAt == now.addingTimeInterval(600) && p.softLimitAt == nil)
    }
}
