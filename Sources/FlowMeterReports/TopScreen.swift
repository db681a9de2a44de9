import FlowMeterFormat
import FlowMeterAccounting
import Foundation

/// What `flowmeter top` shows on a terminal of `width` × `height`: the
/// three answers first (the agent's `glance`), then rates per relay and
/// category averaged over the last `smoothingSeconds`, connections, and a
/// footer naming the keys and symbols. When the screen is short, lines go
/// in a fixed order (quota details, connections, spacing, then rate rows
/// from the bottom, with a note); when it is narrow, columns go first.
/// Every line passes `TopView.fit` or `TopView.row`: printable, at most `width`.
public struct TopScreen: Sendable {
    public enum Sort: Int, CaseIterable, Sendable {
        case relay, inRate, outRate, inTotal, outTotal
        public var name: String { ["relay order", "in/s", "out/s", "in total", "out total"][rawValue] }
    }
    public var sort: Sort = .relay
    /// One relay's rows only; nil for every relay.
    public var relayFilter: String? = nil
    public var showsHelp = false
    public var width = 80
    public var height = Int.max
    /// Rates are the change over this many seconds, so a category that
    /// sends in bursts does not read 0 B/s while its total grows.
    public var smoothingSeconds = 10.0
    public let agent: String

    struct Sample: Sendable { var at: Double; var bytes: [TopView.CellKey: UInt64] }
    /// Oldest first: the newest document's and those within the window before it.
    private var samples: [Sample] = []
    private var latest: TopView.Status? = nil

    public init(agent: String) { self.agent = agent }

    /// Takes a new document; keeps the samples the rates need.
    public mutating func observe(_ s: TopView.Status) {
        latest = s
        guard let at = s.readSeconds else { samples = []; return }
        if let last = samples.last, at < last.at { samples = [] }  // another agent, or its clock stepped back
        samples.append(Sample(at: at, bytes: TopView.index(s)))
        // The newest sample at least `smoothingSeconds` old stays as the base.
        while samples.count > 2 && at - samples[1].at >= smoothingSeconds { samples.removeFirst() }
    }

    /// One key press; true when it asks to quit. Any key closes the help.
    public mutating func press(_ key: UInt8) -> Bool {
        switch key {
        case UInt8(ascii: "q"), UInt8(ascii: "Q"), 3: return true
        case _ where showsHelp: showsHelp = false
        case UInt8(ascii: "h"), UInt8(ascii: "?"): showsHelp = true
        case UInt8(ascii: "s"): sort = Sort(rawValue: (sort.rawValue + 1) % Sort.allCases.count)!
        case UInt8(ascii: "r"):
            let relays = latest.map(TopView.relays) ?? []
            if let current = relayFilter, let i = relays.firstIndex(of: current) {
                relayFilter = i + 1 < relays.count ? relays[i + 1] : nil
            } else {
                relayFilter = relays.first
            }
        default: break
        }
        return false
    }

    /// The seconds the rates are measured over, or nil before two readings.
    var rateSeconds: Double? {
        guard let first = samples.first, let last = samples.last, last.at > first.at else { return nil }
        return last.at - first.at
    }

    /// Bytes per second of one cell over the window; nil when not measured
    /// yet. A cell the document leaves out has counted nothing.
    func rate(_ key: TopView.CellKey) -> Double? {
        guard let seconds = rateSeconds else { return nil }
        let now = samples.last?.bytes[key] ?? 0, before = samples.first?.bytes[key] ?? 0
        return Double(now >= before ? now - before : 0) / seconds
    }

    public func lines() -> [String] {
        guard let s = latest else { return [TopView.fit("flowmeter top  \(agent): waiting for the first reading", width)] }
        if showsHelp { return Array(helpLines().prefix(height)) }
        var out: [Line] = [Line(title(s), 0)]
        out += healthLines(s)
        out += answerLines(s)
        out.append(Line("", 3))
        out += rateLines(s)
        let connections = TopView.connectionLines(s, relays: shownRelays(s), width: width)
        out += connections.map { Line($0, $0.isEmpty ? 3 : 5) }
        out.append(Line(footer(out.map(\.text)), 0))
        return Line.fit(out, height: height, width: width)
    }

    private func title(_ s: TopView.Status) -> String {
        let clock = String(s.readAt.prefix(19)).replacingOccurrences(of: "T", with: " ")
        return TopView.fit("flowmeter top  \(agent)  \(clock) UTC", width)
    }

