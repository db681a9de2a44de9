import FlowMeterCore
import FlowMeterConfig
import Crypto
import Foundation

/// Tor's accounting settings that shape its hibernation schedule.
public struct TorHibernationConfig: Sendable, Equatable {
    public var accountingMax: UInt64
    public var period: AccountingPeriod
    public var rule: AccountingRule
    /// The zone tor runs in (its edges are local time).
    public var timeZone: TimeZone
    /// 0 = unset (then BandwidthRate caps E).
    public var relayBandwidthRate: UInt64
    /// Tor's default BandwidthRate is 1 GByte/s.
    public var bandwidthRate: UInt64

    public init(accountingMax: UInt64, period: AccountingPeriod = .torDefault, rule: AccountingRule = .max,
                timeZone: TimeZone, relayBandwidthRate: UInt64 = 0, bandwidthRate: UInt64 = 1 << 30) {
        self.accountingMax = accountingMax; self.period = period; self.rule = rule; self.timeZone = timeZone
        self.relayBandwidthRate = relayBandwidthRate; self.bandwidthRate = bandwidthRate
    }

    public init(settings: TorAccountingSettings, timeZone: TimeZone) throws {
        self.init(accountingMax: settings.maxBytes,
                  period: try settings.start.map { try AccountingPeriod(parsing: $0) } ?? .torDefault,
                  rule: try settings.rule.map { try AccountingRule(parsing: $0) } ?? .max,
                  timeZone: timeZone, relayBandwidthRate: settings.relayBandwidthRate ?? 0,
                  bandwidthRate: settings.bandwidthRate ?? (1 << 30))
    }

    /// `update_expected_bandwidth()`'s cap: (RelayBandwidthRate or BandwidthRate) × 60, ×2 for sum.
    public var expectedUsageCap: UInt64 {
        let rate = relayBandwidthRate > 0 ? relayBandwidthRate : bandwidthRate
        let (c, o) = rate.multipliedReportingOverflow(by: rule == .sum ? 120 : 60)
        return o ? .max : c
    }
}

/// Tor's expected usage E for an interval (`update_expected_bandwidth()`).
public struct TorExpectedUsage: Sendable, Equatable {
    public enum Basis: String, Sendable {
        /// The previous interval hit its soft limit more than 30 min in:
        /// E = bytes at soft limit ÷ seconds ÷ 60 — Tor's unit slip (it should
        /// multiply by 60), so E is ~3600× too small.
        case softLimit = "soft-limit"
        /// E = accounting bytes ÷ whole active minutes of the previous interval.
        case activeSeconds = "active-seconds"
        /// Under 30 min of activity: no estimate, E = 0, wake at interval start.
        case none
    }
    /// Bytes per minute, exactly as Tor computes it (quirk included).
    public var bytesPerMinute: UInt64
    public var basis: Basis
    /// Whether the (RelayBandwidthRate|BandwidthRate) × 60 cap applied.
    public var capped: Bool
    /// For the soft-limit basis, what E would be without the ÷60 slip.
    public var intendedBytesPerMinute: UInt64?
    /// True when Tor's ÷60 quirk shaped this value; outputs must flag it.
    public var usesDivideBy60Quirk: Bool { basis == .softLimit }
}

/// When Tor wakes in an interval (`accounting_set_wakeup_time()`).
public struct TorWakeup: Sendable, Equatable {
    public var wake: Date
    /// (AccountingMax ÷ E) × 60 with integer division first; nil when E = 0.
    public var timeToExhaustSeconds: UInt64?
    /// Interval length − time to exhaust (≤ 0 means wake at the start).
    public var timeToConsiderSeconds: Int64
    /// First four bytes of SHA1(start || identity), little-endian.
    public var digestValue: UInt32
    /// Tor's "we expect to exhaust our quota … around": min(wake + tte, end).
    public var expectedExhaustion: Date
}

/// One interval of Tor's schedule, with FlowMeter's predictions.
public struct TorIntervalSchedule: Sendable, Equatable {
    public var interval: DateInterval
    public var expectedUsage: TorExpectedUsage
    public var softLimit: UInt64
    /// nil when E > 0 and no fingerprint is known (Tor would then draw random bytes).
    public var wakeup: TorWakeup?
    /// Accounting bytes (per rule) used so far in this interval.
    public var usedBytes: UInt64
    /// When the soft / hard limit is (predicted to be) reached; nil if not in this interval.
    public var predictedSoftHibernation: Date?
    public var predictedHardHibernation: Date?
}

