import FlowMeterFormat
import Foundation

/// A value axis a person reads in seconds: every tick is a multiple of one
/// step of 1, 2 or 5 × 10^n *in the unit shown*, and every label is in that
/// one unit (`0`, `200 GiB`, `400 GiB`, `600 GiB`; `0`, `0.5 MiB/s`,
/// `1 MiB/s`). Binary axes step in binary units, SI axes in SI units
/// (`ByteUnits`), so no label is a decimal step printed in binary units.
///
/// Invariants: `step > 0`; `top` is a whole number of steps and at least
/// the value the axis was made for; `ticks` run from 0 to `top` in steps.
public struct ByteAxis: Sendable, Equatable {
    public var units: ByteUnits
    /// Index into `units.symbols` of the unit every label uses.
    public var unitIndex: Int
    /// The step, in that unit.
    public var step: Double
    /// Steps from 0 to the top.
    public var count: Int
    public var perSecond: Bool

    /// One unit, in bytes.
    public var unitBytes: Double { pow(units.base, Double(unitIndex)) }
    /// The axis' top, in bytes.
    public var top: Double { step * Double(count) * unitBytes }
    /// 0, step, 2·step … top, in bytes.
    public var ticks: [Double] { (0...count).map { Double($0) * step * unitBytes } }

    /// The smallest axis whose top holds `maximum` (bytes) in at most
    /// `maxSteps` steps. The unit is the largest one `maximum` reaches; the
    /// step may be a fraction of it (0.5 MiB) but never of a byte.
    public static func covering(_ maximum: Double, units: ByteUnits, perSecond: Bool = false, maxSteps: Int = 6) -> ByteAxis {
        let m = maximum.isFinite ? max(0, maximum) : 0
        var index = 0
        while index < units.symbols.count - 1 && m >= pow(units.base, Double(index + 1)) { index += 1 }
        let inUnit = m / pow(units.base, Double(index))
        var step = niceStep(atLeast: inUnit / Double(maxSteps))
        if index == 0 { step = max(1, step) }
        let count = max(1, Int((inUnit / step - 1e-9).rounded(.up)))
        return ByteAxis(units: units, unitIndex: index, step: step, count: count, perSecond: perSecond)
    }

    /// The smallest 1, 2 or 5 × 10^n that is at least `v` (1 for nothing).
    static func niceStep(atLeast v: Double) -> Double {
        guard v > 0, v.isFinite else { return 1 }
        let p = pow(10, floor(log10(v)))
        for m in [1.0, 2, 5, 10] where m * p >= v * (1 - 1e-12) { return m * p }
        return 10 * p
    }

    /// The label of a tick (bytes): "0" or the value in the axis' unit with
    /// as many decimals as the step needs.
    public func label(_ bytes: Double) -> String {
        let v = abs(bytes) / unitBytes
        if v < step / 2 { return "0" }
        let decimals = step >= 1 ? 0 : Int((-log10(step)).rounded(.up))
        let number = String(format: "%.\(decimals)f", v)
        return "\(number) \(units.symbols[unitIndex])\(perSecond ? "/s" : "")"
    }
}

/// A time axis at round instants: every 10 minutes, hour, 6 hours, day,
/// week…, whichever puts at most `maxTicks` ticks on the span, aligned to
/// UTC (the charts' one zone).
public struct TimeAxis: Sendable, Equatable {
    public var ticks: [Date]
    public var stepSeconds: Int

    static let steps = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200,
                        86_400, 2 * 86_400, 7 * 86_400, 14 * 86_400, 28 * 86_400, 56 * 86_400]

    public init(from: Date, to: Date, maxTicks: Int = 6) {
        let span = max(60, to.timeIntervalSince(from))
        let step = Self.steps.first { span / Double($0) <= Double(maxTicks) } ?? Self.steps.last!
        // Weeks start on Monday (1970-01-05), every shorter step at the epoch's multiples.
        let origin = step % (7 * 86_400) == 0 ? 4 * 86_400.0 : 0
        let first = ((from.timeIntervalSince1970 - origin) / Double(step)).rounded(.up) * Double(step) + origin
        var out: [Date] = []
        var t = first
        while t <= to.timeIntervalSince1970 + 1e-6 && out.count <= maxTicks {
            out.append(Date(timeIntervalSince1970: t))
            t += Double(step)
        }
        ticks = out
        stepSeconds = step
    }

    /// "14:30" for a span within a day, "03-05 14:00" for hours over days,
    /// "2026-03-05" for whole days.
    public func label(_ d: Date, spanSeconds: Double) -> String {
        if stepSeconds >= 86_400 { return SVG.time(d, format: "yyyy-MM-dd") }
        return SVG.time(d, format: spanSeconds <= 86_400 ? "HH:mm" : "MM-dd HH:mm")
    }
}
