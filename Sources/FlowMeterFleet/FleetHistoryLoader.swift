import FlowMeterAccounting
import FlowMeterCore
import FlowMeterFormat
import Foundation

/// Reads a pool's `FleetHistory` from a central store with a handful of
/// queries, exactly: counters are read (never `rate` or `increase`, which
/// Prometheus extrapolates) at every hour boundary, the period's start and
/// now; their differences are the increments; where a counter may have been
/// reset (an agent restart), that span is summed again from the raw samples.
///
/// Queries (SEL: the members' `host` labels and the scope's categories and
/// relay; M: the scope layer's counter):
/// 1. `sum by (host, category, direction) (last_over_time(M SEL [1h]))`, a
///    range query at hour steps plus instant queries at the other instants;
/// 2. `sum by (host) (resets(M SEL [2h]))` the same way, to find spans that
///    need step 4;
/// 3. the agent's start time at each host's first reading, to tell a counter
///    that began at zero from one that began before the data;
/// 4. raw samples `M SEL [Ns]` of one host over a suspicious span;
/// 5. each member's newest sample (`timestamp(flowmeter_build_info)`).
public struct FleetHistoryLoader {
    public let api: PrometheusQuerying
    public init(api: PrometheusQuerying) { self.api = api }

    /// The counter each scope layer counts.
    public static func metric(_ layer: QuotaScope.Layer) -> String {
        switch layer {
        case .wire: return "flowmeter_bytes_total"
        case .payload: return "flowmeter_payload_bytes_total"
        case .tor: return "flowmeter_tor_payload_bytes_total"
        }
    }

    /// Everything in [from, now] for `pool`; `edges` (e.g. the period's start)
    /// are read too, so that no bucket straddles them.
    public func load(_ pool: PooledQuota, from: Date, now: Date, edges: [Date] = []) throws -> FleetHistory {
        let scope = pool.quota.scope
        let series = Self.metric(scope.layer) + PromQL.selector(hosts: pool.hosts, categories: scope.categories, relay: scope.relay)
        let grid = Self.grid(from: from, now: now, edges: edges)
        let values = try read("sum by (host, category, direction) (last_over_time(\(series)[1h]))", grid: grid)
        let resets = try resetWindows(series, grid: grid)
        var readings: [CounterReadings.Key: [(Date, Double)]] = [:]
        for (t, list) in values {
            for s in list {
                guard let host = s["host"], let c = s["category"].flatMap(Category.init(label:)),
                      let d = s["direction"].flatMap(Direction.init(label:)), d != .none, let v = s.samples.last?.value else { continue }
                readings[.init(host: host, category: c, direction: d), default: []].append((t, v))
            }
        }
        var refined: [String: [CounterReadings.Key: UInt64]] = [:]
        var starts: [String: Date?] = [:]
        var buckets: [UsageBucket] = []
        for key in readings.keys.sorted() {
            let list = readings[key]!.sorted { $0.0 < $1.0 }
            let steps = try CounterReadings.steps(
                list, grid: grid,
                suspicious: { a, b in resets[key.host, default: []].contains { $0.end > a && $0.start < b } },
                refine: { a, b in
                    let span = "\(key.host) \(a.timeIntervalSince1970) \(b.timeIntervalSince1970)"
                    if refined[span] == nil { refined[span] = try rawIncrease(pool, host: key.host, after: a, upTo: b) }
                    return refined[span]![key] ?? 0
                },
                startedAt: { t in
                    if starts[key.host] == nil { starts[key.host] = try startTime(key.host, at: t) }
                    return starts[key.host]!
                })
            buckets += steps.map { CounterReadings.bucket(key, $0, layer: scope.layer) }
        }
        return try finish(pool, buckets: buckets, readings: readings, grid: grid, starts: starts, now: now)
    }

    /// Hour boundaries from the one at or before `from` to the one at or
    /// before `now`, then `edges` inside, then `now`.
    static func grid(from: Date, now: Date, edges: [Date]) -> [Date] {
        let first = (from.timeIntervalSince1970 / 3600).rounded(.down) * 3600
        var out: [Date] = []
        var t = first
        while t <= now.timeIntervalSince1970 { out.append(Date(timeIntervalSince1970: t)); t += 3600 }
        for e in edges + [now] where e > Date(timeIntervalSince1970: first) && e <= now && !out.contains(e) { out.append(e) }
        return out.sorted()
    }

    /// `expr` at every grid instant: one range query for the hour
    /// boundaries, one instant query for each other instant.
    private func read(_ expr: String, grid: [Date]) throws -> [(Date, [PromSeries])] {
        let hours = grid.filter { $0.timeIntervalSince1970.truncatingRemainder(dividingBy: 3600) == 0 }
        var out: [(Date, [PromSeries])] = []
        if let a = hours.first, let b = hours.last {
            var byTime: [Double: [PromSeries]] = [:]
            for s in try api.range(expr, start: a, end: b, step: 3600) {
                for sample in s.samples {
                    byTime[sample.time, default: []].append(PromSeries(labels: s.labels, samples: [sample]))
                }
            }
            out += hours.map { ($0, byTime[$0.timeIntervalSince1970] ?? []) }
        }
        for t in grid where !hours.contains(t) { out.append((t, try api.instant(expr, at: t))) }
        return out
    }

