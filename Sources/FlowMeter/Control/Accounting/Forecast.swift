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
    }
}

/// FlowMeter's forecast (docs/quotas.md, "Forecast"). Pure: takes `now`.
public enum QuotaForecaster {
    public static let methodName = "seasonal-trend (robust 24-h level with Theil-Sen trend over 28 d, × weekday and hour-of-day profile; capture gaps excluded)"
    /// Tor's MIN_TIME_FOR_MEASUREMENT: no projection from less than 30 min of data.
    public static let minimumObservedSeconds = 1800.0
    /// How much history before `now` the model reads.
    public static let windowSeconds = 28.0 * 86_400

    /// Reads what it needs from `source` and forecasts `quota` at `now`.
    public static func forecast(_ quota: Quota, source: UsageHistorySource, now: Date) throws -> QuotaForecast {
        let interval = quota.interval(containing: now)
        let from = min(interval.start, now.addingTimeInterval(-windowSeconds))
        let buckets = try source.buckets(from: from, to: now)
        let gaps = try source.gaps(from: from, to: now)
        let traffic = HourlyTraffic(buckets: buckets, gaps: gaps, scope: quota.scope, from: from, to: now)
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

        guard let mIn = SeasonalTrendModel(traffic: traffic, values: traffic.read, now: now, zone: quota.timeZone),
              let mOut = SeasonalTrendModel(traffic: traffic, values: traffic.written, now: now, zone: quota.timeZone)
        else { return f }

        // Walk the rest of the period hour by hour.
        var cumIn = Double(usage.read), cumOut = Double(usage.written)
        let limit = Double(quota.limit)
        var exhaustion: Date? = usage.used >= quota.limit ? pastCrossing(quota, buckets: periodBuckets, interval: interval) ?? now : nil
        var t = max(now, interval.start).timeIntervalSince1970
        let end = interval.end.timeIntervalSince1970
        var slot = SlotCache(zone: quota.timeZone)
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
                             endRead: cumIn, endWritten: cumOut, exhaustion: exhaustion)
        return f
    }

    /// When the cumulative rule bytes crossed the limit, from the period's buckets.
    static func pastCrossing(_ quota: Quota, buckets: [UsageBucket], interval: DateInterval) -> Date? {
        var r: UInt64 = 0, w: UInt64 = 0
        for b in buckets.sorted(by: { $0.start < $1.start }) where b.start >= interval.start && quota.scope.includes(b) {
            let before = quota.rule.bytes(read: r, written: w)
            let n = quota.scope.bytes(of: b)
            if b.direction == Direction.inbound.label { r &+= n } else if b.direction == Direction.outbound.label { w &+= n } else { continue }
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

/// Local (weekday, hour) of UTC hours, memoised per UTC offset change.
struct SlotCache {
    let zone: TimeZone
    var memo: [Int: (Int, Int)] = [:]
    init(zone: TimeZone) { self.zone = zone }
    mutating func slot(hour h: Int) -> (Int, Int) {
        if let s = memo[h] { return s }
        let l = LocalTime(Date(timeIntervalSince1970: Double(h) * 3600), in: zone)
        memo[h] = (l.weekday, l.hour)
        return (l.weekday, l.hour)
    }
}

/// The model behind `QuotaForecaster` for one direction.
///
/// rate(t) = weekday[t] × hourOfDay[t] × max(0, level + slope × days ahead).
/// - Profiles are medians of ratios (a day to its centred 7-day mean; an hour
///   to its day's mean), so one spike or outage day cannot bend them.
/// - The level is a median of deseasonalised 24-h blocks; the slope a
///   Theil-Sen estimate kept only when it is ≥ 3 standard errors, so flat
///   traffic is not extrapolated from noise.
/// - Only observed seconds count: a capture gap lowers no rate.
struct SeasonalTrendModel {
    var weekday = [Double](repeating: 1, count: 7)
    var hourOfDay = [Double](repeating: 1, count: 24)
    var level = 0.0
    var slopePerDay = 0.0
    /// Day-to-day standard deviation of the deseasonalised level (bytes/s).
    var sigma = 0.0
    var levelStandardError = 0.0

    init?(traffic: HourlyTraffic, values: [Double], now: Date, zone: TimeZone) {
        let nowHour = Int((now.timeIntervalSince1970 / 3600).rounded(.down)) // complete hours end here
        let lastIndex = nowHour - 1 - traffic.firstHour
        let firstIndex = max(0, nowHour - Int(QuotaForecaster.windowSeconds / 3600) - traffic.firstHour)
        guard lastIndex >= firstIndex, lastIndex < traffic.hourCount || traffic.hourCount > 0 else { return nil }
        let last = min(lastIndex, traffic.hourCount - 1)
        guard last >= firstIndex else { return nil }
        var slots = SlotCache(zone: zone)
        var idx: [Int] = []
        var observedTotal = 0.0
        for i in firstIndex...last where traffic.observed[i] > 0 {
            idx.append(i); observedTotal += traffic.observed[i]
        }
        guard observedTotal >= QuotaForecaster.minimumObservedSeconds else { return nil }

        // Local calendar days and their mean rates.
        var dayOf: [Int: Int] = [:]
        var dayV: [Int: Double] = [:], dayO: [Int: Double] = [:], dayWeekday: [Int: Int] = [:]
        for i in idx {
            let h = traffic.firstHour + i
            let l = LocalTime(Date(timeIntervalSince1970: Double(h) * 3600), in: zone)
            dayOf[i] = l.dayNumber; dayWeekday[l.dayNumber] = l.weekday
            dayV[l.dayNumber, default: 0] += values[i]; dayO[l.dayNumber, default: 0] += traffic.observed[i]
        }
        var dayRate: [Int: Double] = [:]
        for (d, o) in dayO where o >= 12 * 3600 { dayRate[d] = dayV[d]! / o }

        // Weekday profile: median ratio of a day to its centred 7-day mean.
        if dayRate.count >= 14 {
            var ratios = [[Double]](repeating: [], count: 7)
            for (d, r) in dayRate {
                let around = (-3...3).compactMap { dayRate[d + $0] }
                guard around.count == 7 else { continue }
                let mean = around.reduce(0, +) / 7
                if mean > 0 { ratios[dayWeekday[d]!].append(r / mean) }
            }
            if ratios.allSatisfy({ !$0.isEmpty }) {
                let med = ratios.map { median($0) }
                let mean = med.reduce(0, +) / 7
                if mean > 0 { weekday = med.map { $0 / mean } }
            }
        }
        // Hour-of-day profile: median ratio of an hour to its day.
        if dayRate.count >= 3 {
            var ratios = [[Double]](repeating: [], count: 24)
            for i in idx where traffic.observed[i] >= 1800 {
                guard let d = dayOf[i], let r = dayRate[d], r > 0 else { continue }
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
        var blockV = [Double](repeating: 0, count: 29), blockE = blockV, blockO = blockV
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
        if n >= 3 {
            let levels = blocks.map(\.level)
            var a = median(levels), b = 0.0
            if n >= 10 {
                var slopes: [Double] = []
                for i in 0..<n { for j in (i + 1)..<n where blocks[j].t != blocks[i].t {
                    slopes.append((blocks[j].level - blocks[i].level) / (blocks[j].t - blocks[i].t))
                } }
                let s = median(slopes)
                let a1 = median(blocks.map { $0.level - s * $0.t })
                let resid = blocks.map { $0.level - (a1 + s * $0.t) }
                let sd = 1.4826 * median(resid.map(abs))
                let tm = blocks.map(\.t).reduce(0, +) / Double(n)
                let sxx = blocks.map { ($0.t - tm) * ($0.t - tm) }.reduce(0, +)
                let se = sxx > 0 ? sd / sxx.squareRoot() : .infinity
                if abs(s) >= 3 * se && se.isFinite { a = a1; b = s }
            }
            let resid = blocks.map { $0.level - (a + b * $0.t) }
            level = a; slopePerDay = b
            sigma = 1.4826 * median(resid.map(abs))
            levelStandardError = 1.25 * sigma / Double(n).squareRoot()
        } else {
            // Under three usable days: the observed average, with a wide range.
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

func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
