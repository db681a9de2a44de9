import Foundation

/// A span during which an interface was not captured: its counts for that
/// span are unknown, not zero. `endNanos` is nil while the gap is open.
public struct CaptureGap: Sendable, Equatable, Codable {
    public var startNanos: Int64
    public var endNanos: Int64?
    public var reason: String
}

/// What one worker reports at a scrape.
public struct CaptureWorkerStatus: Sendable, Equatable {
    public var interface: String
    public var worker: Int
    public var up: Bool
    /// Packets the kernel dropped because this handle's ring was full
    /// (`pcap_stats` ps_drop, widened to 64 bits).
    public var kernelRingDrops: UInt64
    public var kernelReceived: UInt64
    public var gaps: UInt64
    public var gapSeconds: Double
    public var recentGaps: [CaptureGap]
    public var lastError: String?
}
