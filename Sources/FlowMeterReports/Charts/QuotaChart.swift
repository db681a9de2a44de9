import FlowMeterCore
import FlowMeterFormat
import FlowMeterAccounting
import Foundation

/// A quota's burn-down over its current period: the use so far (cumulative,
/// by the quota's rule and scope), the projection range to the period's end,
/// the limit, the projected exhaustion and Tor's soft/hard limit and wake-up
/// as markers, lower-bound spans shaded.
public struct QuotaChart: Sendable {
    public var status: QuotaStatus
    /// (instant, cumulative use) from the period start to now.
    public var usedCurve: [(Date, Double)]
    public var spans: [ChartSpan]
    public var id: String

    public init(status: QuotaStatus, usedCurve: [(Date, Double)], spans: [ChartSpan], id: String) {
        self.status = status; self.usedCurve = usedCurve; self.spans = spans; self.id = id
    }

    /// The use curve from stored buckets, one point per bucket start.
    public static func build(_ status: QuotaStatus, source: any UsageHistorySource, id: String) throws -> QuotaChart {
        let q = status.quota
        let period = status.forecast.usage.interval
        let now = status.forecast.now
        var read = 0.0, written = 0.0
        var curve: [(Date, Double)] = [(period.start, 0)]
        var pending: (Date, Double)? = nil
        for b in try source.buckets(from: period.start, to: now) where q.scope.includes(b) {
            let n = Double(q.scope.bytes(of: b))
            if b.direction == .inbound { read += n } else if b.direction == .outbound { written += n }
            let end = min(now, b.start.addingTimeInterval(Double(b.durationSeconds)))
            if let p = pending, p.0 != end { curve.append(p) }
            pending = (end, q.rule.bytes(read: read, written: written))
        }
        if let p = pending { curve.append(p) }
        let spans = try source.gaps(from: period.start, to: now).map { ChartSpan($0, reason: "lower bound") }
        return QuotaChart(status: status, usedCurve: curve, spans: spans, id: id)
    }

    public var markers: [ChartMarker] {
        var m: [ChartMarker] = []
        if let e = status.forecast.projection?.exhaustion { m.append(ChartMarker(at: e, label: "projected exhaustion", color: "#D55E00")) }
        if let t = status.tor?.current {
            if let s = t.predictedSoftHibernation { m.append(ChartMarker(at: s, label: "Tor soft limit", color: "#CC79A7")) }
            if let h = t.predictedHardHibernation { m.append(ChartMarker(at: h, label: "Tor hard limit", color: "#882255")) }
            if let w = t.wakeup?.wake { m.append(ChartMarker(at: w, label: "Tor wake-up", color: "#009E73")) }
        }
        return m
    }

    var units: ByteUnits { status.quota.units }

    public var title: String {
        let u = status.forecast.usage
        return "Quota \(status.quota.name): \(SVG.bytes(Double(u.used), units: units)) of \(SVG.bytes(Double(u.limit), units: units)) (\(String(format: "%.1f", u.fractionUsed * 100)) %)"
    }

    /// The value axis: the limit with a tenth above it, or the use so far
    /// if higher; a projection up to half again the limit fits too, a
    /// higher one ends at the top and the chart says where it would end.
    var axis: ByteAxis {
        let u = status.forecast.usage
        let limit = Double(u.limit)
        let projected = min(status.forecast.projection?.high ?? 0, limit > 0 ? 1.5 * limit : .infinity)
        return ByteAxis.covering(max(limit * 1.1, Double(u.used) * 1.05, projected * 1.05), units: units, maxSteps: 6)
    }

    public func svg() -> String {
        let u = status.forecast.usage
        let p = status.forecast.projection
        let limit = Double(u.limit)
        let axis = self.axis
        var f = TimeFrame(from: u.interval.start, to: u.interval.end, yMin: 0, yMax: axis.top)
        let rows = f.layOut(legend)
        var out = f.open(title: title, id: id)
        out += f.legend(rows)
        out += f.spans(spans)
        out += f.axes(axis)
        let now = status.forecast.now
        if let p {
            // The range: from today's use to [low, high] at the period's end.
            let band = [(now, Double(u.used)), (u.interval.end, p.high), (u.interval.end, p.low)]
                .map { "\(SVG.num(f.x($0.0))),\(SVG.num(f.y($0.1)))" }.joined(separator: " ")
            out += "<polygon class=\"projection-range\" points=\"\(band)\" fill=\"#56B4E9\" fill-opacity=\"0.3\"><title>projection range \(SVG.bytes(p.low, units: units))–\(SVG.bytes(p.high, units: units))</title></polygon>\n"
            out += "<line class=\"projection\" x1=\"\(SVG.num(f.x(now)))\" y1=\"\(SVG.num(f.y(Double(u.used))))\" x2=\"\(SVG.num(f.x(u.interval.end)))\" y2=\"\(SVG.num(f.y(p.endTotal)))\" stroke=\"#0072B2\" stroke-dasharray=\"6 3\"/>\n"
            if p.high > axis.top {
                out += "<text class=\"off-chart\" x=\"\(SVG.num(f.width - f.right))\" y=\"\(SVG.num(f.top + 10))\" font-size=\"10\" text-anchor=\"end\" fill=\"#0072B2\">range reaches \(SVG.bytes(p.high, units: units)) ↑</text>\n"
            }
        }
        let points = usedCurve.map { "\(SVG.num(f.x($0.0))),\(SVG.num(f.y($0.1)))" }.joined(separator: " ")
        out += "<polyline class=\"used\" points=\"\(points)\" fill=\"none\" stroke=\"#0072B2\" stroke-width=\"2\"/>\n"
        let ly = SVG.num(f.y(limit))
        out += "<line class=\"limit\" x1=\"\(f.left)\" x2=\"\(f.width - f.right)\" y1=\"\(ly)\" y2=\"\(ly)\" stroke=\"#D55E00\" stroke-width=\"1.5\"/>"
        out += "<text x=\"\(f.left + 4)\" y=\"\(SVG.num(f.y(limit) - 3))\" font-size=\"10\" fill=\"#D55E00\">limit \(SVG.bytes(limit, units: units))</text>\n"
        out += f.nowLine(now)
        out += f.markers(markers)
        return out + "</svg>\n"
    }

    /// Every series drawn, named.
    var legend: [LegendEntry] {
        var out = [LegendEntry(swatch: .line("#0072B2"), name: "used")]
        if status.forecast.projection != nil {
            out.append(LegendEntry(swatch: .dashed("#0072B2"), name: "projection"))
            out.append(LegendEntry(swatch: .box("#56B4E9", opacity: 0.3),
                                   name: "\(Int(QuotaForecaster.rangeCoverage * 100)) % range"))
        }
        out.append(LegendEntry(swatch: .line("#D55E00"), name: "limit"))
        out.append(LegendEntry(swatch: .line("#333"), name: "now"))
        let interval = status.forecast.usage.interval
        for m in markers where m.at >= interval.start && m.at <= interval.end {
            out.append(LegendEntry(swatch: .dashed(m.color), name: m.label))
        }
        return out + ChartSpan.legend(spans, from: interval.start, to: interval.end)
    }
}
