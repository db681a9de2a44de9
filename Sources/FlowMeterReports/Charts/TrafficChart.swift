import FlowMeterCore
import FlowMeterAccounting
import FlowMeterStore
import Foundation

/// Bytes per step for one relay label, per category and direction: the data
/// behind a stacked traffic chart. Invariant: every array in `inbound` and
/// `outbound` has `steps` elements; step `i` covers
/// [start + i·stepSeconds, start + (i+1)·stepSeconds).
public struct TrafficSeries: Sendable, Equatable {
    public var relay: String
    public var start: Date
    public var stepSeconds: Int
    public var steps: Int
    /// Category label → bytes per step.
    public var inbound: [String: [Double]] = [:]
    public var outbound: [String: [Double]] = [:]
    /// Where the data end when that is inside the series (the step in
    /// progress, e.g. an hour 10 minutes old): that step's rate is its
    /// bytes over its elapsed seconds, not over the whole step.
    public var dataEnd: Date? = nil

    public init(relay: String, start: Date, stepSeconds: Int, steps: Int) {
        self.relay = relay; self.start = start; self.stepSeconds = stepSeconds; self.steps = steps
    }

    public var end: Date { start.addingTimeInterval(Double(stepSeconds * steps)) }

    public mutating func add(category: String, direction: String, step: Int, bytes: Double) {
        guard step >= 0 && step < steps else { return }
        if direction == Direction.inbound.label {
            inbound[category, default: [Double](repeating: 0, count: steps)][step] += bytes
        } else if direction == Direction.outbound.label {
            outbound[category, default: [Double](repeating: 0, count: steps)][step] += bytes
        }
    }

    /// Seconds of step `i` the data cover: the whole step, or the part
    /// before `dataEnd` (at least one second), 0 for a step after it.
    public func coveredSeconds(step i: Int) -> Double {
        let start = self.start.addingTimeInterval(Double(i * stepSeconds))
        guard let end = dataEnd, end < start.addingTimeInterval(Double(stepSeconds)) else { return Double(stepSeconds) }
        return end <= start ? 0 : max(1, end.timeIntervalSince(start))
    }

    /// Total bytes of one category and direction over the whole series.
    public func total(category: String, direction: Direction) -> Double {
        ((direction == .inbound ? inbound : outbound)[category] ?? []).reduce(0, +)
    }

    /// Every relay's series from stored buckets in [from, to). The step is an
    /// hour, or the coarsest stored resolution met in the range if that is
    /// coarser (where hours were pruned, days stand in): never finer than what
    /// the store kept, so no bucket is smeared into steps it did not measure.
    /// - Parameter now: where the stored data end (`AccountingReader.dataEnd`),
    ///   so a step in progress is drawn at its real rate.
    public static func fromHistory(_ source: any UsageHistorySource, from: Date, to: Date,
                                   minimumStepSeconds: Int = 3600, now: Date? = nil) throws -> (series: [TrafficSeries], spans: [ChartSpan]) {
        let buckets = try source.buckets(from: from, to: to)
        let step = max(minimumStepSeconds, buckets.map(\.durationSeconds).max() ?? minimumStepSeconds)
        let aligned = Date(timeIntervalSince1970: floor(from.timeIntervalSince1970 / Double(step)) * Double(step))
        let steps = max(1, Int(ceil(to.timeIntervalSince(aligned) / Double(step))))
        var byRelay: [String: TrafficSeries] = [:]
        var order: [String] = []
        for b in buckets {
            if byRelay[b.relay] == nil {
                order.append(b.relay)
                byRelay[b.relay] = TrafficSeries(relay: b.relay, start: aligned, stepSeconds: step, steps: steps)
                byRelay[b.relay]!.dataEnd = now
            }
            let i = Int(floor(b.start.timeIntervalSince(aligned) / Double(step)))
            byRelay[b.relay]!.add(category: b.category.label, direction: b.direction.label, step: i, bytes: Double(b.bytes))
        }
        let spans = try source.gaps(from: from, to: to).map { ChartSpan($0, reason: "lower bound") }
        return (order.map { byRelay[$0]! }, spans)
    }
}

/// A stacked area chart of one relay's rates: inbound stacked above the
/// axis, outbound below it, one colour per category, so each category's
/// share is visible in both directions at once.
public struct TrafficChart: Sendable {
    public var title: String
    public var series: TrafficSeries
    public var spans: [ChartSpan]
    public var id: String