/// Tor's schedule for the interval containing `now` and the one after.
public struct TorScheduleReport: Sendable, Equatable {
    public var continuity: IntervalContinuity
    public var current: TorIntervalSchedule
    public var next: TorIntervalSchedule
    /// Bytes/s (per rule) used for the predictions, and where it came from.
    public var rate: Double
    public var rateSource: String
}

/// Tor's hibernation arithmetic, reproduced (docs/tor-facts.md §2.3–2.5).
public enum TorSchedule {
    static let minTimeForMeasurement: UInt64 = 1800
    static let softLimitBytes: UInt64 = 500 * 1024 * 1024
    static let softLimitMinutes: UInt64 = 3 * 60

    /// E from the counters of the interval that started at `counters.intervalStart`.
    public static func expectedUsage(after counters: TorAccountingState, config: TorHibernationConfig) -> TorExpectedUsage {
        var e: UInt64
        var basis: TorExpectedUsage.Basis
        var intended: UInt64? = nil
        if let hit = counters.softLimitHitAt, let start = counters.intervalStart, hit > start,
           counters.bytesAtSoftLimit > 0, UInt64(hit.timeIntervalSince(start)) > minTimeForMeasurement {
            let secs = UInt64(hit.timeIntervalSince(start))
            e = counters.bytesAtSoftLimit / secs / 60   // (sic): Tor divides where it should multiply
            intended = counters.bytesAtSoftLimit / secs * 60
            basis = .softLimit
        } else if counters.secondsActive >= minTimeForMeasurement {
            let used = config.rule.bytes(read: counters.bytesRead, written: counters.bytesWritten)
            e = used / (counters.secondsActive / 60)
            basis = .activeSeconds
        } else {
            e = 0
            basis = .none
        }
        let cap = config.expectedUsageCap
        let capped = e > cap
        if capped { e = cap }
        return TorExpectedUsage(bytesPerMinute: e, basis: basis, capped: capped, intendedBytesPerMinute: intended)
    }

    /// `hibernate_soft_limit_reached()`'s threshold.
    public static func softLimit(accountingMax m: UInt64, expectedBytesPerMinute e: UInt64) -> UInt64 {
        var soft = UInt64(Double(m) * 0.95)
        if m > softLimitBytes && m - softLimitBytes > soft { soft = m - softLimitBytes }
        if e > 0 {
            let (usage, o) = e.multipliedReportingOverflow(by: softLimitMinutes)
            if !o && m > usage && m - usage > soft { soft = m - usage }
        }
        return soft
    }

    /// SHA1(format_iso_time(start) || identity digest).
    public static func wakeupDigest(intervalStart: Date, fingerprint: TorFingerprint) -> [UInt8] {
        var h = Insecure.SHA1()
        h.update(data: Array(TorTime.format(intervalStart).utf8))
        h.update(data: fingerprint.bytes)
        return Array(h.finalize())
    }

    public static func wakeup(interval: DateInterval, expectedBytesPerMinute e: UInt64, accountingMax m: UInt64,
                              fingerprint: TorFingerprint) -> TorWakeup {
        // Safe to force: with a fingerprint there is always an answer.
        wakeupIfKnown(interval: interval, expectedBytesPerMinute: e, accountingMax: m, fingerprint: fingerprint)!
    }

    /// - Returns: nil only when E > 0 and no fingerprint is known (Tor would
    ///   then draw random bytes); with E = 0 Tor wakes at the interval start.
    public static func wakeupIfKnown(interval: DateInterval, expectedBytesPerMinute e: UInt64, accountingMax m: UInt64,
                                     fingerprint: TorFingerprint?) -> TorWakeup? {
        let d = fingerprint.map { wakeupDigest(intervalStart: interval.start, fingerprint: $0) } ?? [0, 0, 0, 0]
        // get_uint32 reads host order; tor runs little-endian on x86 and ARM.
        let u = UInt32(d[0]) | UInt32(d[1]) << 8 | UInt32(d[2]) << 16 | UInt32(d[3]) << 24
        let length = Int64(interval.duration)
        guard e > 0 else {
            return TorWakeup(wake: interval.start, timeToExhaustSeconds: nil, timeToConsiderSeconds: length,
                             digestValue: u, expectedExhaustion: interval.end)
        }
        guard fingerprint != nil else { return nil }
        var tte = (m / e) * 60
        var ttc: Int64
        if tte > UInt64(Int32.max) { tte = UInt64(Int32.max); ttc = 0 } else { ttc = length - Int64(tte) }
        let wake = ttc <= 0 ? interval.start : interval.start.addingTimeInterval(TimeInterval(UInt64(u) % UInt64(ttc)))
        let down = min(wake.addingTimeInterval(TimeInterval(tte)), interval.end)
        return TorWakeup(wake: wake, timeToExhaustSeconds: tte, timeToConsiderSeconds: ttc, digestValue: u, expectedExhaustion: down)
    }

