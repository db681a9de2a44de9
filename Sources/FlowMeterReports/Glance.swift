import FlowMeterFormat
import FlowMeterCore
import FlowMeterAccounting
import Foundation

/// The three answers every first screen opens with (the dashboard, `top`,
/// `report`), before any chart: how much the host and each relay moved
/// today and this period, whether each quota will last, and what Tor is
/// doing. `glance` in `/api/v1/status` and `report --json`, field by field in
/// docs/reports.md; byte counts are whole numbers, instants ISO-8601 UTC,
/// absent values null.
public struct Glance: Codable, Sendable, Equatable {
    /// One row of the traffic answer: wire bytes in every category.
    public struct Traffic: Codable, Sendable, Equatable {
        /// A relay label, or `all` for the host's total (every label summed).
        public var relay: String
        public var todayInBytes: UInt64 = 0
        public var todayOutBytes: UInt64 = 0
        public var periodInBytes: UInt64 = 0
        public var periodOutBytes: UInt64 = 0
        /// A gap (agent stopped, drops) overlaps the day or period, or the
        /// counts begin after its start: true counts are at least these.
        public var lowerBound: Bool = false
        /// Why `lowerBound` holds, for a person: where the counts begin or the
        /// first gap in them. Nil when the figures are whole.
        public var lowerBoundReason: String? = nil

        public init(relay: String, lowerBound: Bool = false) { self.relay = relay; self.lowerBound = lowerBound }
        public func encode(to encoder: any Encoder) throws { try encodeAllKeys(self, to: encoder) }
    }

    /// A quota's answer: will it last?
    public struct QuotaVerdict: Codable, Sendable, Equatable {
        public enum Verdict: String, Codable, Sendable {
            /// The whole projected range stays under the limit.
            case lasts
            /// The central projection stays under, the range's high end passes it.
            case mayRunOut = "may_run_out"
            /// The central projection passes the limit before the period ends (`runsOutAt`).
            case runsOut = "runs_out"
            /// Already at or over the limit (since `runsOutAt` when known).
            case over
            /// Too little history to project.
            case unknown
        }
        public var name: String
        public var verdict: Verdict
        public var runsOutAt: String?
        public var usedBytes: UInt64
        public var limitBytes: UInt64
        public var projectedLowBytes: UInt64?
        public var projectedHighBytes: UInt64?
        public var periodStart: String
        public var periodEnd: String
        /// What the projection stands on (`QuotaForecast.historyDescription`).
        public var history: String
        public var historySeconds: UInt64
        /// For a Tor quota: tor_control, tor_state_file or computed.
        public var intervalSource: String?
        /// binary or si: the units its figures are shown in.
        public var units: ByteUnits
        public func encode(to encoder: any Encoder) throws { try encodeAllKeys(self, to: encoder) }
    }

    /// A relay's Tor state: awake, soft limit (no new connections), hard
    /// (hibernating), or accounting off (never hibernates).
    public struct TorState: Codable, Sendable, Equatable {
        public enum State: String, Codable, Sendable {
            case awake, soft, hard
            case accountingOff = "accounting_off"
        }
        public var relay: String
        public var state: State
        /// tor_control (tor said so on its control port) or schedule
        /// (Tor's own arithmetic on its state file and FlowMeter's rate).
        public var source: String
        public var nextWakeup: String?
        /// While awake: when the soft / hard limit is expected (at the recent rate).
        public var softLimitAt: String?
        public var hardLimitAt: String?
        public func encode(to encoder: any Encoder) throws { try encodeAllKeys(self, to: encoder) }
    }

    public var readAt: String
    /// The zone "today" is a day in.
    public var timeZone: String
    public var dayStart: String
    public var periodStart: String
    public var periodEnd: String
    /// What the period is: `quota NAME` (the first host-wide quota's, else
    /// the first quota's) or `month` (the calendar month in `timeZone`).
    public var period: String
    /// Set when the counts start later than the day: the agent keeps no
    /// store and counts since it started.
    public var countsSince: String?
    /// Where the stored counts end when that is before `readAt` (the
    /// agent writes its store once a minute).
    public var countsUntil: String?
    /// The host's total (`all`) first, then each relay label.
    public var traffic: [Traffic]
    public var quotas: [QuotaVerdict]
    public var tor: [TorState]

