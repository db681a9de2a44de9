import FlowMeterCore

/// Lets the captures' own timestamps drive the accounting clock during a
/// replay (`ReplayEngine.replay(files:clock:)`): a month of captures becomes
/// a month of history.
///
/// The window is the finest bucket, cut short at the next flush. When a
/// packet falls outside it, the replay hands over the counters as they were
/// *before* that packet — they belong to the previous packet's bucket — and
/// the accumulator may flush. A packet earlier than the window (merged or
/// reordered captures) leaves it too, so a step back is seen at once.
/// The counters are cumulative over the whole replay; for a second replay
/// make a new clock and call `accumulator.countersRestarted()` first.
public final class BucketClock: ReplayClock {
    public let accumulator: BucketAccumulator
    /// Whether the final flush wrote everything (set by `finish`).
    public private(set) var flushed = true

    public init(accumulator: BucketAccumulator) { self.accumulator = accumulator }

    public func cross(counters: CounterSnapshot?, lastTimestampNanos: Int64?, nextNanos: Int64) -> (start: Int64, length: UInt64) {
        if let counters, let last = lastTimestampNanos { accumulator.observe(counters, atNanos: last) }
        accumulator.advanceClock(toNanos: nextNanos)
        let start = accumulator.currentBucketStartNanos
        let next = accumulator.nextCheckNanos
        return (start, next > start ? UInt64(next - start) : 0)
    }

    /// Observes the counts of the last window and flushes (reason `shutdown`).
    public func finish(counters: CounterSnapshot, lastTimestampNanos: Int64?) {
        if let last = lastTimestampNanos {
            accumulator.observe(counters, atNanos: last)
            accumulator.setState(String(last), for: AccountingStore.lastObservationKey)
        }
        flushed = accumulator.flush(reason: .shutdown)
    }
}
