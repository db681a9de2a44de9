import FlowMeterFormat
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
    public struct Interface: Codable, Sendable, Equatable {
        public var name: String
        public var up: Bool
        public var workers: Int
        public var kernelRingDrops: UInt64
        /// Frames the NIC never delivered (a loss).
        public var interfaceDrops: UInt64
        /// The stack's rx_dropped since the start: informative, not a loss.
        public var rxDropped: UInt64?
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

    /// 2: keys are snake_case, like every other FlowMeter document.
    public var schema = 2
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
    /// Live views' extras (StatusLive.swift); absent in documents of older agents.
    public var connections: [Connections]? = nil
    public var quotas: [QuotaLine]? = nil
    /// Each relay's own figures from its tor's control port (absent without one).
    public var torControl: [TorControlJSON]?
    /// Today's and this period's totals, each quota's verdict and Tor's
    /// state: what `top` and the dashboard open with (absent in the final
    /// counters written on stop).
    public var glance: Glance? = nil

    public init(_ r: AgentReading) {
        version = r.version
        startedAt = Format.iso8601Milliseconds(seconds: r.startTimeSeconds)
        readAt = Format.iso8601Milliseconds(seconds: r.nowSeconds)
        lowerBound = r.isLowerBound
        lowerBoundReasons = r.lowerBoundReasons
        let table = r.cells
        var cells: [Cell] = []
        var packets: UInt64 = 0, bytes: UInt64 = 0
        for relay in table.relays {
            for c in Category.allCases {
                for d in Direction.allCases {
                    let cell = Cell(relay: relay, category: c, direction: d, table.counts(relay: relay, c, d))
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
                rxDropped: r.interfaceRxDropped.first { $0.interface == name }?.dropped ?? 0,
                gaps: s.gaps, gapSeconds: s.gapSeconds,
                recentGaps: gaps.map { Gap(start: Format.iso8601Milliseconds(seconds: Double($0.startNanos) / 1e9), end: $0.endNanos.map { Format.iso8601Milliseconds(seconds: Double($0) / 1e9) }, reason: $0.reason) },
                lastError: ws.compactMap(\.lastError).first)
        }
        connections = Self.connections(r)
        quotas = r.quotas.isEmpty ? nil : Self.quotaLines(r.quotas)
        glance = r.glance
    }

    public func json() -> Data {
        // Safe to force: every field is a plain string, number, bool or array.
        try! JSONStyle.encoder().encode(self)
    }
}
