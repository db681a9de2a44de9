import Foundation

/// The model behind `QuotaForecaster` for one direction.
///
/// rate(t) = weekday[t] × hourOfDay[t] × max(0, level + slope × days ahead).
/// - Profiles are medians of ratios (a day to its centred 7-day median; an
///   hour to its day's mean), so one spike or outage day cannot bend them.
/// - The level and slope are fitted on deseasonalised 24-h blocks, and only
///   on the blocks since the last change of level (`LevelShift`): a doubled
///   RelayBandwidthRate or a restart is a new regime, not a trend.
/// - The level is an interquartile mean of those blocks; the slope a
///   Theil-Sen estimate shrunk by its standard error (none below t = 2), so
///   flat traffic is not extrapolated from noise.
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
    /// Standard error of `slopePerDay` (0 when no trend was fitted).
    var slopeStandardError = 0.0
    /// Days before `now` at which the fitted regime starts, when a change of
    /// level was detected; nil when the level is fitted on the whole window.
    var regimeStartDaysAgo: Double?
    /// Days before `now` of the oldest block the level was fitted on.
    var learnsFromDaysAgo = 0.0

    /// A deseasonalised 24-h block: `t` in days relative to now (negative).
    struct Block { var t: Double; var level: Double }

    init?(traffic: HourlyTraffic, values: [Double], now: Date) {
        guard let window = ObservedWindow(traffic: traffic, now: now) else { return nil }
        var slots = SlotCache(traffic: traffic)
        let days = DailyRates(window: window, traffic: traffic, values: values)
        if let profile = Self.weekdayProfile(days) { weekday = profile; hasWeekProfile = true }
        if let profile = Self.hourOfDayProfile(window: window, traffic: traffic, values: values, days: days, slots: &slots) {
            hourOfDay = profile
        }
        let (blocks, plainMean) = dailyBlocks(window: window, traffic: traffic, values: values, slots: &slots)
        fitLevelAndTrend(blocks: blocks, plainMean: plainMean)
    }

    /// A flat model at `youngLevel` bytes/s, as uncertain as a young
    /// store's: for a level that stands on imported counts alone.
    init(youngLevel: Double) { setYoungLevel(youngLevel) }

    /// A young store's level (no daily blocks yet): flat, with its own size
    /// as its spread.
    mutating func setYoungLevel(_ value: Double) {
        level = value
        slopePerDay = 0
        sigma = value
        levelStandardError = value
    }

    /// A level that also stands on an imported average: the gap between it
    /// and the model's own level widens the level's uncertainty.
    mutating func blendLevel(_ value: Double) {
        let gap = abs(level - value)
        level = value
        levelStandardError = max(levelStandardError, gap)
        sigma = max(sigma, gap)
    }

    func rate(weekday wd: Int, hour: Int, daysAhead: Double) -> Double {
        weekday[wd] * hourOfDay[hour] * max(0, level + slopePerDay * daysAhead)
    }

    // MARK: Steps

    /// The observed hours of the model's window: up to 56 days before `now`.
    struct ObservedWindow {
        /// Hour index (since 1970) at which complete hours end.
        var nowHour: Int
        /// Indices into the traffic's bins with observed time, oldest first.
        var indices: [Int]

        init?(traffic: HourlyTraffic, now: Date) {
            nowHour = Int((now.timeIntervalSince1970 / 3600).rounded(.down))
            // The hour containing `now` counts only when the traffic was binned up
            // to `now` (live use); a backtest's traffic runs on past `now`.
            let partialNowHour = traffic.firstHour + traffic.hourCount - 1 == nowHour
            let lastIndex = nowHour - (partialNowHour ? 0 : 1) - traffic.firstHour
            let firstIndex = max(0, nowHour - Int(QuotaForecaster.windowSeconds / 3600) - traffic.firstHour)
            let last = min(lastIndex, traffic.hourCount - 1)
            guard traffic.hourCount > 0, last >= firstIndex else { return nil }
            var observedTotal = 0.0
            indices = []
            for i in firstIndex...last where traffic.observed[i] > 0 {
                indices.append(i); observedTotal += traffic.observed[i]
            }
            guard observedTotal >= QuotaForecaster.minimumObservedSeconds else { return nil }
        }
    }

    /// Local calendar days (indexed from the window's first) and their mean
    /// rates; nil for days observed under 12 h.
    struct DailyRates {
        var firstDay: Int
        var rate: [Double?]
        var weekday: [Int]
        var usableCount: Int { rate.count(where: { $0 != nil }) }

        init(window: ObservedWindow, traffic: HourlyTraffic, values: [Double]) {
            let idx = window.indices
            firstDay = traffic.local[idx[0]].day
            let dayCount = traffic.local[idx[idx.count - 1]].day - firstDay + 1
            var sum = [Double](repeating: 0, count: dayCount), observed = sum
            weekday = [Int](repeating: 0, count: dayCount)
            for i in idx {
                let l = traffic.local[i]
                weekday[l.day - firstDay] = l.weekday
                sum[l.day - firstDay] += values[i]; observed[l.day - firstDay] += traffic.observed[i]
            }
            rate = (0..<dayCount).map { observed[$0] >= 12 * 3600 ? sum[$0] / observed[$0] : nil }
        }
    }

    /// Weekday factors: the median ratio of a day to its centred 7-day
    /// median, shrunk toward a flat week by how much of their spread noise
    /// explains. nil under 14 usable days.
    static func weekdayProfile(_ days: DailyRates) -> [Double]? {
        guard days.usableCount >= 14 else { return nil }
        let dayRate = days.rate, dayCount = dayRate.count
        var ratios = [[Double]](repeating: [], count: 7)
        for d in 3..<max(3, dayCount - 3) {
            guard let r = dayRate[d] else { continue }
            let around = dayRate[(d - 3)...(d + 3)].compactMap { $0 }
            guard around.count == 7 else { continue }
            // A centred 7-day median holds every weekday once, so it is a
            // fixed multiple of the week's mean (the factors are normalised
            // below) but a spike or an outage day cannot move it.
            let reference = median(around)
            if reference > 0 { ratios[days.weekday[d]].append(r / reference) }
        }
        guard ratios.allSatisfy({ !$0.isEmpty }) else { return nil }
        let med = ratios.map { median($0) }
        let mean = med.reduce(0, +) / 7
        guard mean > 0 else { return nil }
        // Shrink toward a flat week by how much of the spread between
        // weekdays their own noise explains, so noise on flat traffic is not
        // projected as a weekly pattern.
        let f = med.map { $0 / mean }
        let between = f.map { ($0 - 1) * ($0 - 1) }.reduce(0, +) / 6
        var within = 0.0, count = 0.0
        for (w, rs) in ratios.enumerated() {
            let sd = 1.4826 * median(rs.map { abs($0 / mean - f[w]) })
            within += sd * sd / Double(rs.count); count += 1
        }
        let keep = between > 0 ? max(0, 1 - (within / count) / between) : 0
        return f.map { 1 + ($0 - 1) * keep }
    }

    /// Hour-of-day factors: the median ratio of an hour to its day. nil under
    /// three usable days or with an hour seen fewer than twice.
    static func hourOfDayProfile(window: ObservedWindow, traffic: HourlyTraffic, values: [Double],
                                 days: DailyRates, slots: inout SlotCache) -> [Double]? {
        guard days.usableCount >= 3 else { return nil }
        var ratios = [[Double]](repeating: [], count: 24)
        for i in window.indices where traffic.observed[i] >= 1800 {
            guard let r = days.rate[traffic.local[i].day - days.firstDay], r > 0 else { continue }
            ratios[slots.slot(hour: traffic.firstHour + i).1].append(values[i] / traffic.observed[i] / r)
        }
        guard ratios.allSatisfy({ $0.count >= 2 }) else { return nil }
        let med = ratios.map { median($0) }
        let mean = med.reduce(0, +) / 24
        return mean > 0 ? med.map { $0 / mean } : nil
    }

    /// Deseasonalised 24-h blocks counted back from now (oldest first; blocks
    /// observed under 6 h left out), and the plain observed ÷ expected mean.
    func dailyBlocks(window: ObservedWindow, traffic: HourlyTraffic, values: [Double],
                     slots: inout SlotCache) -> (blocks: [Block], plainMean: Double?) {
        var sumV = 0.0, sumE = 0.0
        var blockV = [Double](repeating: 0, count: 57), blockE = blockV, blockO = blockV
        for i in window.indices {
            let (wd, hr) = slots.slot(hour: traffic.firstHour + i)
            let expect = traffic.observed[i] * weekday[wd] * hourOfDay[hr]
            sumV += values[i]; sumE += expect
            let k = (window.nowHour - 1 - (traffic.firstHour + i)) / 24
            if k < blockV.count { blockV[k] += values[i]; blockE[k] += expect; blockO[k] += traffic.observed[i] }
        }
        var blocks: [Block] = []
        for k in (0..<blockV.count).reversed() where blockO[k] >= 6 * 3600 && blockE[k] > 0 {
            blocks.append(Block(t: -(Double(k) + 0.5), level: blockV[k] / blockE[k]))
        }
        return (blocks, sumE > 0 ? sumV / sumE : nil)
    }

    /// Level, slope and their uncertainty from the blocks since the last
    /// change of level (all blocks when none was detected).
    mutating func fitLevelAndTrend(blocks all: [Block], plainMean: Double?) {
        guard all.count >= 3 else {
            // Under three days: the observed (gap-free) average, wide range.
            level = plainMean ?? 0
            sigma = level
            levelStandardError = level
            learnsFromDaysAgo = -(all.first?.t ?? 0) + 0.5
            return
        }
        let noise = LevelShift.noise(all)
        var blocks = all
        if let start = LevelShift.lastChange(all, noise: noise) {
            blocks = Array(all[start...])
            regimeStartDaysAgo = -blocks[0].t + 0.5
        }
        learnsFromDaysAgo = -blocks[0].t + 0.5
        let n = blocks.count
        // The robust (median) level needs the weekday profile (≥ 14 days):
        // without it a median of days lands on the commoner kind of weekday,
        // so the level is then the plain observed mean. A weekly swing left in
        // the blocks inflates their residuals, which keeps it from passing the
        // trend's significance test.
        let robust = hasWeekProfile || regimeStartDaysAgo != nil
        var a = robust ? trimmedMean(blocks.map(\.level)) : (plainMean ?? 0), b = 0.0
        if n >= 10, let fit = Self.shrunkTheilSen(blocks) {
            b = fit.slope
            a = robust ? trimmedMean(blocks.map { $0.level - b * $0.t }) : fit.intercept
            if b != 0 { slopeStandardError = fit.standardError }
        }
        var resid = blocks.map { $0.level - (a + b * $0.t) }
        // Floods that keep coming back are part of the traffic: when four or
        // more days stand far above the level, their excess counts at the
        // rate it came (the mean, not the interquartile mean). A one-off
        // spike or two stays out.
        if robust && resid.count(where: { $0 > 3 * noise }) >= 4 {
            let excess = resid.reduce(0, +) / Double(n)
            a += excess
            resid = resid.map { $0 - excess }
        }
        level = a; slopePerDay = b
        // A handful of blocks since a change cannot measure their own spread:
        // the day-to-day noise of the whole window stands in.
        sigma = n >= 7 ? max(1.4826 * median(resid.map(abs)), 0.5 * noise) : max(noise, 1.4826 * median(resid.map(abs)))
        levelStandardError = 1.25 * sigma / Double(n).squareRoot()
    }

    /// Theil-Sen slope shrunk by its own uncertainty (t = slope / se): nothing
    /// below t = 2, nearly all of it from t ≈ 6 on. A hard threshold would
    /// drop a slow real trend and leave the level lagging half a window behind.
    static func shrunkTheilSen(_ blocks: [Block], shrink: Bool = true) -> (slope: Double, intercept: Double, standardError: Double)? {
        let n = blocks.count
        var slopes: [Double] = []
        for i in 0..<n { for j in (i + 1)..<n where blocks[j].t != blocks[i].t {
            slopes.append((blocks[j].level - blocks[i].level) / (blocks[j].t - blocks[i].t))
        } }
        let s = median(slopes)
        let a1 = median(blocks.map { $0.level - s * $0.t })
        // The test uses the classical residual deviation: a MAD of ten
        // residuals is too often near zero and passes noise.
        let resid = blocks.map { $0.level - (a1 + s * $0.t) }
        let sd = (resid.map { $0 * $0 }.reduce(0, +) / Double(n - 2)).squareRoot()
        let tm = blocks.map(\.t).reduce(0, +) / Double(n)
        let sxx = blocks.map { ($0.t - tm) * ($0.t - tm) }.reduce(0, +)
        let se = sxx > 0 ? sd / sxx.squareRoot() : .infinity
        if se == 0 { return (s, a1, 0) }
        guard se.isFinite && s != 0 else { return nil }
        let t = abs(s) / se
        let b = shrink ? s * max(0, 1 - (2 / t) * (2 / t)) : s
        return (b, a1 + (s - b) * tm, se)
    }
}

