import FlowMeterFormat
import FlowMeterCore
import FlowMeterAccounting
import Foundation

/// One relay's control-port view: `torControl` in `/api/v1/status`,
/// `tor_control` of a quota in `flowmeter forecast --json`. Instants are
/// ISO-8601 UTC, nil as null.
public struct TorControlJSON: Codable, Sendable, Equatable {
    public var relay: String
    public var up: Bool
    public var fingerprint: String?
    public var accountingEnabled: Bool?
    public var hibernating: String?
    public var rule: String
    public var accountingMaxBytes: UInt64
    public var readBytes: UInt64?
    public var writtenBytes: UInt64?
    public var accountingBytes: UInt64?
    public var intervalStart: String?
    public var intervalEnd: String?
    public var trafficReadBytes: UInt64?
    public var trafficWrittenBytes: UInt64?
    public var readAt: String?
    public var wireToTorBytesRatio: Double?
    public var rateBytesPerSecond: Double?
    public var softLimitBytes: UInt64?
    public var predictedSoftLimit: String?
    public var predictedHardLimit: String?
    public var predictedWakeup: String?

    public func encode(to encoder: Encoder) throws { try encodeAllKeys(self, to: encoder) }

    public init(_ s: TorControlStatus) {
        relay = s.relay; up = s.up; rule = s.rule.rawValue; accountingMaxBytes = s.accountingMax
        let f = s.figures
        fingerprint = f?.fingerprint; accountingEnabled = f?.accountingEnabled; hibernating = f?.hibernating?.rawValue
        readBytes = f?.bytesRead; writtenBytes = f?.bytesWritten; accountingBytes = s.accountingBytes
        intervalStart = f?.intervalStart.map(Format.iso8601); intervalEnd = f?.intervalEnd.map(Format.iso8601)
        trafficReadBytes = f?.trafficRead; trafficWrittenBytes = f?.trafficWritten; readAt = f.map { Format.iso8601($0.readAt) }
        wireToTorBytesRatio = s.wireToTorRatio
        let p = s.prediction
        rateBytesPerSecond = p?.rate; softLimitBytes = p?.softLimit
        predictedSoftLimit = p?.softLimitAt.map(Format.iso8601); predictedHardLimit = p?.hardLimitAt.map(Format.iso8601); predictedWakeup = p?.wakeAt.map(Format.iso8601)
    }
}
