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

    /// Bytes (or bytes per second with `perSecond`) in binary units: the
    /// reports' one formatter, for values that may be fractional or projected.
    public static func bytes(_ v: Double, perSecond: Bool = false) -> String {
        let whole = v.isFinite ? UInt64(min(max(0, abs(v).rounded()), Double(UInt64.max / 2))) : 0
        let text = Format.bytes(whole)
        return perSecond ? text + "/s" : text
    }

    /// "2026-11-27 13:05" in UTC: the one time format of the charts.
    public static func time(_ d: Date, withDate: Bool = true) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = withDate ? "yyyy-MM-dd HH:mm" : "HH:mm"
        return f.string(from: d)
    }

    /// A "nice" upper bound (1, 2 or 5 × 10^n, in binary-friendly steps not needed here).
    static func niceCeiling(_ v: Double) -> Double {
        guard v > 0, v.isFinite else { return 1 }
        let p = pow(10, floor(log10(v)))
        for m in [1.0, 2, 5, 10] where m * p >= v { return m * p }
        return 10 * p
    }
}

/// A time span shaded on a chart: counts there are a lower bound (drops, a
/// capture gap, the agent stopped) or a surge.
public struct ChartSpan: Sendable, Equatable {
    public var interval: DateInterval
    public var reason: String
    public init(_ interval: DateInterval, reason: String) { self.interval = interval; self.reason = reason }
}

/// A vertical line at an instant (Tor's soft/hard limit, its wake-up, a
/// projected exhaustion).
public struct ChartMarker: Sendable, Equatable {
    public var at: Date
    public var label: String
    public var color: String
    public init(at: Date, label: String, color: String) { self.at = at; self.label = label; self.color = color }
}

/// The drawing area of a time chart and its mapping from (time, value) to
/// SVG coordinates.
struct TimeFrame {
    let width = 720.0, height = 240.0
    let left = 64.0, right = 12.0, top = 40.0, bottom = 26.0
    var from: Date
    var to: Date
    var yMin: Double
    var yMax: Double

    var plotWidth: Double { width - left - right }
    var plotHeight: Double { height - top - bottom }
    func x(_ d: Date) -> Double {
        let span = max(1, to.timeIntervalSince(from))
        return left + plotWidth * min(1, max(0, d.timeIntervalSince(from) / span))
    }
    func y(_ v: Double) -> Double {
        let span = yMax - yMin
        return top + plotHeight * (1 - (span > 0 ? (v - yMin) / span : 0))
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

    func spans(_ spans: [ChartSpan]) -> String {
        var out = ""
        for s in spans where s.interval.end > from && s.interval.start < to {
            let x0 = x(s.interval.start), x1 = max(x(s.interval.end), x0 + 1.5)
            let fill = s.reason == "surge" ? "#F0E442" : "#D55E00"
            out += "<rect class=\"span\" data-reason=\"\(SVG.escape(s.reason))\" x=\"\(SVG.num(x0))\" y=\"\(top)\" width=\"\(SVG.num(x1 - x0))\" height=\"\(SVG.num(plotHeight))\" fill=\"\(fill)\" fill-opacity=\"0.18\"><title>\(SVG.escape(s.reason)): counts here are a lower bound</title></rect>\n"
        }
        return out
    }

    func markers(_ markers: [ChartMarker]) -> String {
        var out = ""
        for (i, m) in markers.enumerated() where m.at >= from && m.at <= to {
            let mx = SVG.num(x(m.at))
            out += "<line class=\"marker\" x1=\"\(mx)\" x2=\"\(mx)\" y1=\"\(top)\" y2=\"\(SVG.num(top + plotHeight))\" stroke=\"\(m.color)\" stroke-dasharray=\"4 3\"/>"
            out += "<text x=\"\(mx)\" y=\"\(SVG.num(top + 10 + Double(i % 3) * 11))\" font-size=\"10\" fill=\"\(m.color)\" text-anchor=\"\(x(m.at) > width - 140 ? "end" : "start")\"> \(SVG.escape(m.label))</text>\n"
        }
        return out
    }

    /// Y grid with labels (`format` per value) and the time axis.
    func axes(yTicks: [Double], format: (Double) -> String, timeWithDate: Bool) -> String {
        var out = ""
        for v in yTicks {
            let yy = SVG.num(y(v))
            out += "<line x1=\"\(left)\" x2=\"\(width - right)\" y1=\"\(yy)\" y2=\"\(yy)\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(left - 4)\" y=\"\(yy)\" font-size=\"10\" text-anchor=\"end\" dominant-baseline=\"middle\">\(SVG.escape(format(v)))</text>\n"
        }
        for i in 0...4 {
            let t = from.addingTimeInterval(to.timeIntervalSince(from) * Double(i) / 4)
            let anchor = i == 0 ? "start" : (i == 4 ? "end" : "middle")
            out += "<text x=\"\(SVG.num(x(t)))\" y=\"\(SVG.num(height - 8))\" font-size=\"10\" text-anchor=\"\(anchor)\">\(SVG.time(t, withDate: timeWithDate))</text>\n"
        }
        return out
    }
}