/// Finds where the deseasonalised daily level last changed for good: a step
/// (a new RelayBandwidthRate), a restart, a ramp that settled.
///
/// A candidate start splits the blocks into the days before it (at least a
/// week) and the days since. It is a change when the days since sit off the
/// line the days before were on (so a steady trend is no change) by more than
/// `threshold` standard errors and by over 12 % of the level, and when the
/// latest days still sit off it (so a flood that ended is no change). A drop
/// to almost nothing is an outage, not a regime, and is never a change. Of
/// the candidates the strongest wins; later changes after it win over it.
enum LevelShift {
    /// Days a new level must hold before the projection believes it.
    static let minimumDays = 4
    static let threshold = 5.0
    static let minimumRelativeChange = 0.12

    /// Robust day-to-day noise of the levels: the MAD of first differences
    /// (÷ √2), which a step or a trend barely moves.
    static func noise(_ blocks: [SeasonalTrendModel.Block]) -> Double {
        guard blocks.count >= 3 else { return 0 }
        let diffs = zip(blocks.dropFirst(), blocks).map { abs($0.level - $1.level) }
        return 1.4826 * median(diffs) / 2.0.squareRoot()
    }

    /// Index of the first block of the current regime, or nil.
    static func lastChange(_ blocks: [SeasonalTrendModel.Block], noise: Double) -> Int? {
        var from = 0, found: Int? = nil
        while let s = strongestChange(blocks, after: from, noise: noise) {
            found = s; from = s
        }
        return found
    }

