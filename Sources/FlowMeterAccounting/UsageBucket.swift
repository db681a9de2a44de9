import FlowMeterCore
import Foundation

/// Traffic of one (relay, category, direction) during one time bucket, as the
/// accounting store keeps it. Labels, never addresses: nothing here can name a
/// peer. `start` is a UTC instant; periods are derived in the quota's zone.
public struct UsageBucket: Sendable, Equatable {
    public var start: Date
    public var durationSeconds: Int
    public var relay: String
    public var category: String
    public var direction: String
    public var packets: UInt64
    /// Wire bytes (pcap `len`): what a provider bills.
    public var bytes: UInt64
    /// Transport payload bytes.
    public var payloadBytes: UInt64
    /// Transport payload with non-internal peers: what Tor's accounting counts.
    public var torPayloadBytes: UInt64

    public init(start: Date, durationSeconds: Int, relay: String, category: String, direction: String,
                packets: UInt64, bytes: UInt64, payloadBytes: UInt64, torPayloadBytes: UInt64) {
        self.start = start; self.durationSeconds = durationSeconds
        self.relay = relay; self.category = category; self.direction = direction
        self.packets = packets; self.bytes = bytes
        self.payloadBytes = payloadBytes; self.torPayloadBytes = torPayloadBytes
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
}