    /// Every key, an absent value as null (as `forecast --json`).
    public func encode(to encoder: any Encoder) throws { try encodeAllKeys(self, to: encoder) }
}

extension Glance {
    /// Everything the three answers need.
    /// - Parameters:
    ///   - traffic: per relay label, (today in, today out, period in, period out, lower bound).
    ///   - torControl: each relay's own figures (the agent's control-port poller).
    public init(now: Date, zone: TimeZone, day: DateInterval, period: (DateInterval, String),
                traffic: [Traffic], countsSince: Date? = nil, countsUntil: Date? = nil, quotas: [QuotaStatus], torControl: [TorControlStatus]) {
        readAt = Format.iso8601(now)
        timeZone = ["GMT", "UTC", "Etc/UTC", "Etc/GMT", "Etc/Universal", "Universal", "Zulu"].contains(zone.identifier) ? "UTC" : zone.identifier
        dayStart = Format.iso8601(day.start)
        periodStart = Format.iso8601(period.0.start)
        periodEnd = Format.iso8601(period.0.end)
        self.period = period.1
        self.countsSince = countsSince.map(Format.iso8601)
        self.countsUntil = countsUntil.flatMap { now.timeIntervalSince($0) >= 60 ? Format.iso8601($0) : nil }
        var total = Traffic(relay: "all")
        for t in traffic {
            total.todayInBytes &+= t.todayInBytes; total.todayOutBytes &+= t.todayOutBytes
            total.periodInBytes &+= t.periodInBytes; total.periodOutBytes &+= t.periodOutBytes
            total.lowerBound = total.lowerBound || t.lowerBound
            total.lowerBoundReason = total.lowerBoundReason ?? t.lowerBoundReason
        }
        let ordered = traffic.sorted { ($0.relay == "host" ? 1 : 0, $0.relay) < ($1.relay == "host" ? 1 : 0, $1.relay) }
        self.traffic = [total] + ordered
        self.quotas = quotas.map(QuotaVerdict.init)
        tor = Self.torStates(quotas: quotas, torControl: torControl, now: now)
    }

    /// The calendar day of `now` in `zone`.
    public static func day(containing now: Date, zone: TimeZone) -> DateInterval {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return calendar.dateInterval(of: .day, for: now) ?? DateInterval(start: now, duration: 86_400)
    }

    /// The period of the traffic answer: the first host-wide quota's
    /// current period (what the provider bills), else the first quota's,
    /// else the calendar month in `zone`, as vnstat shows.
    public static func period(quotas: [QuotaStatus], now: Date, zone: TimeZone) -> (DateInterval, String) {
        if let q = quotas.first(where: { $0.quota.scope.relay == nil }) ?? quotas.first {
            return (q.forecast.usage.interval, "quota \(q.quota.name)")
        }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        return (calendar.dateInterval(of: .month, for: now) ?? DateInterval(start: now, duration: 0), "month")
    }

    /// Each relay label's wire bytes today and this period, from stored
    /// buckets in [min(day, period start), now).
    public static func traffic(from source: any UsageHistorySource, day: DateInterval, period: DateInterval,
                               now: Date) throws -> [Traffic] {
        let from = min(day.start, period.start)
        var rows: [String: Traffic] = [:]
        var first: Date? = nil
        for b in try source.buckets(from: from, to: now) {
            first = min(first ?? b.start, b.start)
            var t = rows[b.relay] ?? Traffic(relay: b.relay)
            let inbound = b.direction == .inbound
            guard inbound || b.direction == .outbound else { continue }
            if b.start >= day.start && b.start < day.end {
                if inbound { t.todayInBytes &+= b.bytes } else { t.todayOutBytes &+= b.bytes }
            }
            if b.start >= period.start && b.start < period.end {
                if inbound { t.periodInBytes &+= b.bytes } else { t.periodOutBytes &+= b.bytes }
            }
            rows[b.relay] = t
        }
        let gaps = try source.gaps(from: from, to: now)
        let start = try source.observationStart() ?? first
        let reason: String?
        if let gap = gaps.first {
            reason = "the store has no counts from \(Format.iso8601(gap.start)) to \(Format.iso8601(gap.end))"
        } else if let start, start > from.addingTimeInterval(3600) {
            reason = "the store's counts begin at \(Format.iso8601(start)), after the day or period began"
        } else if start == nil {
            reason = "the store holds no counts yet"
        } else {
            reason = nil
        }
        return rows.values.map { var t = $0; t.lowerBound = reason != nil; t.lowerBoundReason = reason; return t }
    }

