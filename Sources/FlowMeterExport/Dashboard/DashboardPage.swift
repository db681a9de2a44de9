import FlowMeterCore
import FlowMeterAccounting
import FlowMeterReports
import Foundation

/// The page at `/`: one HTML document with the charts inline as SVG, a
/// stylesheet inline, no script, and no URL of any other host, so it works
/// on a machine with no route to anywhere and leaks nothing to a CDN. It
/// reloads itself every `refreshSeconds`. Served only to clients the access
/// policy admits (loopback by default): it must never become a public
/// bandwidth page.
public struct DashboardPage: Sendable {
    public var reading: AgentReading
    /// The last hour, one-minute steps (`LiveHistory`).
    public var live: (series: [TrafficSeries], spans: [ChartSpan])
    /// The last 30 days from the store, or nil without one.
    public var history: (series: [TrafficSeries], spans: [ChartSpan])?
    public var quotas: [QuotaChart]
    public var rates: [LiveHistory.Key: Double]
    /// The three answers the page opens with, before any chart.
    public var glance: Glance? = nil
    public var refreshSeconds = 10

    public init(reading: AgentReading, live: (series: [TrafficSeries], spans: [ChartSpan]),
                history: (series: [TrafficSeries], spans: [ChartSpan])?, quotas: [QuotaChart],
                rates: [LiveHistory.Key: Double]) {
        self.reading = reading; self.live = live; self.history = history; self.quotas = quotas; self.rates = rates
    }

