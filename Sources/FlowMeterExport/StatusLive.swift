import FlowMeterFormat
import FlowMeterCore
import FlowMeterAccounting
import Foundation

/// What a live view (`flowmeter top`, the dashboard) needs beyond the
/// counters: connections per relay and category, and each quota's line with
/// its projection and Tor's schedule. Optional in the document, so a reader
/// of an older agent's status still decodes it.
extension StatusDocument {
    public struct Connections: Codable, Sendable, Equatable {
        public var relay: String
        public var category: String
        public var active: UInt64
        public var peak: UInt64
        public var opened: UInt64
        public var unansweredAttempts: UInt64
    }

    public struct QuotaLine: Codable, Sendable, Equatable {
        public var name: String
        public var periodStart: String
        public var periodEnd: String
        public var usedBytes: UInt64
        public var limitBytes: UInt64
        public var usedFraction: Double
        /// Whole bytes: the projections rounded.
        public var projectedEndBytes: UInt64?
        public var projectedLowBytes: UInt64?
        public var projectedHighBytes: UInt64?
        public var projectedExhaustion: String?
        public var torSoftLimit: String?
        public var torHardLimit: String?
        public var torWakeup: String?
        /// For a Tor quota: tor_control, tor_state_file or computed.
        public var intervalSource: String?
        /// Seconds of measured history the projection stands on, and the same in words.
        public var historySeconds: Double?
        public var history: String?
    }

    static func connections(_ r: AgentReading) -> [Connections] {
        var out: [Connections] = []
        for relay in r.cells.relays {
            for c in Category.allCases {
                let v = Connections(relay: relay, category: c.label,
                                    active: r.connectionValue(relay: relay, c, .active),
                                    peak: r.connectionValue(relay: relay, c, .peak),
                                    opened: r.connectionValue(relay: relay, c, .opened),
                                    unansweredAttempts: r.connectionValue(relay: relay, c, .unanswered))
                if v.active + v.peak + v.opened + v.unansweredAttempts > 0 { out.append(v) }
            }
        }
        return out
    }

    static func quotaLines(_ quotas: [QuotaStatus]) -> [QuotaLine] {
        quotas.map { q in
            let u = q.forecast.usage, p = q.forecast.projection, t = q.tor?.current
            return QuotaLine(name: q.quota.name, periodStart: Format.iso8601(u.interval.start),
                             periodEnd: Format.iso8601(u.interval.end),
                             usedBytes: u.used, limitBytes: u.limit, usedFraction: u.fractionUsed,
                             projectedEndBytes: p.map { Format.exactBytes($0.endTotal) }, projectedLowBytes: p.map { Format.exactBytes($0.low) },
                             projectedHighBytes: p.map { Format.exactBytes($0.high) },
                             projectedExhaustion: p?.exhaustion.map { Format.iso8601($0) },
                             torSoftLimit: t?.predictedSoftHibernation.map { Format.iso8601($0) },
                             torHardLimit: t?.predictedHardHibernation.map { Format.iso8601($0) },
                             torWakeup: t?.wakeup.map { Format.iso8601($0.wake) },
                             intervalSource: q.intervalSource?.rawValue,
                             historySeconds: q.forecast.historySeconds.rounded(), history: q.forecast.historyDescription)
        }
    }
}
