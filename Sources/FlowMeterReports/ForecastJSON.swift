import FlowMeterFormat
import FlowMeterCore
import FlowMeterAccounting
import FlowMeterStore
import Foundation

/// The stable JSON shape of one quota in `flowmeter forecast --json` (an
/// interface contract: fields are added, never renamed). Instants are ISO-8601 UTC strings, null when none;
/// byte counts are whole numbers, projections rounded (docs/quotas.md, "forecast --json").
public struct QuotaForecastJSON: Codable, Sendable, Equatable {
    public var name: String
    public var rule: String
    public var scope: String
    public var method: String
    public var limit_bytes: UInt64
    public var used_bytes: UInt64
    public var read_bytes: UInt64
    public var written_bytes: UInt64
    public var remaining_bytes: UInt64
    public var period_start: String
    public var period_end: String
    public var now: String
    public var observed_seconds: Double
    public var period_to_date_bytes_per_second: Double?
    public var trailing_24h_bytes_per_second: Double?
    public var projected_end_bytes: UInt64?
    public var projected_end_bytes_low: UInt64?
    public var projected_end_bytes_high: UInt64?
    public var projected_exhaustion: String?
    public var daily_budget_bytes: UInt64?
    public var relay_bandwidth_rate_to_last_bytes_per_second: UInt64?
    public var tor: Tor?
    /// "packets" or "tor_control" (`QuotaStatus.source`).
    public var source = "packets"
    /// Tor's own figures and live prediction, when its control port answered.
    public var tor_control: TorControlJSON? = nil
    /// For a Tor quota: where its interval came from (tor_control,
    /// tor_state_file or computed); null for other quotas.
    public var interval_source: String? = nil
    /// Seconds of measured history the projection stands on: this host's
    /// observed traffic, plus an imported span when a young store's level uses it.
    public var history_seconds: Double = 0
    /// The same in words ("from 9 minutes of this host's data, plus 6.0 days imported from vnstat").
    public var history: String = ""
    /// The part of the period before any data, and the rule bytes the
    /// projection counts for it (0 when the data cover the whole period).
    public var unobserved_seconds: Double = 0
    public var unobserved_estimate_bytes: UInt64 = 0
    /// The interval the projected range is meant to be (e.g. 80 for 80 %).
    public var projected_range_percent: Double?
    /// When the model detected the traffic's level last changed, and the
    /// oldest data its level is fitted on.
    public var level_change: String?
    public var learns_from: String?
    /// The period began before the first data and nothing was imported:
    /// used_bytes is a lower bound.
    public var used_is_lower_bound: Bool = false
    /// Counts imported by `flowmeter import` that used_bytes includes.
    public var imported: Imported?
    /// The RelayBandwidthRate to paste into a torrc, and whether Tor would refuse it.
    public var relay_bandwidth_rate_torrc: String?
    public var relay_bandwidth_rate_below_tor_minimum: Bool?
    /// For a host-wide quota: the rate is the total for every relay; each one's share.
    public var relay_bandwidth_rate_shares: [Share]?

    public struct Imported: Codable, Sendable, Equatable {
        public var source: String
        public var relay: String
        public var start: String
        public var end: String
        public var read_bytes: UInt64
        public var written_bytes: UInt64
    }
    public struct Share: Codable, Sendable, Equatable {
        public var relay: String
        public var fraction: Double
        public var bytes_per_second: UInt64
        public var torrc: String
        public var below_tor_minimum: Bool
    }

    public struct Tor: Codable, Sendable, Equatable {
        public var interval_start: String
        public var interval_end: String
        public var soft_limit_bytes: UInt64
        public var expected_usage_bytes_per_minute: UInt64
        public var expected_usage_basis: String
        /// True when Tor's ÷60 slip in `update_expected_bandwidth()` set E.
        public var expected_usage_divide_by_60_quirk: Bool
        public var wakeup: String?
        public var expected_exhaustion: String?
        public var predicted_soft_hibernation: String?
        public var predicted_hard_hibernation: String?

        public func encode(to encoder: Encoder) throws { try encodeAllKeys(self, to: encoder) }

