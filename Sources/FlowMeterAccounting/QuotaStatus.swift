import FlowMeterCore
import FlowMeterConfig
import Foundation

/// Everything `forecast`, `check` and `/metrics` show for one quota at `now`:
/// FlowMeter's forecast and, for a quota that mirrors a relay's
/// AccountingMax, Tor's own schedule driven by FlowMeter's projected rate.
public struct QuotaStatus: Sendable {
    public var quota: Quota
    public var forecast: QuotaForecast
    public var tor: TorScheduleReport?
    /// Where `forecast.usage` comes from: "packets" (FlowMeter's store) or
    /// "tor_control" (tor's own counters and interval, for a `tor:RELAY`
    /// quota whose tor answers on its control port).
    public var source = "packets"
    /// The relay's own figures when `forecast` asked its tor (`source` "tor_control").
    public var torControl: TorControlStatus? = nil

    /// What Tor knows about one relay: its accounting settings, its `state`
    /// file's counters and its identity (DataDirectory/fingerprint).
    public struct TorInputs: Sendable {
        public var config: TorHibernationConfig
        public var state: TorAccountingState
        public var fingerprint: TorFingerprint?
        public init(config: TorHibernationConfig, state: TorAccountingState, fingerprint: TorFingerprint?) {
            self.config = config; self.state = state; self.fingerprint = fingerprint
        }
    }

    public static func evaluate(_ quota: Quota, source: UsageHistorySource, now: Date, tor: TorInputs? = nil) throws -> QuotaStatus {
        let f = try QuotaForecaster.forecast(quota, source: source, now: now)
        let report = tor.map { TorSchedule.report(config: $0.config, state: $0.state, fingerprint: $0.fingerprint,
                                                  now: now, rate: f.projection?.futureRate) }
        return QuotaStatus(quota: quota, forecast: f, tor: report)
    }
}
