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
        (relayBandwidthRateToLast ?? .max) < 75 * 1024
    }
    public var method: String

    public struct Projection: Sendable, Equatable {
        /// Rule bytes expected at period end (used + predicted rest).
        public var endTotal: Double
        /// ≈95 % range of `endTotal` (±2σ of day-to-day variation and level error).
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
    public static let methodName = "seasonal-trend (robust 24-h level with Theil-Sen trend over 56 d, × weekday and hour-of-day profile; capture gaps excluded)"
    /// Tor's MIN_TIME_FOR_MEASUREMENT: no projection from less than 30 min of data.
    public static let minimumObservedSeconds = 1800.0
    /// How much history before `now` the model reads.
    public static let windowSeconds = 56.0 * 86_400

    /// Reads what it needs from `source` and forecasts `quota` at `now`.
    public static func forecast(_ quota: Quota, source: UsageHistorySource, now: Date) throws -> QuotaForecast {
        let interval = quota.interval(containing: now)
        let from = min(interval.start, now.addingTimeInterval(-windowSeconds))
        let buckets = try source.buckets(from: from, to: now)
        let gaps = try source.gaps(from: from, to: now)
        let traffic = HourlyTraffic(buckets: buckets, gaps: gaps, scope: quota.scope, from: from, to: now, zone: quota.timeZone)
        return forecast(quota, traffic: traffic, usage: QuotaUsage.measure(quota, buckets: buckets, now: now),
                        periodBuckets: buckets, now: now)
    }

    /// Forecast from pre-binned traffic (which may extend past `now`; nothing
    /// after `now` is read) and the period's exact usage.
    public static func forecast(_ quota: Quota, traffic: HourlyTraffic, usage: QuotaUsage,
                                periodBuckets: [UsageBucket] = [], now: Date) -> QuotaForecast {
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

        guard let mIn = SeasonalTrendModel(traffic: traffic, values: traffic.read, now: now),
              let mOut = SeasonalTrendModel(traffic: traffic, values: traffic.written, now: now)
        else { return f }

        // Walk the rest of the period hour by hour.
        var cumIn = Double(usage.read), cumOut = Double(usage.written)
        let limit = Double(quota.limit)
        var exhaustion: Date? = usage.used >= quota.limit ? pastCrossing(quota, buckets: periodBuckets, interval: interval) ?? now : nil
        var t = max(now, interval.start).timeIntervalSince1970
        let end = interval.end.timeIntervalSince1970
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
        let days = secondsLeft / 86_400
        func spread(_ m: SeasonalTrendModel) -> Double {
            86_400 * (days * m.sigma * m.sigma + pow(days * m.levelStandardError, 2)).squareRoot() * 2
        }
        let remIn = cumIn - Double(usage.read), remOut = cumOut - Double(usage.written)
        let lowIn = Double(usage.read) + max(0, remIn - spread(mIn)), highIn = cumIn + spread(mIn)
        let lowOut = Double(usage.written) + max(0, remOut - spread(mOut)), highOut = cumOut + spread(mOut)
        f.projection = .init(endTotal: quota.rule.bytes(read: cumIn, written: cumOut),
                             low: quota.rule.bytes(read: lowIn, written: lowOut),
                             high: quota.rule.bytes(read: highIn, written: highOut),
                             endRead: cumIn, endWritten: cumOut, exhaustion: exhaustion,
                             futureRate: secondsLeft > 0 ? max(0, quota.rule.bytes(read: cumIn, written: cumOut) - Double(usage.used)) / secondsLeft : 0)
        return f
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

    /// vnstat's estimate (`getestimates()`, tor-accounting.md §6.1):
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

/// The model behind `QuotaForecaster` for one direction.
///
/// rate(t) = weekday[t] × hourOfDay[t] × max(0, level + slope × days ahead).
/// - Profiles are medians of ratios (a day to its centred 7-day median; an
///   hour to its day's mean), so one spike or outage day cannot bend them.
/// - The level is an interquartile mean of deseasonalised 24-h blocks; the
///   slope a Theil-Sen estimate shrunk by its standard error (none below
///   t = 2), so flat traffic is not extrapolated from noise.
/// - Only observed seconds count: a capture gap lowers no rate.
struct SeasonalTrendModel {
    var weekday = [Double](repeating: 1, count: 7)
    /// Whether two weeks of days gave a weekday profile (even a flat one).
    var hasWeekProfile = false
    var hourOfDay = [Double](repeating: 1, count: 24)
    var level = 0.0
    var slopePerDay = 0.0
    /// Day-to-day standard deviation of the deseasonalised level (bytes/s).
    var sigma = 0.0
    var levelStandardError = 0.0

    init?(traffic: HourlyTraffic, values: [Double], now: Date) {
        let nowHour = Int((now.timeIntervalSince1970 / 3600).rounded(.down)) // complete hours end here
        // The hour containing `now` counts only when the traffic was binned up
        // to `now` (live use); a backtest's traffic runs on past `now`.
        let partialNowHour = traffic.firstHour + traffic.hourCount - 1 == nowHour
        let lastIndex = nowHour - (partialNowHour ? 0 : 1) - traffic.firstHour
        let firstIndex = max(0, nowHour - Int(QuotaForecaster.windowSeconds / 3600) - traffic.firstHour)
        guard lastIndex >= firstIndex, lastIndex < traffic.hourCount || traffic.hourCount > 0 else { return nil }
        let last = min(lastIndex, traffic.hourCount - 1)
        guard last >= firstIndex else { return nil }
        var slots = SlotCache(traffic: traffic)
        var idx: [Int] = []
        var observedTotal = 0.0
        for i in firstIndex...last where traffic.observed[i] > 0 {
            idx.append(i); observedTotal += traffic.observed[i]
        }
        guard observedTotal >= QuotaForecaster.minimumObservedSeconds else { return nil }

        // Local calendar days (indexed from the window's first) and their
        // mean rates; nil for days observed under 12 h.
        let firstDay = traffic.local[idx[0]].day
        let dayCount = traffic.local[idx[idx.count - 1]].day - firstDay + 1
        var dayV = [Double](repeating: 0, count: dayCount), dayO = dayV
        var dayWeekday = [Int](repeating: 0, count: dayCount)
        for i in idx {
            let l = traffic.local[i]
            dayWeekday[l.day - firstDay] = l.weekday
            dayV[l.day - firstDay] += values[i]; dayO[l.day - firstDay] += traffic.observed[i]
        }
        let dayRate: [Double?] = (0..<dayCount).map { dayO[$0] >= 12 * 3600 ? dayV[$0] / dayO[$0] : nil }

        // Weekday profile: median ratio of a day to its centred 7-day median.
        if dayRate.count(where: { $0 != nil }) >= 14 {
            var ratios = [[Double]](repeating: [], count: 7)
            for d in 3..<max(3, dayCount - 3) {
                guard let r = dayRate[d] else { continue }
                let around = dayRate[(d - 3)...(d + 3)].compactMap { $0 }
                guard around.count == 7 else { continue }
                // A centred 7-day median holds every weekday once, so it is a
                // fixed multiple of the week's mean (the factors are normalised
                // below) but a spike or an outage day cannot move it.
                let reference = median(around)
                if reference > 0 { ratios[dayWeekday[d]].append(r / reference) }
            }
            if ratios.allSatisfy({ !$0.isEmpty }) {
                let med = ratios.map { median($0) }
                let mean = med.reduce(0, +) / 7
                if mean > 0 {
                    // Shrink toward a flat week by how much of the spread
                    // between weekdays their own noise explains, so noise on
                    // flat traffic is not projected as a weekly pattern.
                    let f = med.map { $0 / mean }
                    let between = f.map { ($0 - 1) * ($0 - 1) }.reduce(0, +) / 6
                    var within = 0.0, count = 0.0
                    for (w, rs) in ratios.enumerated() {
                        let sd = 1.4826 * median(rs.map { abs($0 / mean - f[w]) })
                        within += sd * sd / Double(rs.count); count += 1
                    }
                    let keep = between > 0 ? max(0, 1 - (within / count) / between) : 0
                    weekday = f.map { 1 + ($0 - 1) * keep }
                    hasWeekProfile = true
                }
            }
        }
        // Hour-of-day profile: median ratio of an hour to its day.
        if dayRate.count(where: { $0 != nil }) >= 3 {
            var ratios = [[Double]](repeating: [], count: 24)
            for i in idx where traffic.observed[i] >= 1800 {
                guard let r = dayRate[traffic.local[i].day - firstDay], r > 0 else { continue }
                ratios[slots.slot(hour: traffic.firstHour + i).1].append(values[i] / traffic.observed[i] / r)
            }
            if ratios.allSatisfy({ $0.count >= 2 }) {
                let med = ratios.map { median($0) }
                let mean = med.reduce(0, +) / 24
                if mean > 0 { hourOfDay = med.map { $0 / mean } }
            }
        }

        // Deseasonalised 24-h blocks counted back from now.
        var blocks: [(t: Double, level: Double)] = []
        var sumV = 0.0, sumE = 0.0
        var blockV = [Double](repeating: 0, count: 57), blockE = blockV, blockO = blockV
        for i in idx {
            let (wd, hr) = slots.slot(hour: traffic.firstHour + i)
            let expect = traffic.observed[i] * weekday[wd] * hourOfDay[hr]
            sumV += values[i]; sumE += expect
            let k = (nowHour - 1 - (traffic.firstHour + i)) / 24
            if k < blockV.count { blockV[k] += values[i]; blockE[k] += expect; blockO[k] += traffic.observed[i] }
        }
        for k in 0..<blockV.count where blockO[k] >= 6 * 3600 && blockE[k] > 0 {
            blocks.append((t: -(Double(k) + 0.5), level: blockV[k] / blockE[k]))
        }
        let n = blocks.count
        // The robust (median) level needs the weekday profile (≥ 14 days):
        // without it a median of days lands on the commoner kind of weekday,
        // so the level is then the plain observed mean. A weekly swing left in
        // the blocks inflates their residuals, which keeps it from passing the
        // trend's significance test.
        if n >= 3 {
            let levels = blocks.map(\.level)
            var a = hasWeekProfile ? trimmedMean(levels) : sumV / sumE, b = 0.0
            if n >= 10 {
                var slopes: [Double] = []
                for i in 0..<n { for j in (i + 1)..<n where blocks[j].t != blocks[i].t {
                    slopes.append((blocks[j].level - blocks[i].level) / (blocks[j].t - blocks[i].t))
                } }
                let s = median(slopes)
                let a1 = median(blocks.map { $0.level - s * $0.t })
                // The test uses the classical residual deviation: a MAD of
                // ten residuals is too often near zero and passes noise.
                let resid = blocks.map { $0.level - (a1 + s * $0.t) }
                let sd = (resid.map { $0 * $0 }.reduce(0, +) / Double(n - 2)).squareRoot()
                let tm = blocks.map(\.t).reduce(0, +) / Double(n)
                let sxx = blocks.map { ($0.t - tm) * ($0.t - tm) }.reduce(0, +)
                let se = sxx > 0 ? sd / sxx.squareRoot() : .infinity
                // Shrink the slope by its own uncertainty (t = slope / se):
                // nothing below t = 2, nearly all of it from t ≈ 6 on. A hard
                // threshold would drop a slow real trend and leave the level
                // lagging half a window behind.
                if se.isFinite && se > 0 && s != 0 {
                    let t = abs(s) / se
                    b = s * max(0, 1 - (2 / t) * (2 / t))
                    a = hasWeekProfile ? trimmedMean(blocks.map { $0.level - b * $0.t }) : a1 + (s - b) * tm
                } else if se == 0 { a = a1; b = s }
            }
            let resid = blocks.map { $0.level - (a + b * $0.t) }
            level = a; slopePerDay = b
            sigma = 1.4826 * median(resid.map(abs))
            levelStandardError = 1.25 * sigma / Double(n).squareRoot()
        } else {
            // Under three days: the observed (gap-free) average, wide range.
            guard sumE > 0 else { level = 0; return }
            level = sumV / sumE
            sigma = level
            levelStandardError = level
        }
    }

    func rate(weekday wd: Int, hour: Int, daysAhead: Double) -> Double {
        weekday[wd] * hourOfDay[hour] * max(0, level + slopePerDay * daysAhead)
    }
}

/// Mean of the middle half (the interquartile mean): nearly as efficient as
/// the mean on noise, yet a quarter of the values on either side may be
/// outages or spikes without moving it.
func trimmedMean(_ xs: [Double]) -> Double {
    guard xs.count >= 4 else { return median(xs) }
    let s = xs.sorted()
    let cut = s.count / 4
    let mid = s[cut..<(s.count - cut)]
    return mid.reduce(0, +) / Double(mid.count)
}

func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
