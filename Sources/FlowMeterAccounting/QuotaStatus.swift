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

    /// Which interval a Tor quota's figures are for, and where it came
    /// from (`TorIntervalChoice`); nil for other quotas.
    public var intervalSource: TorIntervalSource? = nil

    /// What Tor knows about one relay: its accounting settings, its `state`
    /// file's counters and its identity (DataDirectory/fingerprint).
    public struct TorInputs: Sendable {
        public var config: TorHibernationConfig
        public var state: TorAccountingState
        public var fingerprint: TorFingerprint?
        /// When the state file was written; nil when there is none (or it
        /// could not be read: then `state` is empty).
        public var stateSavedAt: Date?
        /// Where the state file is read again (`refreshed()`).
        public var dataDirectory: String?
        public init(config: TorHibernationConfig, state: TorAccountingState, fingerprint: TorFingerprint?,
                    stateSavedAt: Date? = nil, dataDirectory: String? = nil) {
            self.config = config; self.state = state; self.fingerprint = fingerprint
            self.stateSavedAt = stateSavedAt; self.dataDirectory = dataDirectory
        }

        /// Reads the relay's `state` and `fingerprint` from its DataDirectory
        /// (each left empty when unreadable: tor keeps it 0700 for its user).
        public static func read(config: TorHibernationConfig, dataDirectory: String?) -> TorInputs {
            var inputs = TorInputs(config: config, state: TorAccountingState(), fingerprint: nil, dataDirectory: dataDirectory)
            guard let dir = dataDirectory else { return inputs }
            if let text = try? String(contentsOfFile: dir + "/state", encoding: .utf8),
               let state = try? TorAccountingState(stateFile: text) {
                inputs.state = state
                let mtime = (try? FileManager.default.attributesOfItem(atPath: dir + "/state"))?[.modificationDate] as? Date
                inputs.stateSavedAt = state.lastWritten ?? mtime
            }
            if let text = try? String(contentsOfFile: dir + "/fingerprint", encoding: .utf8) {
                inputs.fingerprint = try? TorFingerprint(fingerprintFile: text)
            }
            return inputs
        }

        /// The same relay with its state file read again (tor rewrites it).
        public func refreshed() -> TorInputs {
            guard dataDirectory != nil else { return self }
            var again = Self.read(config: config, dataDirectory: dataDirectory)
            if again.fingerprint == nil { again.fingerprint = fingerprint }
            return again
        }
    }

    /// - Parameter control: tor's own figures from its control port, for a
    ///   Tor quota whose tor answered (`TorIntervalChoice`).
    public static func evaluate(_ quota: Quota, source: UsageHistorySource, now: Date, tor: TorInputs? = nil,
                                control: TorControlFigures? = nil) throws -> QuotaStatus {
        guard let tor else {
            return QuotaStatus(quota: quota, forecast: try QuotaForecaster.forecast(quota, source: source, now: now), tor: nil)
        }
        let choice = TorIntervalChoice.choose(relay: quota.scope.relay ?? "host", config: tor.config, state: tor.state,
                                              stateSavedAt: tor.stateSavedAt, control: control, now: now)
        let f = try QuotaForecaster.forecast(quota, source: source, now: now, interval: choice.interval, extraSeed: choice.seed)
        let report = TorSchedule.report(config: tor.config, state: choice.scheduleState, fingerprint: tor.fingerprint,
                                        now: now, rate: f.projection?.futureRate, knownInterval: choice.interval)
        var status = QuotaStatus(quota: quota, forecast: f, tor: report)
        status.intervalSource = choice.source
        if choice.source == .torControl { status.source = "tor_control" }
        return status
    }

    /// The same status with tor's bytes from a newer control-port reading
    /// of the same interval: the agent re-evaluates quotas every 30 s but
    /// polls tor every 10 s, and tor's bytes are exact, so every view shows
    /// the latest. Other quotas, and a reading of another interval (tor
    /// moved on: the next evaluation says so), are left as they are.
    public func withLatestTorBytes(_ figures: TorControlFigures?) -> QuotaStatus {
        guard intervalSource == .torControl, let f = figures, f.accountingEnabled,
              f.intervalStart == forecast.usage.interval.start, f.intervalEnd == forecast.usage.interval.end else { return self }
        var s = self
        s.forecast.usage.read = f.bytesRead
        s.forecast.usage.written = f.bytesWritten
        s.forecast.usage.used = quota.rule.bytes(read: f.bytesRead, written: f.bytesWritten)
        return s
    }
}
