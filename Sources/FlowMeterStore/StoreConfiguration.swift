import FlowMeterCore
import FlowMeterAccounting
import Foundation

/// A bucket length. Hour is the default because it is no finer than Tor's own
/// published bandwidth history aggregation; finer resolutions describe the
/// timing of traffic and are opt-in (docs/storage.md, "Privacy").
public struct BucketResolution: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Seconds; divides 86400 so every bucket lies inside one UTC day.
    public var rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let fiveMinutes = BucketResolution(rawValue: 300)
    public static let hour = BucketResolution(rawValue: 3600)
    public static let day = BucketResolution(rawValue: 86_400)

    /// Finer than this needs `allowFineResolution`.
    public static let privacyFloor = BucketResolution.hour

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String {
        switch rawValue {
        case 86_400: return "1d"
        case let s where s % 3600 == 0: return "\(s / 3600)h"
        case let s where s % 60 == 0: return "\(s / 60)m"
        default: return "\(rawValue)s"
        }
    }

    /// UTC start (seconds) of the bucket that contains `seconds`.
    @inline(__always)
    public func start(of seconds: Int64) -> Int64 {
        let r = Int64(rawValue)
        let q = seconds / r
        return (seconds % r < 0 ? q - 1 : q) * r
    }
}

/// One resolution and how long its buckets are kept (vnstat keeps 5-minute,
/// hour, day, month and year tables with their own limits; we keep fewer).
public struct ResolutionRetention: Hashable, Sendable {
    public var resolution: BucketResolution
    /// Buckets older than this (by their start) are deleted; nil keeps them for ever.
    public var keepSeconds: Int64?
    public init(_ resolution: BucketResolution, keepDays: Int?) {
        self.resolution = resolution
        self.keepSeconds = keepDays.map { Int64($0) * 86_400 }
    }
}

/// How the store is written. Defaults: hour buckets kept 90 days, day buckets
/// kept 5 years (so quotas can be recomputed from hours for a quarter and
/// reports go back years), a flush every 60 s of clock time.
public struct StoreConfiguration: Sendable, Equatable {
    public enum Durability: String, Sendable {
        /// WAL + synchronous=NORMAL: a crash of the agent loses nothing
        /// committed; a power loss may lose commits since the last checkpoint.
        case normal
        /// WAL + synchronous=FULL: one fsync of the WAL per flush, so a power
        /// loss also loses at most one flush interval.
        case full
    }

    public var resolutions: [ResolutionRetention]
    /// Seconds of clock time between flushes (1…3600).
    public var flushIntervalSeconds: Int64
    public var durability: Durability
    /// A clock step forward larger than this is logged and recorded as a gap
    /// (`clock_jump`) rather than taken as time during which nothing happened.
    public var clockJumpThresholdSeconds: Int64
    /// How long a reader waits for the writer's lock before failing.
    public var busyTimeoutSeconds: Double
    /// Resolutions finer than an hour record the timing of traffic: the
    /// operator must ask for them (docs/storage.md, "Privacy warning").
    public var allowFineResolution: Bool

    public init(resolutions: [ResolutionRetention] = StoreConfiguration.defaultResolutions,
                flushIntervalSeconds: Int64 = 60,
                durability: Durability = .normal,
                clockJumpThresholdSeconds: Int64 = 3600,
                busyTimeoutSeconds: Double = 5,
                allowFineResolution: Bool = false) {
        self.resolutions = resolutions.sorted { $0.resolution < $1.resolution }
        self.flushIntervalSeconds = flushIntervalSeconds
        self.durability = durability
        self.clockJumpThresholdSeconds = clockJumpThresholdSeconds
        self.busyTimeoutSeconds = busyTimeoutSeconds
        self.allowFineResolution = allowFineResolution
    }

    public static let defaultResolutions = [
        ResolutionRetention(.hour, keepDays: 90),
        ResolutionRetention(.day, keepDays: 5 * 366),
    ]

    /// What is wrong with this configuration, in words; nil when it is usable.
    /// Resolutions finer than an hour need `allowFineResolution` (a privacy
    /// decision the operator makes on purpose, docs/storage.md).
    public func problem() -> String? {
        if resolutions.isEmpty { return "at least one resolution is needed" }
        for r in resolutions {
            if r.resolution.rawValue < 60 || 86_400 % r.resolution.rawValue != 0 {
                return "resolution \(r.resolution.rawValue) s must be at least 60 s and divide a day"
            }
            if r.resolution < .privacyFloor && !allowFineResolution {
                return "resolution \(r.resolution) is finer than 1h: it records the timing of traffic; allow it explicitly (see docs/storage.md, Privacy)"
            }
            if let k = r.keepSeconds, k < Int64(r.resolution.rawValue) { return "retention of \(r.resolution) is shorter than one bucket" }
        }
        if Set(resolutions.map(\.resolution)).count != resolutions.count { return "a resolution is listed twice" }
        if !(1...3600).contains(flushIntervalSeconds) { return "flush interval must be 1…3600 s" }
        return nil
    }

    var finest: BucketResolution { resolutions[0].resolution }
}
