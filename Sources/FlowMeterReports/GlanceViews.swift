import FlowMeterFormat
import FlowMeterAccounting
import Foundation

/// The glance in words: the same sentences in `report`, `top` and the
/// dashboard, so the three answers read alike everywhere.
extension Glance {
    /// "2026-11-24 13:00 UTC" from an ISO-8601 instant (the text as given
    /// if it is not one).
    static func when(_ iso: String) -> String {
        guard let d = Format.parseISO8601(iso) else { return iso }
        return SVG.time(d) + " UTC"
    }

    /// The period's heading: "quota provider, 2026-11-01 00:00 to 2026-12-01 00:00 UTC".
    public var periodPhrase: String {
        let start = Format.parseISO8601(periodStart).map { SVG.time($0) } ?? periodStart
        return "\(period), \(start) to \(Self.when(periodEnd))"
    }

    /// Today's date in the glance's zone: "2026-11-27".
    public var dayName: String {
        guard let d = Format.parseISO8601(dayStart) else { return dayStart }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd"
        return f.string(from: d)
    }

    /// "today (2026-11-27, Europe/Berlin)".
    public var dayPhrase: String { "today (\(dayName), \(timeZone))" }

    /// The traffic answer as text: a heading, then one row per label
    /// (the host's total first). `≥` marks a lower bound.
    public func trafficLines(relayWidth: Int = 12) -> [String] {
        func pad(_ s: String, _ n: Int, right: Bool) -> String { Format.cell(s, n, right: right) }
        var out = ["Traffic, wire bytes in every category: \(dayPhrase)", "  and this period: \(periodPhrase)"]
        if let since = countsSince { out.append("  counted since \(Self.when(since)) (the agent keeps no store): a lower bound") }
        if let until = countsUntil { out.append("  as stored until \(Self.when(until))") }
        out.append(pad("relay", relayWidth, right: false) + ["today in", "today out", "period in", "period out"]
            .map { pad($0, 12, right: true) }.joined())
        for t in traffic {
            let mark = t.lowerBound ? "≥" : ""
            out.append(pad(t.relay, relayWidth, right: false)
                + [t.todayInBytes, t.todayOutBytes, t.periodInBytes, t.periodOutBytes]
                .map { pad(mark + Format.bytes($0), 12, right: true) }.joined())
        }
        if let reason = traffic.lazy.compactMap(\.lowerBoundReason).first { out.append("  ≥ a lower bound: \(reason)") }
        return out
    }

    /// Two lines per quota: its verdict and use, then the projection and
    /// what it stands on.
    public func quotaLines() -> [String] {
        guard !quotas.isEmpty else { return ["Quotas: none configured (--quota, the config's quotas: or a torrc's AccountingMax)"] }
        var out = ["Quotas:"]
        for q in quotas {
            out.append("  \(q.name): \(q.verdictPhrase); \(q.usePhrase)")
            out.append("    \(q.basisPhrase)")
        }
        return out
    }

    /// One line per relay with Tor accounting.
    public func torLines() -> [String] {
        guard !tor.isEmpty else { return ["Tor: no relay with accounting (AccountingMax) known: nothing will hibernate"] }
        return ["Tor:"] + tor.map { "  \($0.relay): \($0.phrase) (\($0.sourcePhrase))" }
    }

    /// The three answers, in order, for `report` and `top`.
    public func textLines() -> [String] { trafficLines() + quotaLines() + torLines() }
}

extension Glance.QuotaVerdict {
    /// "lasts", "may run out", "runs out on 2026-11-24 13:00 UTC", "over
    /// the limit since …", "no verdict yet".
    public var verdictPhrase: String {
        switch verdict {
        case .lasts: return "lasts"
        case .mayRunOut: return "may run out"
        case .runsOut: return runsOutAt.map { "runs out on \(Glance.when($0))" } ?? "runs out before the period ends"
        case .over: return "over the limit" + (runsOutAt.map { " since \(Glance.when($0))" } ?? "")
        case .unknown: return "no verdict yet (too little history)"
        }
    }

    /// "61.43 GB of 1.00 TB used (6.1 %)".
    public var usePhrase: String {
        let share = limitBytes == 0 ? 0 : Double(usedBytes) / Double(limitBytes) * 100
        return "\(Format.bytes(usedBytes, units: units)) of \(Format.bytes(limitBytes, units: units)) used (\(String(format: "%.1f", share)) %)"
    }

    /// "projected 0.90–1.20 TB by 2026-12-01 00:00 UTC, from 6.0 days of
    /// this host's data", or what is missing for a projection.
    public var basisPhrase: String {
        var out: String
        if let lo = projectedLowBytes, let hi = projectedHighBytes {
            out = "projected \(Glance.range(lo, hi, units: units)) by \(Glance.when(periodEnd)), \(history)"
        } else {
            out = "\(history) (a projection needs 30 minutes)"
        }
        return out + (intervalSource.map { "; interval from \(TorIntervalSource(rawValue: $0)?.phrase ?? $0)" } ?? "")
    }
}