    private func healthLines(_ s: TopView.Status) -> [Line] {
        var out: [Line] = []
        if let ifs = s.interfaces, !ifs.isEmpty {
            let down = ifs.contains { !$0.up }
            out.append(Line(TopView.fit("capture: " + ifs.prefix(TopView.maxRows).map { "\($0.name) \($0.up ? "up" : "DOWN")" }
                .joined(separator: ", "), width), down ? 0 : 5))
        }
        if s.lowerBound == true {
            out.append(Line(TopView.fit("≥ lower bound since the start: " + (s.lowerBoundReasons ?? []).prefix(TopView.maxRows)
                .joined(separator: ", "), width), 0))
        }
        return out
    }

    /// Today's and the period's traffic, each quota's verdict, Tor's state:
    /// from the agent's `glance`, else the quota lines older agents send.
    private func answerLines(_ s: TopView.Status) -> [Line] {
        guard let g = s.glance?.value else {
            return TopView.quotaLines(s, width: width).map { Line($0, $0.isEmpty ? 3 : $0.hasPrefix("quota ") ? 0 : 4) }
        }
        let since = Format.parseISO8601(g.periodStart).map { SVG.time($0) } ?? g.periodStart
        var out = [Line(TopView.fit("today \(g.dayName) \(g.timeZone) · period: \(g.period) since \(since)", width), 0)]
        let periods = width >= 60
        let header = ["relay", "today in", "today out"] + (periods ? ["period in", "period out"] : [])
        out.append(Line(Self.table(header), 0))
        for t in g.traffic.prefix(TopView.maxRows) where relayFilter == nil || t.relay == "all" || t.relay == relayFilter {
            let mark = t.lowerBound ? "≥" : ""
            let figures = [t.todayInBytes, t.todayOutBytes] + (periods ? [t.periodInBytes, t.periodOutBytes] : [])
            out.append(Line(Self.table([t.relay == "all" ? "total" : t.relay] + figures.map { mark + Format.bytes($0) }), t.relay == "all" ? 0 : 1))
        }
        // Why "≥", as `report` and the dashboard say it beside the figures.
        if let reason = g.traffic.lazy.compactMap(\.lowerBoundReason).first {
            out.append(Line(TopView.fit("  ≥ a lower bound: \(reason)", width), 4))
        }
        for q in g.quotas.prefix(TopView.maxRows) {
            let share = q.limitBytes == 0 ? 0 : Double(q.usedBytes) / Double(q.limitBytes) * 100
            out.append(Line(TopView.fit("quota \(q.name): \(q.verdictPhrase), \(String(format: "%.1f", share)) % used", width), 0))
            var figures = "  \(Format.bytes(q.usedBytes, units: q.units)) of \(Format.bytes(q.limitBytes, units: q.units))"
            if let lo = q.projectedLowBytes, let hi = q.projectedHighBytes {
                figures += "; projected \(Glance.range(lo, hi, units: q.units)) by the period's end"
            }
            out.append(Line(TopView.fit(figures, width), 4))
            out.append(Line(TopView.fit("  " + q.history + (q.intervalSource.map { "; interval from \(TorIntervalSource(rawValue: $0)?.phrase ?? $0)" } ?? ""), width), 4))
        }
        if g.tor.isEmpty { out.append(Line(TopView.fit("Tor: no relay with accounting (AccountingMax) known", width), 0)) }
        for t in g.tor.prefix(TopView.maxRows) where relayFilter == nil || t.relay == relayFilter {
            let line = "Tor \(t.relay): \(t.phrase)", sourced = line + " (\(t.sourcePhrase))"
            out.append(Line(TopView.fit(Format.printable(sourced).count <= width ? sourced : line, width), 0))
        }
        return out
    }

    private func shownRelays(_ s: TopView.Status) -> [String] {
        TopView.relays(s).filter { relayFilter == nil || $0 == relayFilter }
    }