        public init(_ s: TorIntervalSchedule) {
            interval_start = Format.iso8601(s.interval.start)
            interval_end = Format.iso8601(s.interval.end)
            soft_limit_bytes = s.softLimit
            expected_usage_bytes_per_minute = s.expectedUsage.bytesPerMinute
            expected_usage_basis = s.expectedUsage.basis.rawValue
            expected_usage_divide_by_60_quirk = s.expectedUsage.usesDivideBy60Quirk
            wakeup = s.wakeup.map { Format.iso8601($0.wake) }
            expected_exhaustion = s.wakeup.map { Format.iso8601($0.expectedExhaustion) }
            predicted_soft_hibernation = s.predictedSoftHibernation.map(Format.iso8601)
            predicted_hard_hibernation = s.predictedHardHibernation.map(Format.iso8601)
        }
    }

    /// Writes every key, nil ones as JSON null (the contract wants null, not absent).
    public func encode(to encoder: Encoder) throws { try encodeAllKeys(self, to: encoder) }

    /// `tor` is the quota's Tor schedule for the current interval, if it mirrors a relay.
    public init(quota: Quota, forecast f: QuotaForecast, tor: TorIntervalSchedule? = nil) {
        name = quota.name; rule = quota.rule.rawValue; scope = quota.scope.description; method = f.method
        limit_bytes = quota.limit; used_bytes = f.usage.used
        read_bytes = f.usage.read; written_bytes = f.usage.written; remaining_bytes = f.usage.remaining
        period_start = Format.iso8601(f.usage.interval.start); period_end = Format.iso8601(f.usage.interval.end); now = Format.iso8601(f.now)
        observed_seconds = f.observedSeconds
        history_seconds = f.historySeconds.rounded()
        history = f.historyDescription
        unobserved_seconds = f.unobservedSeconds.rounded()
        unobserved_estimate_bytes = Format.exactBytes(f.unobservedEstimate)
        period_to_date_bytes_per_second = f.periodToDateRate
        trailing_24h_bytes_per_second = f.trailing24hRate
        projected_end_bytes = f.projection.map { Format.exactBytes($0.endTotal) }
        projected_end_bytes_low = f.projection.map { Format.exactBytes($0.low) }
        projected_end_bytes_high = f.projection.map { Format.exactBytes($0.high) }
        projected_exhaustion = f.projection?.exhaustion.map(Format.iso8601)
        daily_budget_bytes = f.dailyBudget.map(Format.exactBytes)
        relay_bandwidth_rate_to_last_bytes_per_second = f.relayBandwidthRateToLast
        self.tor = tor.map(Tor.init)
        projected_range_percent = f.projection == nil ? nil : 100 * QuotaForecaster.rangeCoverage
        level_change = f.levelChange.map { Format.iso8601($0) }
        learns_from = f.learnsFrom.map { Format.iso8601($0) }
        used_is_lower_bound = f.usageIsLowerBound
        imported = f.imported.map {
            Imported(source: $0.source.rawValue, relay: $0.relay, start: Format.iso8601($0.start), end: Format.iso8601($0.end),
                     read_bytes: $0.read, written_bytes: $0.written)
        }
        let advice = f.rateAdvice ?? f.relayBandwidthRateToLast.map { RateAdvice(bytesPerSecond: $0, hostWide: false, shares: []) }
        relay_bandwidth_rate_torrc = advice?.torrc
        relay_bandwidth_rate_below_tor_minimum = advice?.belowTorMinimum
        relay_bandwidth_rate_shares = advice.flatMap { $0.hostWide ? $0.shares.map {
            Share(relay: $0.relay, fraction: $0.fraction, bytes_per_second: $0.bytesPerSecond, torrc: $0.torrc,
                  below_tor_minimum: $0.belowTorMinimum)
        } : nil }
    }
}


struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Encodes each stored property under its own name, nil as null.
func encodeAllKeys(_ value: Any, to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: AnyCodingKey.self)
    for child in Mirror(reflecting: value).children {
        guard let label = child.label, let v = child.value as? any Encodable else { continue }
        try c.encode(v, forKey: AnyCodingKey(label))
    }
}

