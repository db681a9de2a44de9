import FlowMeterCore
import FlowMeterConfig
import Foundation

/// One quota scope's traffic binned by UTC hour, with how many seconds of
/// each hour capture actually observed. Hours capture did not observe (gaps,
/// or before the first data) have `observed == 0` and are never read as zero
/// traffic by the forecast.
public struct HourlyTraffic: Sendable {
    /// Hour index (seconds since 1970 / 3600) of bin 0.
    public let firstHour: Int
    public private(set) var read: [Double]
    public private(set) var written: [Double]
    public private(set) var observed: [Double]
    /// The zone whose calendar the forecast's weekday/hour profile uses.
    public let zone: TimeZone
    /// Where observing begins (no earlier than the binned span's start).
    public private(set) var observedFrom: Date
    /// Local (day number, weekday, hour) of each bin's start, computed once.
    let local: [(day: Int, weekday: Int, hour: Int)]

    public var hourCount: Int { observed.count }

    /// Bins [from, to) of `buckets` in `scope`. Bucket bytes are spread evenly
    /// over the bucket's span; observation starts at the earliest bucket of any
    /// scope (before it nothing was recorded), or later at `observationStart`
    /// when observing began inside that bucket, and excludes `gaps`.
    public init(buckets: [UsageBucket], gaps: [DateInterval], scope: QuotaScope, from: Date, to: Date, zone: TimeZone,
                observationStart: Date? = nil) {
        firstHour = HourlyTraffic.hour(containing: from)
        let n = Swift.max(0, HourlyTraffic.hour(containing: to.addingTimeInterval(-0.001)) - firstHour + 1)
        read = Array(repeating: 0, count: n)
        written = read
        observed = read
        self.zone = zone
        observedFrom = to
        let first = firstHour
        local = (0..<n).map { i in
            let l = LocalTime(Date(timeIntervalSince1970: Double(first + i) * 3600), in: zone)
            return (l.dayNumber, l.weekday, l.hour)
        }
        guard n > 0 else { return }
        for b in buckets where scope.includes(b) {
            let inbound = b.direction == .inbound
            guard inbound || b.direction == .outbound else { continue }
            spread(Double(scope.bytes(of: b)), over: b.start, seconds: Double(Swift.max(1, b.durationSeconds)), inbound: inbound)
        }
        let earliest = buckets.map(\.start).min() ?? to
        observedFrom = Swift.max(from, earliest, observationStart ?? earliest)
        for i in 0..<n {
            let hs = Double(firstHour + i) * 3600
            let lo = Swift.max(hs, observedFrom.timeIntervalSince1970), hi = Swift.min(hs + 3600, to.timeIntervalSince1970)
            guard hi > lo else { continue }
            var covered = hi - lo
            for g in gaps {
                let gl = Swift.max(lo, g.start.timeIntervalSince1970), gh = Swift.min(hi, g.end.timeIntervalSince1970)
                if gh > gl { covered -= gh - gl }
            }
            observed[i] = Swift.max(0, covered)
        }
    }

    static func hour(containing d: Date) -> Int { Int((d.timeIntervalSince1970 / 3600).rounded(.down)) }

    private mutating func spread(_ bytes: Double, over start: Date, seconds: Double, inbound: Bool) {
        let s = start.timeIntervalSince1970, e = s + seconds
        var h = Int((s / 3600).rounded(.down))
        while Double(h) * 3600 < e {
            let lo = Swift.max(s, Double(h) * 3600), hi = Swift.min(e, Double(h + 1) * 3600)
            let i = h - firstHour
            if i >= 0 && i < hourCount && hi > lo {
                if inbound { read[i] += bytes * (hi - lo) / seconds } else { written[i] += bytes * (hi - lo) / seconds }
            }
            h += 1
        }
    }

    /// What was observed in the `window` seconds before `now`, whole bins
    /// (a bin's observed seconds already count only its observed part).
    public func ownHistory(window: Double, now: Date) -> (read: Double, written: Double, observed: Double) {
        let first = HourlyTraffic.hour(containing: now.addingTimeInterval(-window)) - firstHour
        let last = HourlyTraffic.hour(containing: now.addingTimeInterval(-0.001)) - firstHour
        var r = 0.0, w = 0.0, o = 0.0
        for i in Swift.max(0, first)...Swift.max(0, Swift.min(hourCount - 1, last)) where i < hourCount {
            r += read[i]; w += written[i]; o += observed[i]
        }
        return (r, w, o)
    }

    /// Sums over [from, to), pro rata for partial hours: (read, written, observed seconds).
    public func totals(from: Date, to: Date) -> (read: Double, written: Double, observed: Double) {
        var r = 0.0, w = 0.0, o = 0.0
        let a = from.timeIntervalSince1970, b = to.timeIntervalSince1970
        guard b > a else { return (0, 0, 0) }
        let i0 = Swift.max(0, HourlyTraffic.hour(containing: from) - firstHour)
        let i1 = Swift.min(hourCount - 1, HourlyTraffic.hour(containing: to) - firstHour)
        guard i0 <= i1 else { return (0, 0, 0) }
        for i in i0...i1 {
            let hs = Double(firstHour + i) * 3600
            let f = Swift.max(0, Swift.min(b, hs + 3600) - Swift.max(a, hs)) / 3600
            r += read[i] * f; w += written[i] * f; o += observed[i] * f
        }
        return (r, w, o)
    }
}
