import FlowMeterFormat
import Foundation

/// Charts as self-contained SVG text: drawn on the server (or by `report
/// --svg`), so the dashboard needs no script library and loads nothing from
/// another host. Every chart has a `viewBox` and no fixed size, so it scales
/// to the width of a phone. Text is escaped; no value from the network is
/// ever placed in an attribute unescaped.
public enum SVG {
    /// Category colours, fixed so a category looks the same in every chart
    /// (Okabe–Ito, readable by colour-blind people).
    public static func color(category: String) -> String {
        switch category {
        case "or_inbound": return "#0072B2"
        case "or_outbound": return "#56B4E9"
        case "dir": return "#009E73"
        case "exit": return "#E69F00"
        case "dns": return "#CC79A7"
        case "other": return "#999999"
        case "non_ip": return "#555555"
        default: return "#D55E00"
        }
    }

    public static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    static func num(_ v: Double) -> String { String(format: "%.1f", v.isFinite ? v : 0) }

    /// Bytes (or bytes per second with `perSecond`) for a person: the
    /// reports' one formatter (`Format.bytes`), for values that may be
    /// fractional or projected.
    public static func bytes(_ v: Double, units: ByteUnits = .binary, perSecond: Bool = false) -> String {
        Format.bytes(abs(v), units: units, perSecond: perSecond)
    }

    /// "2026-11-27 13:05" in UTC: the one time format of the charts.
    public static func time(_ d: Date, withDate: Bool = true) -> String {
        time(d, format: withDate ? "yyyy-MM-dd HH:mm" : "HH:mm")
    }

    /// `d` in UTC with a `DateFormatter` pattern.
    static func time(_ d: Date, format: String) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = format
        return f.string(from: d)
    }
}

/// A time span shaded on a chart: counts there are a lower bound (drops, a
/// capture gap, the agent stopped) or a surge.
public struct ChartSpan: Sendable, Equatable {
    public var interval: DateInterval
    public var reason: String
    public init(_ interval: DateInterval, reason: String) { self.interval = interval; self.reason = reason }

    /// Surges yellow, every lower bound orange.
    static func color(_ reason: String) -> String { reason == "surge" ? "#F0E442" : "#D55E00" }

    /// One legend entry per kind of span drawn on [from, to).
    static func legend(_ spans: [ChartSpan], from: Date, to: Date) -> [LegendEntry] {
        var seen: [String] = []
        for s in spans where s.interval.end > from && s.interval.start < to {
            let name = s.reason == "surge" ? "surge" : "lower bound"
            if !seen.contains(name) { seen.append(name) }
        }
        return seen.map { LegendEntry(swatch: .box(color($0 == "surge" ? "surge" : "lower bound"), opacity: 0.3), name: "shaded: \($0)") }
    }
}

/// A vertical line at an instant (Tor's soft/hard limit, its wake-up, a
/// projected exhaustion).
public struct ChartMarker: Sendable, Equatable {
    public var at: Date
    public var label: String
    public var color: String
    public init(at: Date, label: String, color: String) { self.at = at; self.label = label; self.color = color }
}

/// One entry of a chart's legend: a swatch (filled box, line or dashed
/// line) and the name of the series it stands for.
struct LegendEntry: Sendable {
    enum Swatch: Sendable { case box(String, opacity: Double), line(String), dashed(String) }
    var swatch: Swatch
    var name: String
    var width: Double { 22 + Double(name.count) * 6 }
}

/// The drawing area of a time chart and its mapping from (time, value) to
/// SVG coordinates. The title is at the top, the legend under it (one or
/// two rows), then the plot; time labels at the bottom, in UTC.
struct TimeFrame {
    let width = 720.0, height = 240.0
    let left = 64.0, right = 12.0, bottom = 26.0
    var top = 40.0
    var from: Date
    var to: Date
    var yMin: Double
    var yMax: Double

    init(from: Date, to: Date, yMin: Double, yMax: Double) {
        self.from = from; self.to = to; self.yMin = yMin; self.yMax = yMax
    }

    var plotWidth: Double { width - left - right }
    var plotHeight: Double { height - top - bottom }
    func x(_ d: Date) -> Double {
        let span = max(1, to.timeIntervalSince(from))
        return left + plotWidth * min(1, max(0, d.timeIntervalSince(from) / span))
    }
    /// The value's height, clamped to the plot (a projection beyond the
    /// axis' top ends at its edge; the chart says so in words).
    func y(_ v: Double) -> Double {
        let span = yMax - yMin
        let f = span > 0 ? (v - yMin) / span : 0
        return top + plotHeight * (1 - min(1, max(0, f)))
    }

    /// The legend laid out in rows within the width; makes room for it.
    mutating func layOut(_ legend: [LegendEntry]) -> [[LegendEntry]] {
        var rows: [[LegendEntry]] = [[]]
        var x = left
        for e in legend {
            if x + e.width > width - right && !rows[rows.count - 1].isEmpty { rows.append([]); x = left }
            rows[rows.count - 1].append(e)
            x += e.width
        }
        top = 40 + 12 * Double(rows.count - 1)
        return rows
    }

