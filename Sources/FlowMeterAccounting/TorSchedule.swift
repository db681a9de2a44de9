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

/// The Accounting* keys of a tor `state` file (tor-accounting.md §2.8). Byte
/// counts there are rounded up to 1 KiB by Tor.
public struct TorAccountingState: Sendable, Equatable {
    public var intervalStart: Date?
    public var bytesRead: UInt64 = 0
    public var bytesWritten: UInt64 = 0
    public var secondsActive: UInt64 = 0
    public var secondsToReachSoftLimit: UInt64 = 0
    public var softLimitHitAt: Date?
    public var bytesAtSoftLimit: UInt64 = 0
    /// E stored for the interval in progress (bytes per minute); nil when absent.
    public var expectedUsage: UInt64?

    public init(intervalStart: Date? = nil, bytesRead: UInt64 = 0, bytesWritten: UInt64 = 0, secondsActive: UInt64 = 0,
                secondsToReachSoftLimit: UInt64 = 0, softLimitHitAt: Date? = nil, bytesAtSoftLimit: UInt64 = 0,
                expectedUsage: UInt64? = nil) {
        self.intervalStart = intervalStart; self.bytesRead = bytesRead; self.bytesWritten = bytesWritten
        self.secondsActive = secondsActive; self.secondsToReachSoftLimit = secondsToReachSoftLimit
        self.softLimitHitAt = softLimitHitAt; self.bytesAtSoftLimit = bytesAtSoftLimit; self.expectedUsage = expectedUsage
    }

    /// Parses a state file's text; other keys are ignored, a malformed
    /// Accounting* value throws naming the line.
    public init(stateFile text: String) throws {
        self.init()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard line.hasPrefix("Accounting"), let sp = line.firstIndex(where: { $0 == " " || $0 == "\t" }) else { continue }
            let key = String(line[..<sp]), value = line[sp...].trimmingCharacters(in: .whitespaces)
            func fail() -> TorStateError { TorStateError("state line \(n + 1): cannot read \(key) '\(value)'") }
            switch key {
            case "AccountingIntervalStart": guard let d = TorTime.parse(value) else { throw fail() }; intervalStart = d
            case "AccountingSoftLimitHitAt": guard let d = TorTime.parse(value) else { throw fail() }; softLimitHitAt = d
            case "AccountingBytesReadInInterval": bytesRead = try memunit(value, fail)
            case "AccountingBytesWrittenInInterval": bytesWritten = try memunit(value, fail)
            case "AccountingBytesAtSoftLimit": bytesAtSoftLimit = try memunit(value, fail)
            case "AccountingExpectedUsage": expectedUsage = try memunit(value, fail)
            case "AccountingSecondsActive": guard let s = TorTime.parseInterval(value) else { throw fail() }; secondsActive = s
            case "AccountingSecondsToReachSoftLimit": guard let s = TorTime.parseInterval(value) else { throw fail() }; secondsToReachSoftLimit = s
            default: continue
            }
        }
    }

    private func memunit(_ v: String, _ fail: () -> TorStateError) throws -> UInt64 {
        do { return try ByteQuantity.parseTor(v).bytes } catch { throw fail() }
    }
}

public struct TorStateError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A relay's identity: the 20 bytes behind its hex fingerprint.
public struct TorFingerprint: Sendable, Equatable, CustomStringConvertible {
    public var nickname: String?
    public var bytes: [UInt8]

    public init(hex: String, nickname: String? = nil) throws {
        let h = hex.replacingOccurrences(of: " ", with: "")
        guard h.count == 40, h.allSatisfy(\.isHexDigit) else {
            throw TorStateError("a fingerprint is 40 hex digits, not '\(hex)'")
        }
        var out: [UInt8] = []
        var i = h.startIndex
        while i < h.endIndex {
            let j = h.index(i, offsetBy: 2)
            out.append(UInt8(h[i..<j], radix: 16)!)
            i = j
        }
        bytes = out; self.nickname = nickname
    }

    /// The DataDirectory `fingerprint` file: "Nickname HEXFINGERPRINT".
    public init(fingerprintFile text: String) throws {
        let parts = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let hex = parts.last else { throw TorStateError("empty fingerprint file") }
        try self.init(hex: hex, nickname: parts.count > 1 ? parts[0] : nil)
    }

    public var description: String { bytes.map { String(format: "%02X", $0) }.joined() }
}

/// Tor's time text: `format_iso_time` ("YYYY-MM-DD HH:MM:SS", UTC) and the
/// INTERVAL config type.
public enum TorTime {
    public static func format(_ d: Date) -> String {
        let t = Int64(d.timeIntervalSince1970.rounded(.down))
        let days = Int(t >= 0 ? t / 86_400 : (t - 86_399) / 86_400)
        let s = Int(t - Int64(days) * 86_400)
        let (y, m, dd) = LocalTime.civil(fromDayNumber: days)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", y, m, dd, s / 3600, s % 3600 / 60, s % 60)
    }

    /// Also accepts ISO-8601 with a `T` and optional `Z`, for command-line use.
    public static func parse(_ text: String) -> Date? {
        var s = text.trimmingCharacters(in: .whitespaces)
        if s.hasSuffix("Z") { s.removeLast() }
        s = s.replacingOccurrences(of: "T", with: " ")
        let parts = s.split(whereSeparator: { $0 == "-" || $0 == " " || $0 == ":" }).map { Int($0) }
        guard parts.count == 6 || parts.count == 5, parts.allSatisfy({ $0 != nil }) else { return nil }
        let v = parts.map { $0! }
        guard (1...12).contains(v[1]), (1...31).contains(v[2]), (0...23).contains(v[3]), (0...59).contains(v[4]) else { return nil }
        let sec = v.count == 6 ? v[5] : 0
        let days = LocalTime.dayNumber(year: v[0], month: v[1], day: v[2])
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + v[3] * 3600 + v[4] * 60 + sec))
    }

    /// "36000", "36000 seconds", "10 hours".
    public static func parseInterval(_ text: String) -> UInt64? {
        let units: [String: UInt64] = ["": 1, "second": 1, "seconds": 1, "minute": 60, "minutes": 60,
                                       "hour": 3600, "hours": 3600, "day": 86_400, "days": 86_400, "week": 604_800, "weeks": 604_800]
        let t = text.trimmingCharacters(in: .whitespaces)
        let digits = t.prefix { $0.isASCII && $0.isNumber }
        guard let n = UInt64(digits), let m = units[t.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()] else { return nil }
        return n * m
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

/// Tor's hibernation arithmetic, reproduced (tor-accounting.md §2.3–2.5).
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
    public static func report(config: TorHibernationConfig, state: TorAccountingState, fingerprint: TorFingerprint?,
                              now: Date, rate: Double? = nil) -> TorScheduleReport {
        let (continuity, interval) = IntervalContinuity.decide(storedStart: state.intervalStart, now: now,
                                                                 period: config.period, zone: config.timeZone)
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
