import FlowMeterCore
import FlowMeterConfig
import FlowMeterStore
import Foundation
import Yams

/// The config file's `store:` section: where the accounting store is and how
/// it buckets and keeps counts. With no section the agent stores hour buckets
/// at `state_directory/accounting.db` (docs/configuration.md).
///
/// ```yaml
/// store:
///   path: /var/lib/flowmeter/accounting.db
///   bucket: 1h          # 1h (default) or 1d; 5m and the like need allow_fine_buckets
///   retention: 90d      # how long buckets of that size are kept; "forever" keeps all
///   allow_fine_buckets: false
/// ```
public struct StoreSettings: Sendable, Equatable {
    public static let defaultFileName = "accounting.db"
    /// nil: `state_directory/accounting.db`.
    public var path: String? = nil
    public var configuration = StoreConfiguration()

    public init() {}

    /// The store's file, given the state directory the agent uses.
    public func resolvedPath(stateDirectory: String) -> String {
        path ?? (stateDirectory.hasSuffix("/") ? stateDirectory : stateDirectory + "/") + Self.defaultFileName
    }

    /// Reads the `store:` mapping; errors name the file and line.
    public static func parse(_ node: Node?, file: String) throws(ConfigError) -> StoreSettings {
        var s = StoreSettings()
        guard let node else { return s }
        let r = YAMLNodes(file: file)
        var bucket = BucketResolution.hour
        var retentionDays: Int?? = nil   // nil: the default for the bucket size
        var allowFine = false
        for (key, value) in try r.mapping(node, "store") {
            switch key {
            case "path":
                let text = try r.string(value, "store.path")
                guard text.hasPrefix("/") else { throw r.error(value, "store.path must be an absolute file name, got '\(text)'") }
                s.path = text
            case "bucket":
                let text = try r.string(value, "store.bucket")
                guard let seconds = parseDuration(text), seconds >= 60, 86_400 % seconds == 0 else {
                    throw r.error(value, "store.bucket must be a length that divides a day, like 5m, 1h or 1d, got '\(text)'")
                }
                bucket = BucketResolution(rawValue: seconds)
            case "retention":
                let text = try r.string(value, "store.retention")
                if text == "forever" { retentionDays = .some(nil); continue }
                guard let seconds = parseDuration(text), seconds >= 86_400, seconds % 86_400 == 0 else {
                    throw r.error(value, "store.retention must be whole days like 90d, or forever, got '\(text)'")
                }
                retentionDays = .some(seconds / 86_400)
            case "allow_fine_buckets":
                allowFine = try r.bool(value, "store.allow_fine_buckets")
            default:
                throw r.error(value, "unknown key 'store.\(key)' (expected path, bucket, retention, allow_fine_buckets)")
            }
        }
        s.configuration = configuration(bucket: bucket, retentionDays: retentionDays, allowFine: allowFine)
        if let problem = s.configuration.problem() { throw r.error(node, "store: \(problem)") }
        return s
    }

    /// The chosen bucket with its retention, plus day buckets kept five years
    /// (what reports and quotas read once the finer buckets are pruned).
    static func configuration(bucket: BucketResolution, retentionDays: Int??, allowFine: Bool) -> StoreConfiguration {
        let defaults = StoreConfiguration.defaultResolutions
        let keep: Int? = retentionDays ?? (defaults.first { $0.resolution == bucket }?.keepSeconds).map { Int($0 / 86_400) } ?? 90
        var resolutions = [ResolutionRetention(bucket, keepDays: keep)]
        if bucket != .day { resolutions.append(ResolutionRetention(.day, keepDays: 5 * 366)) }
        return StoreConfiguration(resolutions: resolutions, allowFineResolution: allowFine)
    }

    /// `300`, `300s`, `5m`, `1h`, `90d` in whole seconds, above zero (`DurationText`).
    static func parseDuration(_ text: String) -> Int? {
        guard let seconds = DurationText.wholeSeconds(text), seconds > 0 else { return nil }
        return seconds
    }
}
