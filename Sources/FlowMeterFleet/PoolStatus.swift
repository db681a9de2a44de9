import FlowMeterAccounting
import FlowMeterFormat
import FlowMeterReports
import Foundation

/// A pooled quota evaluated at one instant from the central store: the
/// forecaster's view of the pooled series (used, projected end with its
/// range, exhaustion, daily budget) and each member's part.
public struct PoolStatus: Sendable {
    public var pool: PooledQuota
    /// The forecast of the pooled series. Its quota is `pool.quota` without
    /// a relay in the scope (the store already selected that relay), so
    /// shares and rate advice go per host.
    public var status: QuotaStatus
    public var members: [Member]
    public var history: FleetHistory

    public struct Member: Sendable, Equatable {
        public var host: String
        /// The host's bytes in the pool's scope this period.
        public var read: UInt64
        public var written: UInt64
        /// What of the pool's `used` the host accounts for (by the pool's
        /// rule: in + out, one direction, or for `max` the deciding one).
        public var counted: UInt64
        /// `counted` ÷ the pool's used (0 when nothing is used).
        public var share: Double
        public var newestSample: Date?
    }

    /// The stalest member's newest sample: how current the pool's figures are.
    public var newestData: Date? {
        let dates = pool.hosts.map { history.newestSample[$0] }
        return dates.contains(where: { $0 == nil }) ? nil : dates.compactMap { $0 }.min()
    }

    /// Evaluates `pool` at `now` on what the central store holds.
    public static func evaluate(_ pool: PooledQuota, api: PrometheusQuerying, now: Date) throws -> PoolStatus {
        let q = evaluationQuota(pool)
        let interval = q.interval(containing: now)
        let from = min(interval.start, now.addingTimeInterval(-QuotaForecaster.windowSeconds))
        let history = try FleetHistoryLoader(api: api).load(pool, from: from, now: now, edges: [interval.start])
        return try evaluate(pool, history: history, now: now)
    }

    /// The same on a history already read.
    public static func evaluate(_ pool: PooledQuota, history: FleetHistory, now: Date) throws -> PoolStatus {
        let q = evaluationQuota(pool)
        var status = try QuotaStatus.evaluate(q, source: history, now: now)
        if !history.notes.isEmpty || !history.missingHosts.isEmpty { status.forecast.usageIsLowerBound = true }
        let period = try history.buckets(from: status.forecast.usage.interval.start, to: now)
        let total = status.forecast.usage
        let members = pool.hosts.map { host -> Member in
            var one = q
            one.scope.relay = host
            let u = QuotaUsage.measure(one, buckets: period, now: now)
            let counted: UInt64
            switch q.rule {
            case .sum: counted = u.read + u.written
            case .in: counted = u.read
            case .out: counted = u.written
            case .max: counted = total.read >= total.written ? u.read : u.written
            }
            return Member(host: host, read: u.read, written: u.written, counted: counted,
                          share: total.used > 0 ? Double(counted) / Double(total.used) : 0,
                          newestSample: history.newestSample[host])
        }
        return PoolStatus(pool: pool, status: status, members: members, history: history)
    }

    /// The pool's quota as evaluated on a `FleetHistory`, whose buckets are
    /// filed per host and already hold only the scope's relay.
    static func evaluationQuota(_ pool: PooledQuota) -> Quota {
        var q = pool.quota
        q.scope.relay = nil
        q.torRelay = nil
        return q
    }

    /// The monitoring plugin's view of the pool.
    public var checkInput: CheckPlugin.QuotaInput {
        var input = CheckPlugin.QuotaInput(status)
        input.name = pool.name
        input.relay = nil
        if input.used > input.limit && input.exhaustion == nil {
            let period = status.forecast.usage.interval
            input.exhaustion = QuotaForecaster.pastCrossing(status.quota, buckets: history.allBuckets, interval: period)
        }
        return input
    }

    /// `flowmeter fleet forecast --json` and `report --json`: one pool.
    public var json: FleetPoolJSON { FleetPoolJSON(self) }
}

/// The JSON of one pool (an interface contract: fields are added, never
/// renamed). `forecast` is the per-host forecast's object for the pooled
/// series, named and scoped as the pool is declared.
public struct FleetPoolJSON: Codable, Sendable, Equatable {
    public var pool: String
    public var hosts: [String]
    public var forecast: QuotaForecastJSON
    public var members: [Member]
    /// The stalest member's newest sample; null when a member has none.
    public var newest_data: String?
    public var missing_hosts: [String]
    public var notes: [String]

    public struct Member: Codable, Sendable, Equatable {
        public var host: String
        public var read_bytes: UInt64
        public var written_bytes: UInt64
        public var counted_bytes: UInt64
        public var share: Double
        public var newest_data: String?

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(host, forKey: .host)
            try c.encode(read_bytes, forKey: .read_bytes)
            try c.encode(written_bytes, forKey: .written_bytes)
            try c.encode(counted_bytes, forKey: .counted_bytes)
            try c.encode(share, forKey: .share)
            try c.encode(newest_data, forKey: .newest_data)  // null, never absent
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pool, forKey: .pool)
        try c.encode(hosts, forKey: .hosts)
        try c.encode(forecast, forKey: .forecast)
        try c.encode(members, forKey: .members)
        try c.encode(newest_data, forKey: .newest_data)  // null, never absent
        try c.encode(missing_hosts, forKey: .missing_hosts)
        try c.encode(notes, forKey: .notes)
    }

    init(_ p: PoolStatus) {
        pool = p.pool.name
        hosts = p.pool.hosts
        var f = p.status.json
        f.scope = p.pool.quota.scope.description
        f.name = p.pool.name
        forecast = f
        members = p.members.map {
            Member(host: $0.host, read_bytes: $0.read, written_bytes: $0.written, counted_bytes: $0.counted,
                   share: $0.share, newest_data: $0.newestSample.map(Format.iso8601))
        }
        newest_data = p.newestData.map(Format.iso8601)
        missing_hosts = p.history.missingHosts
        notes = p.history.notes
    }
}