extension Glance {
    /// "653.81–654.61 GiB", or "900.00 GiB–1.20 TiB" across units.
    static func range(_ lo: UInt64, _ hi: UInt64, units: ByteUnits) -> String {
        let a = Format.bytes(lo, units: units), b = Format.bytes(hi, units: units)
        if a == b { return a }
        let unitA = a.split(separator: " ").last, unitB = b.split(separator: " ").last
        return unitA == unitB && unitA != "B" ? "\(a.split(separator: " ").first!)–\(b)" : "\(a)–\(b)"
    }
}

extension Glance.TorState {
    /// "awake; soft limit expected 2026-11-28 14:00 UTC", "hibernating; next wake-up …".
    public var phrase: String {
        switch state {
        case .awake:
            if let s = softLimitAt { return "awake; soft limit expected \(Glance.when(s))" }
            if let h = hardLimitAt { return "awake; hard limit expected \(Glance.when(h))" }
            return "awake; no limit expected this interval"
        case .soft:
            return "soft limit: no new connections" + (nextWakeup.map { "; next wake-up \(Glance.when($0))" } ?? "")
        case .hard:
            return "hibernating" + (nextWakeup.map { "; next wake-up \(Glance.when($0))" } ?? "")
        case .accountingOff:
            return "accounting off: never hibernates"
        }
    }

    public var sourcePhrase: String { source == "tor_control" ? "tor's control port" : "Tor's schedule" }
}

/// The glance as the dashboard's first section: a table and two lists, no
/// script; classes and data attributes name each answer for tests and
/// for a person reading the source.
extension Glance {
    public func html() -> String {
        var out = "<section id=\"glance\"><h2>At a glance</h2>\n"
        out += "<p class=\"glance-period\">\(SVG.escape(dayPhrase.prefix(1).uppercased() + dayPhrase.dropFirst())) and this period: \(SVG.escape(periodPhrase)). Wire bytes, all categories"
        out += countsSince.map { "; counted since \(SVG.escape(Self.when($0))) (no store): a lower bound" } ?? ""
        out += countsUntil.map { "; as stored until \(SVG.escape(Self.when($0)))" } ?? ""
        out += ".</p>\n<table class=\"glance-traffic\"><tr><th>relay</th><th>today in</th><th>today out</th><th>period in</th><th>period out</th></tr>\n"
        for t in traffic {
            let mark = t.lowerBound ? "≥" : ""
            out += "<tr data-relay=\"\(SVG.escape(t.relay))\"\(t.relay == "all" && traffic.first?.relay == "all" ? " class=\"total\"" : "")>"
            out += "<td>\(t.relay == "all" ? "<b title=\"every relay and the host's own traffic\">total</b>" : SVG.escape(t.relay))</td>"
            for (name, v) in [("today-in", t.todayInBytes), ("today-out", t.todayOutBytes), ("period-in", t.periodInBytes), ("period-out", t.periodOutBytes)] {
                out += "<td class=\"\(name)\" data-bytes=\"\(v)\">\(mark)\(Format.bytes(v))</td>"
            }
            out += "</tr>\n"
        }
        out += "</table>\n"
        if let reason = traffic.lazy.compactMap(\.lowerBoundReason).first {
            out += "<p class=\"glance-lower-bound\">≥ a lower bound: \(SVG.escape(reason)).</p>\n"
        }
        out += "<ul class=\"glance-quotas\">"
        if quotas.isEmpty { out += "<li>No quota configured.</li>" }
        for q in quotas {
            out += "<li data-quota=\"\(SVG.escape(q.name))\" data-verdict=\"\(q.verdict.rawValue)\"><b>\(SVG.escape(q.name))</b>: "
            out += "<span class=\"verdict verdict-\(q.verdict.rawValue)\">\(SVG.escape(q.verdictPhrase))</span>; \(SVG.escape(q.usePhrase)); "
            out += "<span class=\"quota-basis\">\(SVG.escape(q.basisPhrase))</span></li>\n"
        }
        out += "</ul>\n<ul class=\"glance-tor\">"
        if tor.isEmpty { out += "<li data-tor-state=\"none\">Tor: no relay with accounting (AccountingMax) known: nothing will hibernate.</li>" }
        for t in tor {
            out += "<li data-relay=\"\(SVG.escape(t.relay))\" data-tor-state=\"\(t.state.rawValue)\">Tor <b>\(SVG.escape(t.relay))</b>: "
            out += "<span class=\"tor-state\">\(SVG.escape(t.phrase))</span> <small>(\(t.sourcePhrase))</small></li>\n"
        }
        return out + "</ul></section>\n"
    }
}
