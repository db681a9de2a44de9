import FlowMeterCore
import FlowMeterConfig
import Foundation

/// A quota's state and its end-of-period projection at one instant.
public struct QuotaForecast: Sendable {
    public var usage: QuotaUsage
    public var now: Date
    /// Seconds of the period so far that capture observed.
    public var observedSeconds: Double
    /// Rule bytes per observed second since the period started (nil before any).
    public var periodToDateRate: Double?
    /// Rule bytes per observed second over the last 24 h.
    public var trailing24hRate: Double?
    /// nil until `QuotaForecaster.minimumObservedSeconds` of data exist.
    public var projection: Projection?
    /// Remaining bytes ÷ days left in the period.
    public var dailyBudget: Double?
    /// The RelayBandwidthRate (bytes/s, per direction as Tor applies it) that
    /// cannot exceed the remaining quota before the period ends: remaining ÷
    /// seconds left, halved for rule `sum`.
    public var relayBandwidthRateToLast: UInt64?
    /// Tor refuses a relay RelayBandwidthRate below 75 KBytes/s.
    public var relayBandwidthRateBelowTorMinimum: Bool {
        (relayBandwidthRateToLast ?? .max) < RateAdvice.torMinimum
    }
    public var method: String
    /// When the traffic's level last changed for good (a step, a restart, a
    /// ramp that settled), if the model detected a change in its window.
    public var levelChange: Date?
    /// The oldest data the projection's level and trend are fitted on.
    public var learnsFrom: Date?
    /// The period began before the first data (and no seed was imported):
    /// `usage` is a lower bound of what the period really used.
    public var usageIsLowerBound = false
    /// The counts imported for this period (`flowmeter import`, or tor's
    /// state file for a Tor quota), included in `usage`.
    public var imported: ImportedUsage?
    /// Seconds of this host's own observed traffic the projection stands on
    /// (the model's window, capture gaps excluded).
    public var ownHistorySeconds: Double = 0
    /// Whether a young store's level also stands on `imported` (its average
    /// rate over its span).
    public var levelUsesImported = false
    /// When this host's own data begin (nil: none yet).
    public var ownDataStart: Date?
    /// The part of the period before this host's data (and before anything
    /// imported): nothing measured it. The projection counts it at the
    /// projected average rate (`unobservedEstimate`, rule bytes); the
    /// range's low end assumes it was silent (a host that did not exist yet).
    public var unobservedSeconds: Double = 0
    public var unobservedEstimate: Double = 0
    /// How much measured history the projection stands on: the host's own
    /// observed seconds, plus the imported span when the level uses it.
    public var historySeconds: Double {
        ownHistorySeconds + (levelUsesImported ? imported.map { $0.end.timeIntervalSince($0.start) } ?? 0 : 0)
    }
    /// `relayBandwidthRateToLast` as torrc lines, per relay for a host-wide quota.
    public var rateAdvice: RateAdvice?

    public struct Projection: Sendable, Equatable {
        /// Rule bytes expected at period end (used + predicted rest).
        public var endTotal: Double
        /// The `QuotaForecaster.rangeCoverage` interval of `endTotal`: the
        /// day-to-day variation and level error scaled by a factor calibrated
        /// on the backtest's synthetic histories.
        public var low: Double
        public var high: Double
        public var endRead: Double
        public var endWritten: Double
        /// When the limit is (or was) reached; nil if not within this period.
        public var exhaustion: Date?
        /// Average rule bytes per second predicted for the rest of the period
        /// (feed this to `TorSchedule.report(rate:)`).
        public var futureRate: Double
    }
}

/// FlowMeter's forecast (docs/quotas.md, "Forecast"). Pure: takes `now`.
public enum QuotaForecaster {
    public static let methodName = "seasonal-trend (robust 24-h level with Theil-Sen trend over 56 d or since the last level change, × weekday and hour-of-day profile; capture gaps excluded)"
    /// The share of end-of-period totals the printed range is meant to hold.
    public static let rangeCoverage = 0.8
    /// Standard errors on either side that made the range hold
    /// `rangeCoverage` of the actual totals over `backtest --synthetic all`
    /// (calibrated there; docs/quotas.md, "Range").
    public static let rangeScale = 1.95
    /// Tor's MIN_TIME_FOR_MEASUREMENT: no projection from less than 30 min of data.
    public static let minimumObservedSeconds = 1800.0
    /// How much history before `now` the model reads.
    public static let windowSeconds = 56.0 * 86_400