    func open(title: String, id: String) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(Int(width)) \(Int(height))" role="img" \
        aria-labelledby="\(id)-t" class="chart" id="\(id)" style="width:100%;height:auto;font-family:sans-serif">
        <title id="\(id)-t">\(SVG.escape(title))</title>
        <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="#fff"/>
        <text x="\(left)" y="16" font-size="13" font-weight="bold">\(SVG.escape(title))</text>\n
        """
    }

    func legend(_ rows: [[LegendEntry]]) -> String {
        var out = "<g class=\"legend\">"
        for (r, row) in rows.enumerated() {
            var x = left
            let y = 27 + 12 * Double(r)
            for e in row {
                switch e.swatch {
                case .box(let c, let o):
                    out += "<rect x=\"\(SVG.num(x))\" y=\"\(SVG.num(y))\" width=\"12\" height=\"8\" fill=\"\(c)\" fill-opacity=\"\(o)\"/>"
                case .line(let c):
                    out += "<line x1=\"\(SVG.num(x))\" x2=\"\(SVG.num(x + 12))\" y1=\"\(SVG.num(y + 4))\" y2=\"\(SVG.num(y + 4))\" stroke=\"\(c)\" stroke-width=\"2\"/>"
                case .dashed(let c):
                    out += "<line x1=\"\(SVG.num(x))\" x2=\"\(SVG.num(x + 12))\" y1=\"\(SVG.num(y + 4))\" y2=\"\(SVG.num(y + 4))\" stroke=\"\(c)\" stroke-width=\"1.5\" stroke-dasharray=\"3 2\"/>"
                }
                out += "<text class=\"legend-name\" x=\"\(SVG.num(x + 15))\" y=\"\(SVG.num(y + 8))\" font-size=\"10\">\(SVG.escape(e.name))</text>"
                x += e.width
            }
        }
        return out + "</g>\n"
    }

    func spans(_ spans: [ChartSpan]) -> String {
        var out = ""
        for s in spans where s.interval.end > from && s.interval.start < to {
            let x0 = x(s.interval.start), x1 = max(x(s.interval.end), x0 + 1.5)
            out += "<rect class=\"span\" data-reason=\"\(SVG.escape(s.reason))\" x=\"\(SVG.num(x0))\" y=\"\(top)\" width=\"\(SVG.num(x1 - x0))\" height=\"\(SVG.num(plotHeight))\" fill=\"\(ChartSpan.color(s.reason))\" fill-opacity=\"0.18\"><title>\(SVG.escape(s.reason)) \(SVG.time(s.interval.start))–\(SVG.time(s.interval.end)) UTC: counts here are a lower bound</title></rect>\n"
        }
        return out
    }

    /// Vertical lines at instants, each labelled at its top (labels of
    /// neighbours are staggered so they do not overprint).
    func markers(_ markers: [ChartMarker]) -> String {
        var out = ""
        for (i, m) in markers.enumerated() where m.at >= from && m.at <= to {
            let mx = SVG.num(x(m.at))
            out += "<line class=\"marker\" data-marker=\"\(SVG.escape(m.label))\" x1=\"\(mx)\" x2=\"\(mx)\" y1=\"\(top)\" y2=\"\(SVG.num(top + plotHeight))\" stroke=\"\(m.color)\" stroke-dasharray=\"4 3\"/>"
            out += "<text x=\"\(mx)\" y=\"\(SVG.num(top + 10 + Double(i % 3) * 11))\" font-size=\"10\" fill=\"\(m.color)\" text-anchor=\"\(x(m.at) > width - 140 ? "end" : "start")\"> \(SVG.escape(m.label)) </text>\n"
        }
        return out
    }

    /// Value grid and labels at `axis`' ticks (both sides of zero when
    /// `mirrored`: in above, out below), and round instants on the time axis.
    func axes(_ axis: ByteAxis, mirrored: Bool = false) -> String {
        var out = ""
        var values = axis.ticks
        if mirrored { values = values.dropFirst().reversed().map { -$0 } + values }
        for v in values {
            let yy = SVG.num(y(v))
            out += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(yy)\" y2=\"\(yy)\" stroke=\"#ddd\"/>"
            out += "<text class=\"tick\" x=\"\(left - 4)\" y=\"\(yy)\" font-size=\"10\" text-anchor=\"end\" dominant-baseline=\"middle\">\(SVG.escape(axis.label(v)))</text>\n"
        }
        let time = TimeAxis(from: from, to: to)
        let span = to.timeIntervalSince(from)
        for t in time.ticks {
            let tx = x(t)
            let anchor = tx < left + 30 ? "start" : (tx > width - right - 30 ? "end" : "middle")
            out += "<line x1=\"\(SVG.num(tx))\" x2=\"\(SVG.num(tx))\" y1=\"\(SVG.num(top + plotHeight))\" y2=\"\(SVG.num(top + plotHeight + 3))\" stroke=\"#999\"/>"
            out += "<text class=\"time-tick\" x=\"\(SVG.num(tx))\" y=\"\(SVG.num(height - 8))\" font-size=\"10\" text-anchor=\"\(anchor)\">\(time.label(t, spanSeconds: span))</text>\n"
        }
        out += "<text x=\"\(SVG.num(width - right))\" y=\"\(SVG.num(height - 8))\" font-size=\"9\" fill=\"#666\" text-anchor=\"end\" dy=\"-11\">UTC</text>\n"
        return out
    }

    /// The labelled line at the instant the data end (`now`).
    func nowLine(_ at: Date) -> String {
        guard at >= from && at <= to else { return "" }
        let nx = SVG.num(x(at))
        return "<line class=\"now\" x1=\"\(nx)\" x2=\"\(nx)\" y1=\"\(top)\" y2=\"\(SVG.num(top + plotHeight))\" stroke=\"#333\" stroke-width=\"1\"/>"
            + "<text class=\"now-label\" x=\"\(nx)\" y=\"\(SVG.num(top + plotHeight - 3))\" font-size=\"10\" fill=\"#333\" text-anchor=\"\(x(at) > width - 60 ? "end" : "start")\"> now \(SVG.time(at, withDate: false)) </text>\n"
    }
}
