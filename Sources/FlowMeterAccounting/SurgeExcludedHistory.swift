import FlowMeterCore
import Foundation

/// A history with the bytes counted during surges taken out: what a quota
/// would have used without the floods, for `forecast`'s second projection.
/// Each span's bytes are spread evenly over its duration and taken from the
/// buckets of its cell that it overlaps; payload fields shrink in the same
/// proportion as wire bytes (a span records wire bytes only).
public struct SurgeExcludedHistory: UsageHistorySource {
    public let base: any UsageHistorySource
    public let spans: [SurgeSpan]

    public init(base: any UsageHistorySource, spans: [SurgeSpan]) {
        self.base = base
        self.spans = spans
    }

    public func buckets(from: Date, to: Date) throws -> [UsageBucket] {
        try base.buckets(from: from, to: to).map(subtractingSurges)
    }

    public func gaps(from: Date, to: Date) throws -> [DateInterval] { try base.gaps(from: from, to: to) }

    /// Bytes of `span` that fall in [from, to) (pro rata by time).
    public static func share(of span: SurgeSpan, from: Date, to: Date) -> Double {
        let end = span.end ?? span.start
        let length = end.timeIntervalSince(span.start)
        guard length > 0 else { return from <= span.start && span.start < to ? Double(span.bytes) : 0 }
        let overlap = min(end, to).timeIntervalSince(max(span.start, from))
        return Double(span.bytes) * max(0, min(1, overlap / length))
    }

    func subtractingSurges(_ b: UsageBucket) -> UsageBucket {
        let end = b.start.addingTimeInterval(Double(b.durationSeconds))
        var surge = 0.0
        for s in spans where s.relay == b.relay && s.category == b.category && s.direction == b.direction {
            surge += Self.share(of: s, from: b.start, to: end)
        }
        guard surge > 0, b.bytes > 0 else { return b }
        let keep = max(0, 1 - surge / Double(b.bytes))
        var out = b
        out.bytes = UInt64((Double(b.bytes) * keep).rounded())
        out.payloadBytes = UInt64((Double(b.payloadBytes) * keep).rounded())
        out.torPayloadBytes = UInt64((Double(b.torPayloadBytes) * keep).rounded())
        out.packets = UInt64((Double(b.packets) * keep).rounded())
        return out
    }
}
