import FlowMeterCore
import Foundation

/// Traffic of one (relay, category, direction) during one time bucket, as the
/// accounting store keeps it. Labels, never addresses: nothing here can name a
/// peer. `start` is a UTC instant; periods are derived in the quota's zone.
/// The cell's labels and counts read through (`bucket.relay`, `bucket.bytes`).
@dynamicMemberLookup
public struct UsageBucket: Sendable, Equatable {
    public var start: Date
    public var durationSeconds: Int
    public var cell: Cell

    public init(start: Date, durationSeconds: Int, cell: Cell) {
        self.start = start; self.durationSeconds = durationSeconds; self.cell = cell
    }

    public subscript<T>(dynamicMember path: WritableKeyPath<CellLabels, T>) -> T {
        get { cell.labels[keyPath: path] }
        set { cell.labels[keyPath: path] = newValue }
    }

    public subscript<T>(dynamicMember path: WritableKeyPath<CellCounts, T>) -> T {
        get { cell.counts[keyPath: path] }
        set { cell.counts[keyPath: path] = newValue }
    }
}

/// Where quotas, forecasts and reports read history from (the SQLite store,
/// or a file of per-interval counts for backtests).
public protocol UsageHistorySource {
    /// Buckets whose start lies in [from, to), in start order.
    func buckets(from: Date, to: Date) throws -> [UsageBucket]
    /// Time spans in which capture was not running or dropped packets, so
    /// counts there are a lower bound. Empty when unknown.
    func gaps(from: Date, to: Date) throws -> [DateInterval]
    /// When observing began, if the source knows it more precisely than
    /// its earliest bucket's start (which lies on a bucket edge).
    func observationStart() throws -> Date?
}

extension UsageHistorySource {
    public func observationStart() throws -> Date? { nil }
}