    /// Per host, the windows in which its counters were reset at least once.
    private func resetWindows(_ series: String, grid: [Date]) throws -> [String: [DateInterval]] {
        var out: [String: [DateInterval]] = [:]
        let hours = grid.filter { $0.timeIntervalSince1970.truncatingRemainder(dividingBy: 3600) == 0 }
        if let a = hours.first, let b = hours.last {
            for s in try api.range("sum by (host) (resets(\(series)[2h]))", start: a, end: b, step: 3600) {
                guard let host = s["host"] else { continue }
                for sample in s.samples where sample.value > 0 {
                    let end = Date(timeIntervalSince1970: sample.time)
                    out[host, default: []].append(DateInterval(start: end.addingTimeInterval(-7200), end: end))
                }
            }
        }
        // Other instants: a window reaching back past the hour boundary before.
        for t in grid where !hours.contains(t) {
            let back = t.timeIntervalSince1970.truncatingRemainder(dividingBy: 3600) + 3600
            for s in try api.instant("sum by (host) (resets(\(series)[\(Int(back.rounded(.up)))s]))", at: t) {
                guard let host = s["host"], (s.samples.last?.value ?? 0) > 0 else { continue }
                out[host, default: []].append(DateInterval(start: t.addingTimeInterval(-back), end: t))
            }
        }
        return out
    }

    /// The exact increase over (a, b] of each of `host`'s counters, summed
    /// per category and direction, from the raw samples.
    private func rawIncrease(_ pool: PooledQuota, host: String, after a: Date, upTo b: Date) throws -> [CounterReadings.Key: UInt64] {
        // Back one more hour: the base is the sample `last_over_time(…[1h])` read at a.
        let seconds = Int(b.timeIntervalSince(a).rounded(.up)) + 3600
        let scope = pool.quota.scope
        let one = Self.metric(scope.layer) + PromQL.selector(hosts: [host], categories: scope.categories, relay: scope.relay)
        var out: [CounterReadings.Key: UInt64] = [:]
        for s in try api.instant("\(one)[\(seconds)s]", at: b) {
            guard let c = s["category"].flatMap(Category.init(label:)), let d = s["direction"].flatMap(Direction.init(label:)) else { continue }
            let t0 = a.timeIntervalSince1970
            let base = s.samples.last { $0.time <= t0 && $0.time > t0 - 3600 }?.value
            out[.init(host: host, category: c, direction: d), default: 0] += CounterReadings.increase(s.samples, after: t0, base: base)
        }
        return out
    }

    /// When the agent that answered on `host` at `t` started.
    private func startTime(_ host: String, at t: Date) throws -> Date? {
        let expr = "max(last_over_time(flowmeter_start_time_seconds{host=\(PromQL.string(host))}[1h]))"
        return try api.instant(expr, at: t).first?.samples.last.map { Date(timeIntervalSince1970: $0.value) }
    }
}

extension FleetHistoryLoader {
    /// A member without a sample for this long is silent: its recent traffic is unknown.
    static let silentAfter: TimeInterval = 300

    /// Newest samples, missing members, gaps and notes.
    fileprivate func finish(_ pool: PooledQuota, buckets: [UsageBucket], readings: [CounterReadings.Key: [(Date, Double)]],
                            grid: [Date], starts: [String: Date?], now: Date) throws -> FleetHistory {
        var seen: [String: (first: Date, last: Date)] = [:]
        for (key, list) in readings {
            for (t, _) in list {
                let old = seen[key.host] ?? (t, t)
                seen[key.host] = (min(old.first, t), max(old.last, t))
            }
        }
        let newest = try newestSamples(pool.hosts.filter { seen[$0] != nil }, now: now, fallback: seen.mapValues(\.last))
        var gaps: [DateInterval] = []
        var notes: [String] = []
        for h in pool.hosts {
            guard let span = seen[h] else { continue }
            // A silent member: the pool's recent hours lack its traffic.
            if let last = newest[h], now.timeIntervalSince(last) > Self.silentAfter {
                notes.append("\(h): no sample since \(Format.iso8601(last))")
                gaps.append(DateInterval(start: last, end: now))
            }
            if let first = grid.first, span.first > first, case let s?? = starts[h],
               let before = grid.last(where: { $0 < span.first }), s < before {
                notes.append("\(h): its agent ran since \(Format.iso8601(s)) but the store has its counters only from \(Format.iso8601(span.first))")
                gaps.append(DateInterval(start: max(first, s), end: span.first))
            }
        }
        return FleetHistory(buckets: buckets, gaps: gaps, newestSample: newest,
                            missingHosts: pool.hosts.filter { seen[$0] == nil }, notes: notes)
    }

    /// Each host's newest sample (of `flowmeter_build_info`, which every
    /// scrape carries): the store's own lookback first, then a day back at
    /// one-minute steps, else no later than the hour before `fallback`'s reading.
    private func newestSamples(_ hosts: [String], now: Date, fallback: [String: Date]) throws -> [String: Date] {
        var newest: [String: Date] = [:]
        func ask(_ expr: String) throws {
            for s in try api.instant(expr, at: now) {
                if let h = s["host"], let v = s.samples.last?.value { newest[h] = Date(timeIntervalSince1970: v) }
            }
        }
        guard !hosts.isEmpty else { return [:] }
        try ask("max by (host) (timestamp(flowmeter_build_info\(PromQL.selector(hosts: hosts, categories: nil, relay: nil))))")
        let quiet = hosts.filter { newest[$0] == nil }
        if !quiet.isEmpty {
            let sel = PromQL.selector(hosts: quiet, categories: nil, relay: nil)
            try ask("max by (host) (max_over_time(timestamp(flowmeter_build_info\(sel))[1d:1m]))")
        }
        for h in hosts where newest[h] == nil {
            newest[h] = fallback[h].map { min($0, now.addingTimeInterval(-3600)) }
        }
        return newest
    }
}