    /// Under this much of its own observed traffic a store is young: the
    /// model has no daily blocks yet and projects the measured average rate.
    public static let youngSeconds = 3.0 * 86_400
    /// Until a store has this much of its own data (and so its own weekly
    /// profile), an imported average is history the level stands on too.
    public static let importedPriorSeconds = 14.0 * 86_400

    /// Reads what it needs from `source` and forecasts `quota` at `now`.
    /// - Parameters:
    ///   - interval: the period to use instead of the quota's computed one
    ///     (tor's own interval for a Tor quota, `TorIntervalChoice`).
    ///   - extraSeed: counts from outside the store for the period's start
    ///     (tor's state file), weighed against imported seeds like one.
    public static func forecast(_ quota: Quota, source: UsageHistorySource, now: Date,
                                interval override: DateInterval? = nil, extraSeed: ImportedUsage? = nil) throws -> QuotaForecast {
        let interval = override ?? quota.interval(containing: now)
        let from = min(interval.start, now.addingTimeInterval(-windowSeconds))
        let buckets = try source.buckets(from: from, to: now)
        let gaps = try source.gaps(from: from, to: now)
        let traffic = HourlyTraffic(buckets: buckets, gaps: gaps, scope: quota.scope, from: from, to: now, zone: quota.timeZone,
                                    observationStart: try source.observationStart())
        var usage = QuotaUsage.measure(quota, buckets: buckets, interval: interval, now: now)
        var candidates = extraSeed.map { [$0] } ?? []
        if let seeds = source as? ImportedUsageSource { candidates += try seeds.importedUsage(overlapping: interval) }
        let seed = ImportedUsage.seed(for: quota, interval: interval, among: candidates)
        if let found = seed {
            // The seed already holds what FlowMeter counted before its end.
            usage = QuotaUsage.measure(quota, buckets: buckets.filter { $0.start >= found.end }, interval: interval, now: now)
            usage.read &+= found.read; usage.written &+= found.written
            usage.used = quota.rule.bytes(read: usage.read, written: usage.written)
        }
        var f = forecast(quota, traffic: traffic, usage: usage, periodBuckets: buckets, now: now, seed: seed)
        f.imported = seed
        if let rate = f.relayBandwidthRateToLast {
            let dayAgo = now.addingTimeInterval(-86_400)
            f.rateAdvice = RateAdvice.advise(rate: rate, quota: quota, recent: buckets.filter { $0.start >= dayAgo })
        }
        // Nothing was recorded (or imported) from the period's start until the first data.
        let first = seed?.start ?? buckets.filter { quota.scope.includes($0) }.map(\.start).min()
        f.usageIsLowerBound = first.map { $0 > interval.start.addingTimeInterval(3600) } ?? (now > interval.start)
        return f
    }