/// `flowmeter tor-schedule --json`: Tor's schedule for the current and next interval.
public struct TorScheduleJSON: Codable, Sendable, Equatable {
    public var accounting_max_bytes: UInt64
    public var rule: String
    public var accounting_start: String
    public var time_zone: String
    public var now: String
    /// continued | moved | elapsed | mismatched | no-stored-interval
    public var continuity: String
    public var continuity_moved_fraction: Double?
    public var rate_bytes_per_second: Double
    public var rate_source: String
    /// tor_control | tor_state_file | computed: where the current interval came from.
    public var interval_source: String?
    public var current: Interval
    public var next: Interval

    public struct Interval: Codable, Sendable, Equatable {
        public var schedule: QuotaForecastJSON.Tor
        public var used_bytes: UInt64
        public var time_to_exhaust_seconds: UInt64?
        public var time_to_consider_seconds: Int64?
        public var digest_u32: UInt32?
        /// What E would be without Tor's ÷60 slip (soft-limit basis only).
        public var expected_usage_intended_bytes_per_minute: UInt64?
        public func encode(to encoder: Encoder) throws { try encodeAllKeys(self, to: encoder) }

        init(_ s: TorIntervalSchedule) {
            schedule = .init(s); used_bytes = s.usedBytes
            time_to_exhaust_seconds = s.wakeup?.timeToExhaustSeconds
            time_to_consider_seconds = s.wakeup?.timeToConsiderSeconds
            digest_u32 = s.wakeup?.digestValue
            expected_usage_intended_bytes_per_minute = s.expectedUsage.intendedBytesPerMinute
        }
    }

    public func encode(to encoder: Encoder) throws { try encodeAllKeys(self, to: encoder) }

    public init(config: TorHibernationConfig, report r: TorScheduleReport, now: Date) {
        accounting_max_bytes = config.accountingMax; rule = config.rule.rawValue
        accounting_start = config.period.description; time_zone = config.timeZone.identifier
        self.now = Format.iso8601(now)
        switch r.continuity {
        case .continued: continuity = "continued"
        case .moved(let f): continuity = "moved"; continuity_moved_fraction = f
        case .elapsed(let f): continuity = "elapsed"; continuity_moved_fraction = f
        case .mismatched(let f): continuity = "mismatched"; continuity_moved_fraction = f
        case .noStoredInterval: continuity = "no-stored-interval"
        }
        rate_bytes_per_second = r.rate; rate_source = r.rateSource
        current = .init(r.current); next = .init(r.next)
    }
}

extension QuotaStatus {
    /// The per-quota object of `flowmeter forecast --json`.
    public var json: QuotaForecastJSON {
        var j = QuotaForecastJSON(quota: quota, forecast: forecast, tor: tor?.current)
        j.source = source
        j.interval_source = intervalSource?.rawValue
        j.tor_control = torControl.map(TorControlJSON.init)
        return j
    }
}

extension QuotaForecast {
    /// What the projection stands on, in words, for every view: "from 9
    /// minutes of this host's data", "plus 6.0 days imported from vnstat".
    public var historyDescription: String {
        var out = ownHistorySeconds > 0 ? "from \(Format.duration(ownHistorySeconds)) of this host's data" : "from no data of this host's yet"
        if levelUsesImported, let i = imported {
            out += ", plus \(Format.duration(i.end.timeIntervalSince(i.start))) \(i.source.phrase)"
        }
        if unobservedEstimate > 0 {
            out += "; the period's first \(Format.duration(unobservedSeconds)), before any data, estimated at the projected rate"
        }
        return out
    }
}

extension ImportedUsage.Source {
    /// How the counts came, for `historyDescription`.
    var phrase: String {
        switch self {
        case .torState: return "from tor's state file"
        case .torControl: return "from tor's control port"
        case .vnstatJSON, .vnstatDB: return "imported from vnstat"
        }
    }
}

extension TorIntervalSource {
    /// Where the interval came from, for a person.
    public var phrase: String {
        switch self {
        case .torControl: return "tor's control port"
        case .torStateFile: return "tor's state file"
        case .computed: return "AccountingStart (computed)"
        }
    }
}
