import FlowMeterCore
import Foundation

/// Tor's hibernation states as GETINFO accounting/hibernating names them.
public enum TorHibernationState: String, Sendable, CaseIterable {
    case awake, soft, hard
}

/// What one relay's tor said on its control port at one instant
/// (GETINFO accounting/… traffic/… fingerprint), plus the rule and limit from
/// its torrc. Nothing here names a peer.
public struct TorControlFigures: Sendable, Equatable {
    public var readAt: Date
    public var fingerprint: String?
    public var accountingEnabled: Bool
    public var hibernating: TorHibernationState?
    /// accounting/bytes: exact bytes read and written in the interval.
    public var bytesRead: UInt64
    public var bytesWritten: UInt64
    public var intervalStart: Date?
    public var intervalEnd: Date?
    public var intervalWake: Date?
    /// traffic/read, traffic/written: the process's totals since it started.
    public var trafficRead: UInt64
    public var trafficWritten: UInt64

    public init(readAt: Date, fingerprint: String? = nil, accountingEnabled: Bool = false, hibernating: TorHibernationState? = nil,
                bytesRead: UInt64 = 0, bytesWritten: UInt64 = 0, intervalStart: Date? = nil, intervalEnd: Date? = nil,
                intervalWake: Date? = nil, trafficRead: UInt64 = 0, trafficWritten: UInt64 = 0) {
        self.readAt = readAt; self.fingerprint = fingerprint; self.accountingEnabled = accountingEnabled
        self.hibernating = hibernating; self.bytesRead = bytesRead; self.bytesWritten = bytesWritten
        self.intervalStart = intervalStart; self.intervalEnd = intervalEnd; self.intervalWake = intervalWake
        self.trafficRead = trafficRead; self.trafficWritten = trafficWritten
    }

    /// Parses the `250-key=value` lines of a GETINFO answer (keys as asked).
    /// Unknown keys are ignored; a malformed value leaves its field unset.
    public init(getinfo values: [String: String], readAt: Date) {
        self.init(readAt: readAt)
        fingerprint = values["fingerprint"].flatMap { $0.isEmpty ? nil : $0 }
        accountingEnabled = values["accounting/enabled"] == "1"
        hibernating = values["accounting/hibernating"].flatMap(TorHibernationState.init(rawValue:))
        if let pair = values["accounting/bytes"].flatMap(Self.pair) { (bytesRead, bytesWritten) = pair }
        intervalStart = values["accounting/interval-start"].flatMap(TorTime.parse)
        intervalEnd = values["accounting/interval-end"].flatMap(TorTime.parse)
        intervalWake = values["accounting/interval-wake"].flatMap(TorTime.parse)
        trafficRead = values["traffic/read"].flatMap { UInt64($0) } ?? 0
        trafficWritten = values["traffic/written"].flatMap { UInt64($0) } ?? 0
    }

    static func pair(_ s: String) -> (UInt64, UInt64)? {
        let p = s.split(separator: " ")
        guard p.count == 2, let a = UInt64(p[0]), let b = UInt64(p[1]) else { return nil }
        return (a, b)
    }
}

/// When tor will change state, predicted from its own counters at the
/// recent rate (docs/quotas.md, "Tor's own figures").
public struct TorLivePrediction: Sendable, Equatable {
    /// Bytes per second under the rule, over the recent window; 0 when unknown.
    public var rate: Double
    /// The soft limit in bytes (`TorSchedule.softLimit`) and the hard one (AccountingMax).
    public var softLimit: UInt64
    public var hardLimit: UInt64
    /// While awake: when the soft / hard limit will be reached at `rate`
    /// (nil: no traffic, or not in this interval).
    public var softLimitAt: Date?
    public var hardLimitAt: Date?
    /// While hibernating: when tor wakes (its interval-wake if still ahead,
    /// else the interval end, when a new interval and a new schedule begin).
    public var wakeAt: Date?
}

/// One relay's view from its control port, as the agent keeps it.
public struct TorControlStatus: Sendable, Equatable {
    public var relay: String
    public var up: Bool
    public var rule: AccountingRule
    public var accountingMax: UInt64
    /// The latest figures (kept after the port went away, with `up` false).
    public var figures: TorControlFigures?
    /// Wire bytes FlowMeter counted for the relay ÷ tor's bytes under the
    /// rule, over the part of tor's interval the agent has watched.
    public var wireToTorRatio: Double?
    public var prediction: TorLivePrediction?

    public init(relay: String, up: Bool, rule: AccountingRule, accountingMax: UInt64, figures: TorControlFigures? = nil,
                wireToTorRatio: Double? = nil, prediction: TorLivePrediction? = nil) {
        self.relay = relay; self.up = up; self.rule = rule; self.accountingMax = accountingMax; self.figures = figures
        self.wireToTorRatio = wireToTorRatio; self.prediction = prediction
    }

    /// Tor's accounting bytes under its rule.
    public var accountingBytes: UInt64? {
        figures.map { rule.bytes(read: $0.bytesRead, written: $0.bytesWritten) }
    }
}

/// Tor's soft/hard limit times from a series of its own counters.
public enum TorLivePredictor {
    /// How far back the rate looks: several 10-s polls, short enough to
    /// follow a change of pace.
    public static let window: TimeInterval = 60

    /// `samples`: (instant, accounting bytes under the rule) of the current
    /// interval, oldest first; `latest` the newest figures.
    /// `fallbackRate` (bytes/s under the rule, e.g. FlowMeter's projection)
    /// is used when the samples give no rate (a single one).
    public static func predict(samples: [(Date, UInt64)], latest: TorControlFigures, accountingMax m: UInt64,
                               expectedBytesPerMinute e: UInt64 = 0, fallbackRate: Double? = nil, now: Date) -> TorLivePrediction {
        let soft = TorSchedule.softLimit(accountingMax: m, expectedBytesPerMinute: e)
        var rate = fallbackRate ?? 0
        if let last = samples.last, let first = samples.first(where: { last.0.timeIntervalSince($0.0) <= window }),
           last.0 > first.0, last.1 >= first.1 {
            rate = Double(last.1 - first.1) / last.0.timeIntervalSince(first.0)
        }
        var p = TorLivePrediction(rate: rate, softLimit: soft, hardLimit: m)
        func reach(_ target: UInt64) -> Date? {
            guard let (at, used) = samples.last else { return nil }
            if used >= target { return at }
            guard rate > 0 else { return nil }
            let t = at.addingTimeInterval(Double(target - used) / rate)
            if let end = latest.intervalEnd, t >= end { return nil }
            return t
        }
        switch latest.hibernating {
        case .hard?:
            p.wakeAt = wake(latest, now: now)
        case .soft?:
            // Connections already open go on until the hard limit.
            p.wakeAt = wake(latest, now: now)
            if m > 0 { p.hardLimitAt = reach(m) }
        default:
            if soft > 0 { p.softLimitAt = reach(soft) }
            if m > 0 { p.hardLimitAt = reach(m) }
        }
        return p
    }

    /// Tor's interval-wake while still ahead, else the interval end (a new
    /// interval, a new schedule).
    static func wake(_ f: TorControlFigures, now: Date) -> Date? {
        if let wake = f.intervalWake, wake > now { return wake }
        return f.intervalEnd
    }
}
