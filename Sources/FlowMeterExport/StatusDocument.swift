import FlowMeterCore
import FlowMeterCapture
import FlowMeterAccounting
import FlowMeterReports
import Foundation

/// `/api/v1/status` and the final counters written on stop: the same
/// reading as `/metrics`, as JSON with a stable schema (`schema` is bumped on
/// any incompatible change). Instants are UTC (ISO 8601). No peer address or
/// port appears anywhere in it.
public struct StatusDocument: Codable, Sendable, Equatable {
    public struct Cell: Codable, Sendable, Equatable {
        public var relay: String
        public var category: String
        public var direction: String
        public var packets: UInt64
        public var bytes: UInt64
        public var payloadBytes: UInt64
        public var torPayloadBytes: UInt64
    }
    public struct Interface: Codable, Sendable, Equatable {
        public var name: String
        public var up: Bool
        public var workers: Int
        public var kernelRingDrops: UInt64
        public var interfaceDrops: UInt64
        public var gaps: UInt64
        public var gapSeconds: Double
        public var recentGaps: [Gap]
        public var lastError: String?
    }
    public struct Gap: Codable, Sendable, Equatable {
        public var start: String
        public var end: String?
        public var reason: String
    }
    public struct Totals: Codable, Sendable, Equatable {
        public var packets: UInt64
        public var bytes: UInt64
        public var undecodedPackets: UInt64
        public var undecodedBytes: UInt64
    }

    public var schema = 1
    public var version: String
    public var startedAt: String
    public var readAt: String
    /// True when drops or gaps happened since the start: every count below
    /// is then a lower bound, for the reasons listed.
    public var lowerBound: Bool
    public var lowerBoundReasons: [String]
    public var totals: Totals
    public var categories: [Cell]
    public var undecoded: [String: UInt64]
    public var interfaces: [Interface]
    /// Each relay's own figures from its tor's control port (absent without one).
    public var torControl: [TorControlJSON]?

    public init(_ r: AgentReading) {
        version = r.version
        startedAt = Self.iso8601(seconds: r.startTimeSeconds)
        readAt = Self.iso8601(seconds: r.nowSeconds)
        lowerBound = r.isLowerBound
        lowerBoundReasons = r.lowerBoundReasons
        let table = r.cells
        var cells: [Cell] = []
        var packets: UInt64 = 0, bytes: UInt64 = 0
        for relay in table.relays {
            for c in Category.allCases {
                for d in Direction.allCases {
                    let cell = Cell(relay: relay, category: c.label, direction: d.label,
                                    packets: table.value(relay: relay, c, d, .packets),
                                    bytes: table.value(relay: relay, c, d, .bytes),
                                    payloadBytes: table.value(relay: relay, c, d, .payloadBytes),
                                    torPayloadBytes: table.value(relay: relay, c, d, .torPayloadBytes))
                    packets &+= cell.packets
                    bytes &+= cell.bytes
                    if cell.packets > 0 { cells.append(cell) }
                }
            }
        }
        categories = cells
        torControl = r.torControl.isEmpty ? nil : r.torControl.map(TorControlJSON.init)
        var undecoded: [String: UInt64] = [:]
        var undecodedPackets: UInt64 = 0, undecodedBytes: UInt64 = 0
        for (reason, p, b) in r.reasons where p > 0 {
            undecoded[reason.label] = p
            undecodedPackets &+= p
            undecodedBytes &+= b
        }
        self.undecoded = undecoded
        totals = Totals(packets: packets &+ undecodedPackets, bytes: bytes &+ undecodedBytes,
                        undecodedPackets: undecodedPackets, undecodedBytes: undecodedBytes)
        interfaces = r.interfaces.map { name in
            let s = r.interfaceStatus(name)
            let ws = r.workers.filter { $0.interface == name }
            let gaps = ws.max { $0.recentGaps.count < $1.recentGaps.count }?.recentGaps ?? []
            return Interface(
                name: name, up: s.up, workers: ws.count, kernelRingDrops: s.kernelRingDrops,
                interfaceDrops: r.interfaceDrops.first { $0.interface == name }?.dropped ?? 0,
                gaps: s.gaps, gapSeconds: s.gapSeconds,
                recentGaps: gaps.map { Gap(start: Self.iso8601(nanos: $0.startNanos), end: $0.endNanos.map { Self.iso8601(nanos: $0) }, reason: $0.reason) },
                lastError: ws.compactMap(\.lastError).first)
        }
    }

    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // Safe to force: every field is a plain string, number, bool or array.
        return try! encoder.encode(self)
    }

    static func iso8601(seconds: Double) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date(timeIntervalSince1970: seconds))
    }

    static func iso8601(nanos: Int64) -> String { iso8601(seconds: Double(nanos) / 1e9) }
}