    /// Tor's schedule at `now` from its state file. `rate` (accounting bytes
    /// per second) drives the soft/hard predictions; when nil, Tor's own E for
    /// the interval is used (E/60), else the state's average per active second.
    /// - Parameter knownInterval: the interval tor is in, when it said so
    ///   (`TorIntervalChoice`); `state` then holds its counters.
    public static func report(config: TorHibernationConfig, state: TorAccountingState, fingerprint: TorFingerprint?,
                              now: Date, rate: Double? = nil, knownInterval: DateInterval? = nil) -> TorScheduleReport {
        var (continuity, interval) = IntervalContinuity.decide(storedStart: state.intervalStart, now: now,
                                                                 period: config.period, zone: config.timeZone)
        if let known = knownInterval, state.intervalStart == known.start {
            if !continuity.keepsCounters { continuity = .continued }
            interval = known
        }
        let m = config.accountingMax
        let current: TorAccountingState
        let eCurrent: TorExpectedUsage
        if continuity.keepsCounters {
            current = state
            let stored = state.expectedUsage ?? 0
            eCurrent = TorExpectedUsage(bytesPerMinute: stored, basis: stored > 0 ? .activeSeconds : .none,
                                        capped: false, intendedBytesPerMinute: nil)
        } else {
            // reset_accounting(): E from the stored counters, then fresh counters.
            eCurrent = expectedUsage(after: state, config: config)
            current = TorAccountingState(intervalStart: interval.start)
        }
        let used = config.rule.bytes(read: current.bytesRead, written: current.bytesWritten)
        var r = rate ?? 0, source = "given"
        if rate == nil {
            if eCurrent.bytesPerMinute > 0 && !eCurrent.usesDivideBy60Quirk {
                r = Double(eCurrent.bytesPerMinute) / 60; source = "Tor's E for this interval"
            } else if let intended = eCurrent.intendedBytesPerMinute, intended > 0 {
                r = Double(intended) / 60; source = "the E Tor meant (×60 instead of its ÷60)"
            } else if current.secondsActive > 0 {
                r = Double(used) / Double(current.secondsActive); source = "this interval's bytes per active second"
            } else { source = "none" }
        }
        var counters = current
        counters.intervalStart = interval.start
        let nextInterval = config.period.torInterval(containing: interval.end, in: config.timeZone)
        let eNext = expectedUsage(after: counters, config: config)

        func make(_ iv: DateInterval, _ e: TorExpectedUsage, used: UInt64) -> TorIntervalSchedule {
            let soft = softLimit(accountingMax: m, expectedBytesPerMinute: e.bytesPerMinute)
            let w = wakeupIfKnown(interval: iv, expectedBytesPerMinute: e.bytesPerMinute, accountingMax: m, fingerprint: fingerprint)
            // Dormant until the wake-up; from then on traffic flows at `r`.
            let from = max(max(now, iv.start), w?.wake ?? iv.start)
            func reach(_ target: UInt64) -> Date? {
                if used >= target { return max(iv.start, min(now, iv.end)) }
                guard r > 0 else { return nil }
                let t = from.addingTimeInterval(Double(target - used) / r)
                return t < iv.end ? t : nil
            }
            return TorIntervalSchedule(interval: iv, expectedUsage: e, softLimit: soft, wakeup: w, usedBytes: used,
                                       predictedSoftHibernation: soft > 0 ? reach(soft) : nil,
                                       predictedHardHibernation: m > 0 ? reach(m) : nil)
        }
        return TorScheduleReport(continuity: continuity, current: make(interval, eCurrent, used: used),
                                 next: make(nextInterval, eNext, used: 0), rate: r, rateSource: source)
    }
}