    /// The rates table: relay, category, in/s, out/s, and the totals since
    /// the agent started when the width allows (columns go before rows).
    private func rateLines(_ s: TopView.Status) -> [Line] {
        // relay 12 + category 12, then 13 a figure: columns go before rows, and
        // on a screen too narrow for even those the line is cut, never wrapped.
        let figureColumns = width >= 76 ? 4 : min(2, max(0, (width - 24) / 13))
        let totals = figureColumns == 4
        var header = Array((["relay", "category", "in/s", "out/s"] + (totals ? ["in total", "out total"] : [])).prefix(2 + figureColumns))
        if sort != .relay && sort.rawValue + 1 < header.count { header[sort.rawValue + 1] += "▼" }
        var out = [Line(TopView.fit(TopView.row(header), width), 0, rate: true)]
        let now = TopView.index(s)
        var rows: [(relay: String, category: String, values: [Double?])] = []
        var seen = Set<TopView.CellKey>()
        var shown = 0
        for c in s.categories where (relayFilter == nil || c.relay == relayFilter)
            && seen.insert(TopView.CellKey(c.relay, c.category, "")).inserted {
            shown += 1
            guard shown <= TopView.maxRows else { continue }
            let keys = ["in", "out"].map { TopView.CellKey(c.relay, c.category, $0) }
            rows.append((c.relay, c.category, keys.map(rate) + keys.map { key in Double(now[key] ?? 0) }))
        }
        if sort != .relay {
            let column = sort.rawValue - 1
            rows = rows.enumerated().sorted { ($0.element.values[column] ?? -1, -$0.offset) > ($1.element.values[column] ?? -1, -$1.offset) }.map(\.element)
        }
        for (i, r) in rows.enumerated() {
            let figures = r.values.enumerated().map { j, v in v.map { Format.bytes($0, perSecond: j < 2) } ?? "n/a" }
            out.append(Line(TopView.fit(TopView.row([r.relay, r.category] + figures.prefix(figureColumns)), width), i < 3 ? 1 : 2, rate: true))
        }
        if shown > TopView.maxRows {
            out.append(Line(TopView.fit("… and \(shown - TopView.maxRows) more relay/category rows not shown", width), 0))
        }
        return out
    }

    /// relay 12, then numbers 12 each, right-aligned.
    static func table(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in Format.cell(c, 12, right: i > 0) }.joined()
    }

    /// The keys, then what the symbols on this screen mean, as far as the width allows.
    private func footer(_ shown: [String]) -> String {
        var parts = ["h help", "s sort: \(sort.name)", "r relay: \(relayFilter ?? "all")", "q quit"]
        let text = shown.joined()
        if text.contains(" n/a") { parts.append("n/a not measured yet") }
        if text.contains("≥") { parts.append("≥ at least") }
        if let seconds = rateSeconds { parts.append("rates over \(Int(seconds.rounded())) s") }
        var out = parts[0]
        for p in parts.dropFirst() where out.count + 3 + p.count <= width { out += " · " + p }
        return TopView.fit(out, width)
    }

    func helpLines() -> [String] {
        [
            "flowmeter top: keys and symbols",
            "",
            "  h, ?   this help (any key returns)",
            "  s      sort the rates: relay order, in/s, out/s, in total, out total",
            "  r      one relay at a time, then every relay again",
            "  q      quit (also Q and Ctrl-C)",
            "",
            "  today, period  wire bytes in every category, from the agent's store:",
            "                 today in its zone; the period of its first host-wide quota",
            "  in/s, out/s    bytes per second over the last \(Int(smoothingSeconds)) s",
            "  in, out total  bytes since the agent started",
            "  n/a            not measured yet: a rate needs two readings",
            "  ≥              at least: drops or a gap make the count a lower bound",
            "  ▼              the column the rates are sorted by",
            "  …              text cut to fit the screen",
            "  KiB, MiB, GiB  1024-based; a quota written in SI (1TB-SI) shows kB, MB, GB, TB",
            "",
            "any key returns",
        ].map { TopView.fit($0, width) }
    }
}

/// A screen line and how soon it goes when the screen is short: 0 stays,
/// then 5 (connections, capture), 4 (quota details), 3 (spacing), 2 and 1
/// (rate rows, from the bottom; `rate` marks the table, header included,
/// so the note on what was left out follows its last row).
struct Line: Sendable {
    var text: String
    var priority: Int
    var rate = false
    init(_ text: String, _ priority: Int, rate: Bool = false) { self.text = text; self.priority = priority; self.rate = rate }

    static func fit(_ lines: [Line], height: Int, width: Int) -> [String] {
        var kept = lines
        var droppedRates = 0
        for priority in stride(from: 5, through: 1, by: -1) {
            while kept.count + (droppedRates > 0 ? 1 : 0) > height, let i = kept.lastIndex(where: { $0.priority == priority }) {
                if kept[i].rate { droppedRates += 1 }
                kept.remove(at: i)
            }
        }
        if droppedRates > 0, let last = kept.lastIndex(where: \.rate) {
            kept.insert(Line(Format.printable("… \(droppedRates) more rows: r shows one relay, s sorts", limit: width), 0), at: last + 1)
        }
        return Array(kept.prefix(height).map(\.text))
    }
}
