import FlowMeterCore
import Yams

/// When the agent calls a cell's traffic a surge: the config file's `surge:`
/// section (docs/agent.md, "Surges"). Every key is optional.
///
/// A cell (relay, category, direction) surges when its current rate (an EWMA
/// over `currentWindowSeconds`) is more than `factor` times its baseline (an
/// EWMA over `baselineWindowSeconds`, frozen while the cell surges) and above
/// an absolute floor, in bytes or in packets per second; for connection
/// attempts that were never answered, per relay and category, likewise. It
/// ends once the current rate has stayed at or below `endFactor` times the
/// baseline (or the floor) for `holdSeconds`.
///
/// Invariants (checked by `parse`): windows and hold > 0, `baselineWindowSeconds`
/// > `currentWindowSeconds`, `factor` > `endFactor` ≥ 1, floors ≥ 0.
public struct SurgeSettings: Sendable, Equatable {
    public var enabled = true
    /// Time constant of the current rate: short enough to react within
    /// seconds to a flood many times the baseline, long enough to ignore a burst.
    public var currentWindowSeconds: Double = 60
    /// Time constant of the baseline: hours, so a relay's daily rhythm is its
    /// own normal.
    public var baselineWindowSeconds: Double = 3 * 3600
    /// No surge is called before a cell has this much baseline.
    public var warmupSeconds: Double = 600
    public var factor: Double = 4
    public var endFactor: Double = 2
    /// A surge ends only after this long below the end threshold (no flapping).
    public var holdSeconds: Double = 60
    /// 10 Mbit/s: below this no cell surges in bytes, however quiet its baseline.
    public var floorBytesPerSecond: Double = 1_250_000
    /// 64-byte floods are small in bytes; 2000 packets/s is a flood on a quiet cell.
    public var floorPacketsPerSecond: Double = 2000
    /// Unanswered connection attempts per second per relay and category.
    public var floorAttemptsPerSecond: Double = 50

    public init() {}

    /// Reads the `surge:` mapping. `file` names the config file in errors.
    public static func parse(_ node: Node?, file: String) throws(ConfigError) -> SurgeSettings {
        var s = SurgeSettings()
        guard let node else { return s }
        let r = YAMLNodes(file: file)
        for (key, value) in try r.mapping(node, "surge") {
            switch key {
            case "enabled": s.enabled = try r.bool(value, "surge.enabled")
            case "current_window_seconds": s.currentWindowSeconds = try number(value, key, r)
            case "baseline_window_seconds": s.baselineWindowSeconds = try number(value, key, r)
            case "warmup_seconds": s.warmupSeconds = try number(value, key, r, allowZero: true)
            case "factor": s.factor = try number(value, key, r)
            case "end_factor": s.endFactor = try number(value, key, r)
            case "hold_seconds": s.holdSeconds = try number(value, key, r)
            case "floor_bytes_per_second": s.floorBytesPerSecond = try number(value, key, r, allowZero: true)
            case "floor_packets_per_second": s.floorPacketsPerSecond = try number(value, key, r, allowZero: true)
            case "floor_attempts_per_second": s.floorAttemptsPerSecond = try number(value, key, r, allowZero: true)
            default:
                throw r.error(value, "unknown key 'surge.\(key)' (expected enabled, current_window_seconds, baseline_window_seconds, warmup_seconds, factor, end_factor, hold_seconds, floor_bytes_per_second, floor_packets_per_second, floor_attempts_per_second)")
            }
        }
        if s.baselineWindowSeconds <= s.currentWindowSeconds {
            throw r.error(node, "surge.baseline_window_seconds must be longer than surge.current_window_seconds")
        }
        if !(s.endFactor >= 1 && s.factor > s.endFactor) {
            throw r.error(node, "surge: need factor > end_factor ≥ 1")
        }
        return s
    }

    private static func number(_ node: Node, _ key: String, _ r: YAMLNodes, allowZero: Bool = false) throws(ConfigError) -> Double {
        let text = try r.string(node, "surge.\(key)")
        guard let v = Double(text), v.isFinite, allowZero ? v >= 0 : v > 0 else {
            throw r.error(node, "surge.\(key) must be a number \(allowZero ? "≥ 0" : "> 0"), got '\(text)'")
        }
        return v
    }
}
