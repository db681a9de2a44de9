import FlowMeterCore
import Foundation

/// A period's counts taken from another tool (tor's state file, vnstat) by
/// `flowmeter import`, so an agent installed mid-period reports the whole
/// period. Reports mark every amount that includes one.
///
/// The seed stands for [start, end): FlowMeter's own buckets that start
/// before `end` are already in it and are not added again.
public struct ImportedUsage: Sendable, Equatable {
    public enum Source: String, Sendable, CaseIterable {
        case torState = "tor-state"
        /// tor's own figures read on its control port (never stored).
        case torControl = "tor-control"
        case vnstatJSON = "vnstat-json"
        case vnstatDB = "vnstat-db"
    }
    /// Relay label the counts are filed under (`host` for a whole interface).
    public var relay: String
    /// Start of the period the other tool counted from.
    public var start: Date
    /// The instant its counts run to.
    public var end: Date
    public var read: UInt64
    public var written: UInt64
    public var source: Source
    public var imported: Date

    public init(relay: String, start: Date, end: Date, read: UInt64, written: UInt64, source: Source, imported: Date) {
        self.relay = relay; self.start = start; self.end = end
        self.read = read; self.written = written; self.source = source; self.imported = imported
    }

    /// The seed that counts toward `quota`'s period `interval`: one filed
    /// under a relay the scope counts, starting within an hour before the
    /// period's start or inside it (the latest such start wins).
    public static func seed(for quota: Quota, interval: DateInterval, among seeds: [ImportedUsage]) -> ImportedUsage? {
        seeds.filter { s in
            (quota.scope.relay == nil || quota.scope.relay == s.relay)
                && s.start >= interval.start.addingTimeInterval(-3600) && s.start < interval.end && s.end > s.start
        }.max { ($0.start, $0.end) < ($1.start, $1.end) }
    }
}

/// A history source that also keeps imported seeds (the SQLite store).
public protocol ImportedUsageSource {
    /// Seeds whose [start, end) overlaps `interval`.
    func importedUsage(overlapping interval: DateInterval) throws -> [ImportedUsage]
}