    static func strongestChange(_ blocks: [SeasonalTrendModel.Block], after from: Int, noise: Double) -> Int? {
        let n = blocks.count
        guard noise > 0, n - minimumDays >= from + 7 else { return nil }
        var best: (Int, Double)? = nil
        // Days with almost no traffic are outages, not a level: left out of both sides.
        let floor = 0.1 * median(blocks[from...].map(\.level))
        for s in (from + 7)...(n - minimumDays) {
            let before = blocks[from..<s].filter { $0.level > floor }, after = blocks[s...].filter { $0.level > floor }
            guard before.count >= 7, after.count >= minimumDays else { continue }
            let reference = trend(before)
            let beforeLevel = reference.level
            guard beforeLevel > 0 else { continue }
            let offsets = after.map { $0.level - (reference.level + reference.slope * ($0.t - reference.t)) }
            let shift = median(offsets)
            guard abs(shift) > minimumRelativeChange * beforeLevel else { continue }
            // The latest days must still be on the new side, past half the shift.
            let recent = offsets.suffix(3)
            guard recent.allSatisfy({ $0 * shift > 0 && abs($0) > 0.5 * abs(shift) }) else { continue }
            // The line's own uncertainty where the new days are counts too.
            let reach = median(after.map(\.t)) - reference.t
            let variance = noise * noise * (1.57 / Double(after.count) + 1.57 / Double(before.count))
                + pow(reach * reference.slopeError, 2)
            let z = abs(shift) / variance.squareRoot()
            if z > threshold && z > (best?.1 ?? 0) { best = (s, z) }
        }
        return best?.0
    }

    /// A robust line through `blocks` (≥ 7 of them, else flat): median level
    /// at their median time and the unshrunk Theil-Sen slope, whose standard
    /// error the test then counts, so a trend is never mistaken for a step.
    static func trend(_ blocks: [SeasonalTrendModel.Block]) -> (t: Double, level: Double, slope: Double, slopeError: Double) {
        let tm = median(blocks.map(\.t))
        guard blocks.count >= 7, let fit = SeasonalTrendModel.shrunkTheilSen(blocks, shrink: false) else {
            return (tm, median(blocks.map(\.level)), 0, 0)
        }
        return (tm, fit.intercept + fit.slope * tm, fit.slope, fit.slope == 0 ? 0 : fit.standardError)
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