    /// Each relay's answer, from its tor's control port where it answered,
    /// else from Tor's schedule for its Tor quota.
    static func torStates(quotas: [QuotaStatus], torControl: [TorControlStatus], now: Date) -> [TorState] {
        var out: [TorState] = []
        for c in torControl where c.up {
            guard let f = c.figures else { continue }
            guard f.accountingEnabled else {
                out.append(TorState(relay: c.relay, state: .accountingOff, source: "tor_control"))
                continue
            }
            let p = c.prediction
            let state: TorState.State = f.hibernating == .hard ? .hard : f.hibernating == .soft ? .soft : .awake
            out.append(TorState(relay: c.relay, state: state, source: "tor_control",
                                nextWakeup: state == .awake ? nil : p?.wakeAt.map(Format.iso8601),
                                softLimitAt: state == .awake ? p?.softLimitAt.map(Format.iso8601) : nil,
                                hardLimitAt: state == .hard ? nil : p?.hardLimitAt.map(Format.iso8601)))
        }
        for q in quotas {
            guard let relay = q.quota.torRelay, let report = q.tor, !out.contains(where: { $0.relay == relay }) else { continue }
            out.append(scheduleState(relay: relay, q, report, now: now))
        }
        return out
    }

    /// Tor's state by its own arithmetic: dormant before its wake-up, soft
    /// past the soft limit, hard at AccountingMax, else awake.
    static func scheduleState(relay: String, _ q: QuotaStatus, _ r: TorScheduleReport, now: Date) -> TorState {
        let used = max(q.forecast.usage.used, r.current.usedBytes)
        let nextWake = r.next.wakeup.map { Format.iso8601($0.wake) }
        if let w = r.current.wakeup, now < w.wake {
            return TorState(relay: relay, state: .hard, source: "schedule", nextWakeup: Format.iso8601(w.wake))
        }
        if q.quota.limit > 0 && used >= q.quota.limit {
            return TorState(relay: relay, state: .hard, source: "schedule", nextWakeup: nextWake)
        }
        if r.current.softLimit > 0 && used >= r.current.softLimit {
            return TorState(relay: relay, state: .soft, source: "schedule", nextWakeup: nextWake,
                            hardLimitAt: r.current.predictedHardHibernation.map(Format.iso8601))
        }
        return TorState(relay: relay, state: .awake, source: "schedule",
                        softLimitAt: r.current.predictedSoftHibernation.map(Format.iso8601),
                        hardLimitAt: r.current.predictedHardHibernation.map(Format.iso8601))
    }
}

extension Glance.QuotaVerdict {
    public init(_ s: QuotaStatus) {
        let u = s.forecast.usage, p = s.forecast.projection
        name = s.quota.name
        usedBytes = u.used
        limitBytes = u.limit
        projectedLowBytes = p.map { Format.exactBytes($0.low) }
        projectedHighBytes = p.map { Format.exactBytes($0.high) }
        periodStart = Format.iso8601(u.interval.start)
        periodEnd = Format.iso8601(u.interval.end)
        history = s.forecast.historyDescription
        historySeconds = Format.exactBytes(s.forecast.historySeconds)
        intervalSource = s.intervalSource?.rawValue
        units = s.quota.units
        if u.limit > 0 && u.used >= u.limit {
            verdict = .over
            runsOutAt = p?.exhaustion.map(Format.iso8601)
        } else if let p {
            let limit = Double(u.limit)
            verdict = p.endTotal >= limit ? .runsOut : p.high >= limit ? .mayRunOut : .lasts
            runsOutAt = verdict == .runsOut ? p.exhaustion.map(Format.iso8601) : nil
        } else {
            verdict = .unknown
            runsOutAt = nil
        }
    }
}