    /// Forecast from pre-binned traffic (which may extend past `now`; nothing
    /// after `now` is read) and the period's exact usage.
    /// - Parameter seed: imported counts for the period's start; a young
    ///   store's level stands on them too.
    public static func forecast(_ quota: Quota, traffic: HourlyTraffic, usage: QuotaUsage,
                                periodBuckets: [UsageBucket] = [], now: Date, seed: ImportedUsage? = nil) -> QuotaForecast {
        let interval = usage.interval
        let ptd = traffic.totals(from: interval.start, to: now)
        let last24 = traffic.totals(from: now.addingTimeInterval(-86_400), to: now)
        let secondsLeft = max(0, interval.end.timeIntervalSince(now))
        var f = QuotaForecast(
            usage: usage, now: now, observedSeconds: ptd.observed,
            periodToDateRate: ptd.observed > 0 ? Double(usage.used) / ptd.observed : nil,
            trailing24hRate: last24.observed > 0 ? quota.rule.bytes(read: last24.read, written: last24.written) / last24.observed : nil,
            projection: nil,
            dailyBudget: secondsLeft > 0 ? Double(usage.remaining) / (secondsLeft / 86_400) : nil,
            relayBandwidthRateToLast: secondsLeft > 0 ? UInt64(Double(usage.remaining) / secondsLeft / (quota.rule == .sum ? 2 : 1)) : nil,
            method: methodName)

        let own = traffic.ownHistory(window: windowSeconds, now: now)
        f.ownHistorySeconds = own.observed
        f.ownDataStart = own.observed > 0 ? traffic.observedFrom : nil
        guard let (mIn, mOut, usesSeed) = models(traffic: traffic, own: own, seed: seed, now: now) else { return f }
        f.levelUsesImported = usesSeed

        // Walk the rest of the period hour by hour, from what was used and
        // what the part of the period nobody measured is estimated at.
        let coveredFrom = min(now, seed?.start ?? f.ownDataStart ?? now)
        f.unobservedSeconds = max(0, coveredFrom.timeIntervalSince(interval.start))
        let fill = f.unobservedSeconds > 3600 ? (mIn.level * f.unobservedSeconds, mOut.level * f.unobservedSeconds) : (0, 0)
        f.unobservedEstimate = quota.rule.bytes(read: fill.0, written: fill.1)
        let startIn = Double(usage.read) + fill.0, startOut = Double(usage.written) + fill.1
        let past: Date? = usage.used >= quota.limit ? pastCrossing(quota, buckets: periodBuckets, interval: interval) ?? now
            : quota.rule.bytes(read: startIn, written: startOut) >= Double(quota.limit) ? now : nil
        let (cumIn, cumOut, exhaustion) = walk(quota, mIn, mOut, traffic: traffic, from: max(now, interval.start), to: interval.end,
                                               now: now, read: startIn, written: startOut, exhaustion: past)
        let days = secondsLeft / 86_400
        func spread(_ m: SeasonalTrendModel) -> Double {
            86_400 * (days * m.sigma * m.sigma + pow(days * m.levelStandardError, 2)
                      + pow(days * days / 2 * m.slopeStandardError, 2)).squareRoot() * rangeScale
        }
        let regimes = [mIn, mOut].compactMap(\.regimeStartDaysAgo)
        f.levelChange = regimes.min().map { now.addingTimeInterval(-$0 * 86_400) }
        if usesSeed, let seed {
            f.learnsFrom = seed.start
        } else if own.observed < youngSeconds {
            f.learnsFrom = max(traffic.observedFrom, now.addingTimeInterval(-windowSeconds))
        } else {
            f.learnsFrom = now.addingTimeInterval(-min(mIn.learnsFromDaysAgo, mOut.learnsFromDaysAgo) * 86_400)
        }
        let remIn = cumIn - fill.0 - Double(usage.read), remOut = cumOut - fill.1 - Double(usage.written)
        let lowIn = Double(usage.read) + max(0, remIn - spread(mIn)), highIn = cumIn + spread(mIn)
        let lowOut = Double(usage.written) + max(0, remOut - spread(mOut)), highOut = cumOut + spread(mOut)
        f.projection = .init(endTotal: quota.rule.bytes(read: cumIn, written: cumOut),
                             low: quota.rule.bytes(read: lowIn, written: lowOut),
                             high: quota.rule.bytes(read: highIn, written: highOut),
                             endRead: cumIn, endWritten: cumOut, exhaustion: exhaustion,
                             futureRate: secondsLeft > 0 ? max(0, quota.rule.bytes(read: cumIn, written: cumOut) - Double(usage.used)) / secondsLeft : 0)
        return f
    }

    /// The rest of the period hour by hour from `start`: each hour's
    /// projected bytes added to `read` and `written`, and the instant the
    /// quota's bytes first reach its limit (unless `exhaustion` is already known).
    static func walk(_ quota: Quota, _ mIn: SeasonalTrendModel, _ mOut: SeasonalTrendModel, traffic: HourlyTraffic,
                     from start: Date, to endDate: Date, now: Date, read: Double, written: Double,
                     exhaustion known: Date?) -> (read: Double, written: Double, exhaustion: Date?) {
        var cumIn = read, cumOut = written, exhaustion = known
        let limit = Double(quota.limit)
        var t = start.timeIntervalSince1970
        let end = endDate.timeIntervalSince1970
        var slot = SlotCache(traffic: traffic)
        while t < end {
            let h = Int((t / 3600).rounded(.down))
            let next = min(end, Double(h + 1) * 3600)
            let s = next - t
            let ahead = ((t + next) / 2 - now.timeIntervalSince1970) / 86_400
            let (wd, hr) = slot.slot(hour: h)
            let pIn = mIn.rate(weekday: wd, hour: hr, daysAhead: ahead) * s
            let pOut = mOut.rate(weekday: wd, hour: hr, daysAhead: ahead) * s
            let before = quota.rule.bytes(read: cumIn, written: cumOut)
            cumIn += pIn; cumOut += pOut
            let after = quota.rule.bytes(read: cumIn, written: cumOut)
            if exhaustion == nil && after >= limit && after > before {
                exhaustion = Date(timeIntervalSince1970: t + s * (limit - before) / (after - before))
            }
            t = next
        }
        return (cumIn, cumOut, exhaustion)
    }