    public func html() -> String {
        let now = Date(timeIntervalSince1970: reading.nowSeconds)
        var out = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta http-equiv="refresh" content="\(refreshSeconds)">
        <meta name="referrer" content="no-referrer">
        <title>FlowMeter</title>
        <style>\(Self.style)</style></head><body>
        <header><h1>FlowMeter</h1><p class="meta">version \(SVG.escape(reading.version)) · read \(SVG.time(now)) UTC · \
        refreshes every \(refreshSeconds) s · for this host's operator only, never publish it</p></header>\n
        """
        if reading.isLowerBound {
            out += "<p class=\"warn\" id=\"lower-bound\">Counts are a lower bound since the start: \(SVG.escape(reading.lowerBoundReasons.joined(separator: ", "))) (shaded on the charts).</p>\n"
        }
        out += glance?.html() ?? ""
        out += quotaSection()
        if !reading.cells.relays.isEmpty {
            out += "<p class=\"meta\">Per relay below: bytes since the agent started (\(SVG.time(Date(timeIntervalSince1970: reading.startTimeSeconds))) UTC) and the rate over the last minute.</p>\n"
        }
        let table = reading.cells
        for (i, relay) in table.relays.enumerated() {
            out += relaySection(relay, index: i, table: table)
        }
        if table.relays.isEmpty { out += "<p>No traffic counted yet.</p>\n" }
        return out + "</body></html>\n"
    }

    private func quotaSection() -> String {
        guard !quotas.isEmpty else { return "" }
        var out = "<section id=\"quotas\"><h2>Quotas</h2>\n"
        for q in quotas {
            let u = q.status.forecast.usage, p = q.status.forecast.projection, units = q.status.quota.units
            let name = SVG.escape(q.status.quota.name)
            out += "<div class=\"quota\" data-quota=\"\(name)\"><p><b>\(name)</b>: "
            out += "<span class=\"quota-used\">\(SVG.bytes(Double(u.used), units: units))</span> of <span class=\"quota-limit\">\(SVG.bytes(Double(u.limit), units: units))</span> "
            out += "(<span class=\"quota-percent\">\(String(format: "%.1f", u.fractionUsed * 100)) %</span>)"
            out += " · period \(SVG.time(u.interval.start)) to \(SVG.time(u.interval.end)) UTC"
            if let p {
                out += " · projected \(SVG.bytes(p.low, units: units))–\(SVG.bytes(p.high, units: units))"
                out += p.exhaustion.map { " · <span class=\"exhaustion\">runs out \(SVG.time($0)) UTC</span>" } ?? " · not projected to run out"
            } else {
                out += " · too little history to project"
            }
            out += " · <span class=\"quota-history\">\(SVG.escape(q.status.forecast.historyDescription))</span>"
            if let source = q.status.intervalSource {
                out += " · <span class=\"interval-source\" data-interval-source=\"\(source.rawValue)\">interval from \(source.phrase)</span>"
            }
            if let t = q.status.tor?.current {
                let parts = [t.predictedSoftHibernation.map { "soft limit \(SVG.time($0))" },
                             t.predictedHardHibernation.map { "hard limit \(SVG.time($0))" },
                             t.wakeup.map { "wake-up \(SVG.time($0.wake))" }].compactMap { $0 }
                if !parts.isEmpty { out += " · Tor: " + parts.joined(separator: ", ") + " UTC" }
            }
            out += "</p>\n" + q.svg() + "</div>\n"
        }
        return out + "</section>\n"
    }

    private func relaySection(_ relay: String, index: Int, table: CategoryTable) -> String {
        let name = SVG.escape(relay)
        var out = "<section class=\"relay\" data-relay=\"\(name)\"><h2 class=\"relay-name\">\(name)</h2>\n"
        out += "<table><tr><th>category</th><th>in since start</th><th>out since start</th><th>in now</th><th>out now</th></tr>\n"
        for c in Category.allCases {
            let bin = table.value(relay: index, c, .inbound, .bytes), bout = table.value(relay: index, c, .outbound, .bytes)
            guard bin + bout > 0 else { continue }
            let rin = rates[.init(relay: relay, category: c, direction: .inbound)] ?? 0
            let rout = rates[.init(relay: relay, category: c, direction: .outbound)] ?? 0
            out += "<tr data-category=\"\(c.label)\"><td><i style=\"background:\(SVG.color(category: c.label))\"></i>\(c.label)</td>"
            out += "<td class=\"bytes-in\" data-bytes=\"\(bin)\">\(SVG.bytes(Double(bin)))</td><td class=\"bytes-out\" data-bytes=\"\(bout)\">\(SVG.bytes(Double(bout)))</td>"
            out += "<td>\(SVG.bytes(rin, perSecond: true))</td><td>\(SVG.bytes(rout, perSecond: true))</td></tr>\n"
        }
        out += "</table>\n"
        var active: UInt64 = 0, peak: UInt64 = 0, unanswered: UInt64 = 0
        for c in Category.allCases {
            active += reading.connectionValue(relay: relay, c, .active)
            peak += reading.connectionValue(relay: relay, c, .peak)
            unanswered += reading.connectionValue(relay: relay, c, .unanswered)
        }
        out += "<p class=\"connections\">connections: <span class=\"active\">\(active)</span> active, "
        out += "<span class=\"peak\">\(peak)</span> peak, <span class=\"unanswered\">\(unanswered)</span> unanswered attempts</p>\n"
        if let s = live.series.first(where: { $0.relay == relay }) {
            out += TrafficChart(title: "\(relay): last hour (1-minute steps)", series: s, spans: live.spans, id: "live-\(index)").svg()
        }
        if let h = history, let s = h.series.first(where: { $0.relay == relay }) {
            let step = s.stepSeconds >= 86_400 ? "daily" : "hourly"
            out += TrafficChart(title: "\(relay): last 30 days (\(step), stored)", series: s, spans: h.spans, id: "history-\(index)").svg()
        }
        return out + "</section>\n"
    }

    static let style = """
    body{font-family:sans-serif;margin:0 auto;max-width:960px;padding:8px;color:#222}
    h1{font-size:1.3em;margin:4px 0}h2{font-size:1.1em;margin:16px 0 4px}
    .meta{color:#666;font-size:.85em;margin:0}.warn{background:#fdecea;padding:6px;border-left:4px solid #D55E00}
    table{border-collapse:collapse;font-size:.9em;width:100%;max-width:640px}
    td,th{padding:2px 6px;text-align:right;border-bottom:1px solid #eee}td:first-child,th:first-child{text-align:left}
    td i{display:inline-block;width:9px;height:9px;margin-right:4px}td{white-space:nowrap}th{font-weight:normal;color:#555}
    td:first-child{white-space:normal;overflow-wrap:anywhere}
    tr.total td{font-weight:bold;border-bottom:2px solid #ccc}
    #glance{border:1px solid #ddd;padding:6px 10px;margin:8px 0}#glance h2{margin:4px 0}
    #glance ul{list-style:none;padding:0;margin:6px 0}#glance li{margin:3px 0;overflow-wrap:anywhere}
    .verdict{font-weight:bold}.verdict-lasts{color:#007a4d}.verdict-may_run_out{color:#9a6100}
    .verdict-runs_out,.verdict-over{color:#b03000}.tor-state{font-weight:bold}.quota p{overflow-wrap:anywhere}
    @media (max-width:480px){table{font-size:.75em}td,th{padding:2px}body{padding:4px}#glance{padding:4px}}
    svg.chart{display:block;max-width:100%;margin:6px 0;border:1px solid #eee}
    """
}