    public init(title: String, series: TrafficSeries, spans: [ChartSpan] = [], id: String) {
        self.title = title; self.series = series; self.spans = spans; self.id = id
    }

    /// Categories drawn, in the classifier's order, only those with traffic.
    var categories: [String] {
        Category.allCases.map(\.label).filter { series.inbound[$0] != nil || series.outbound[$0] != nil }
    }

    public func svg() -> String {
        let s = series
        func stackTops(_ side: [String: [Double]]) -> [[Double]] {
            var running = [Double](repeating: 0, count: s.steps)
            return categories.map { c in
                for i in 0..<s.steps {
                    let seconds = s.coveredSeconds(step: i)
                    running[i] += seconds > 0 ? (side[c]?[i] ?? 0) / seconds : 0
                }
                return running
            }
        }
        let ins = stackTops(s.inbound), outs = stackTops(s.outbound)
        let peak = max(ins.last?.max() ?? 0, outs.last?.max() ?? 0)
        let axis = ByteAxis.covering(peak, units: .binary, perSecond: true, maxSteps: 3)
        var frame = TimeFrame(from: s.start, to: s.end, yMin: -axis.top, yMax: axis.top)
        let rows = frame.layOut(legend)
        var out = frame.open(title: title, id: id)
        out += frame.legend(rows)
        out += frame.spans(spans)
        out += frame.axes(axis, mirrored: true)
        for (sign, tops) in [(1.0, ins), (-1.0, outs)] {
            var lower = [Double](repeating: 0, count: s.steps)
            for (ci, c) in categories.enumerated() {
                let upper = tops[ci]
                out += area(frame, lower: lower, upper: upper, sign: sign, color: SVG.color(category: c),
                            label: "\(c) \(sign > 0 ? "in" : "out")")
                lower = upper
            }
        }
        out += "<line x1=\"\(frame.left)\" x2=\"\(frame.width - frame.right)\" y1=\"\(SVG.num(frame.y(0)))\" y2=\"\(SVG.num(frame.y(0)))\" stroke=\"#333\"/>\n"
        out += "<text x=\"\(frame.left + 4)\" y=\"\(SVG.num(frame.top + 10))\" font-size=\"10\" fill=\"#333\">▲ in</text>"
        out += "<text x=\"\(frame.left + 4)\" y=\"\(SVG.num(frame.top + frame.plotHeight - 4))\" font-size=\"10\" fill=\"#333\">▼ out</text>\n"
        if let end = s.dataEnd, end < s.end { out += frame.nowLine(end) }
        return out + "</svg>\n"
    }

    /// One band between two stacked outlines, as a step shape (each step is a
    /// measured bucket, not a point to interpolate between); the step in
    /// progress ends where the data end.
    private func area(_ f: TimeFrame, lower: [Double], upper: [Double], sign: Double, color: String, label: String) -> String {
        guard zip(lower, upper).contains(where: { $1 > $0 }) else { return "" }
        func edges(_ i: Int) -> (Double, Double) {
            let start = series.start.addingTimeInterval(Double(i * series.stepSeconds))
            let covered = series.coveredSeconds(step: i)
            return (f.x(start), f.x(start.addingTimeInterval(covered)))
        }
        let drawn = (0..<series.steps).filter { series.coveredSeconds(step: $0) > 0 }
        var points: [String] = []
        for i in drawn {
            let (x0, x1) = edges(i)
            let yy = SVG.num(f.y(sign * upper[i]))
            points.append("\(SVG.num(x0)),\(yy)")
            points.append("\(SVG.num(x1)),\(yy)")
        }
        for i in drawn.reversed() {
            let (x0, x1) = edges(i)
            let yy = SVG.num(f.y(sign * lower[i]))
            points.append("\(SVG.num(x1)),\(yy)")
            points.append("\(SVG.num(x0)),\(yy)")
        }
        return "<polygon fill=\"\(color)\" fill-opacity=\"0.85\" points=\"\(points.joined(separator: " "))\"><title>\(SVG.escape(label))</title></polygon>\n"
    }

    /// Every category drawn (the same colour in and out), the shaded spans and the now line.
    private var legend: [LegendEntry] {
        var out = categories.map { LegendEntry(swatch: .box(SVG.color(category: $0), opacity: 0.85), name: $0) }
        if let end = series.dataEnd, end < series.end { out.append(LegendEntry(swatch: .line("#333"), name: "now (last step so far, at its rate)")) }
        return out + ChartSpan.legend(spans, from: series.start, to: series.end)
    }
}