    /// Both directions' models. A young store (under `youngSeconds` of its
    /// own data) has no daily blocks and projects its measured average; when
    /// counts from before it were imported, the level also stands on them,
    /// weighed by time (the imported span's average rate), until the store
    /// has weeks of its own (`importedPriorSeconds`), so a store minutes old
    /// does not project from one hour of the day nor one of days from three
    /// weekdays. Without its own 30 minutes, the imported average alone.
    static func models(traffic: HourlyTraffic, own: (read: Double, written: Double, observed: Double), seed: ImportedUsage?,
                       now: Date) -> (SeasonalTrendModel, SeasonalTrendModel, usesSeed: Bool)? {
        let span = seed.map { $0.end.timeIntervalSince($0.start) } ?? 0
        let prior = span >= minimumObservedSeconds ? seed : nil
        func blended(_ ownBytes: Double, _ seedBytes: UInt64) -> Double {
            (ownBytes + Double(seedBytes)) / (own.observed + span)
        }
        if var mIn = SeasonalTrendModel(traffic: traffic, values: traffic.read, now: now),
           var mOut = SeasonalTrendModel(traffic: traffic, values: traffic.written, now: now) {
            guard own.observed < importedPriorSeconds, let prior else { return (mIn, mOut, false) }
            if own.observed < youngSeconds {
                mIn.setYoungLevel(blended(own.read, prior.read))
                mOut.setYoungLevel(blended(own.written, prior.written))
            } else {
                // Days of its own, not yet weeks: the profiles are its own,
                // the level also stands on the imported average, and how far
                // the two disagree is part of the level's uncertainty.
                mIn.blendLevel(blended(own.read, prior.read))
                mOut.blendLevel(blended(own.written, prior.written))
            }
            return (mIn, mOut, true)
        }
        guard let prior else { return nil }
        return (SeasonalTrendModel(youngLevel: blended(own.read, prior.read)),
                SeasonalTrendModel(youngLevel: blended(own.written, prior.written)), true)
    }

    /// When the cumulative rule bytes crossed the limit, from the period's buckets.
    public static func pastCrossing(_ quota: Quota, buckets: [UsageBucket], interval: DateInterval) -> Date? {
        var r: UInt64 = 0, w: UInt64 = 0
        for b in buckets.sorted(by: { $0.start < $1.start }) where b.start >= interval.start && quota.scope.includes(b) {
            let before = quota.rule.bytes(read: r, written: w)
            let n = quota.scope.bytes(of: b)
            if b.direction == .inbound { r &+= n } else if b.direction == .outbound { w &+= n } else { continue }
            let after = quota.rule.bytes(read: r, written: w)
            if after >= quota.limit && after > before {
                let frac = Double(quota.limit - before) / Double(after - before)
                return b.start.addingTimeInterval(frac * Double(b.durationSeconds))
            }
        }
        return nil
    }

    /// vnstat's estimate (`getestimates()`, docs/tor-facts.md §6.1):
    /// floor(bytes ÷ elapsed seconds) × period length, per direction.
    public static func vnstatEstimate(bytes: UInt64, elapsedSeconds: Int, periodSeconds: Int) -> UInt64 {
        guard elapsedSeconds > 0 else { return 0 }
        return (bytes / UInt64(elapsedSeconds)) * UInt64(periodSeconds)
    }
}

/// Local (weekday, hour) of UTC hours: from the traffic's table where it
/// covers the hour, else computed and memoised.
struct SlotCache {
    let traffic: HourlyTraffic
    var memo: [Int: (Int, Int)] = [:]
    init(traffic: HourlyTraffic) { self.traffic = traffic }
    mutating func slot(hour h: Int) -> (Int, Int) {
        let i = h - traffic.firstHour
        if i >= 0 && i < traffic.local.count { return (traffic.local[i].weekday, traffic.local[i].hour) }
        if let s = memo[h] { return s }
        let l = LocalTime(Date(timeIntervalSince1970: Double(h) * 3600), in: traffic.zone)
        memo[h] = (l.weekday, l.hour)
        return (l.weekday, l.hour)
    }
}
