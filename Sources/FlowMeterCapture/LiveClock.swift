import Foundation

/// Monotonic and wall clocks, injected so tests can drive gaps and backoff.
public struct LiveClock: Sendable {
    public var monotonicNanos: @Sendable () -> UInt64
    public var wallNanos: @Sendable () -> Int64
    public init(monotonicNanos: @escaping @Sendable () -> UInt64, wallNanos: @escaping @Sendable () -> Int64) {
        self.monotonicNanos = monotonicNanos
        self.wallNanos = wallNanos
    }
    public static let system = LiveClock(
        monotonicNanos: {
            var ts = timespec()
            clock_gettime(CLOCK_MONOTONIC, &ts)
            return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
        },
        wallNanos: {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
        })
}
