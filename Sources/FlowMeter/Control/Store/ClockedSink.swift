/// Wraps the replay path's sink so the captures' own timestamps drive the
/// accounting clock: a month of captures becomes a month of history.
///
/// Per packet it does one unsigned compare of the timestamp against the
/// current window `[windowStart, nextCheck)` (the finest bucket, cut short at
/// the next flush) and then hands the packet on. Only when a packet falls
/// outside the window does it snapshot the counters — taken *before* that
/// packet is counted, so the counts belong to the previous packet's bucket —
/// and tell the accumulator, which may flush. A packet earlier than the window
/// (merged or reordered captures) leaves it too, so a step back is seen at
/// once rather than when time catches up.
///
/// Single-threaded like `OfflineCapture.read(into:)`. Keep one sink and one
/// block across all replayed files (the block is cumulative); if a file gets a
/// new `CounterBlock`, make a new sink and call
/// `accumulator.countersRestarted()` first. Call `finish()` after the last
/// capture so the tail is observed and flushed.
public struct ClockedSink<Inner: PacketSink>: PacketSink {
    public var inner: Inner
    public let block: CounterBlock
    public let accumulator: BucketAccumulator
    private var windowStart: Int64 = 0
    private var windowLength: UInt64 = 0
    private var lastTimestamp: Int64?

    /// - Parameters:
    ///   - inner: the sink that counts into `block` (e.g. the replay's `PacketCounter` sink).
    ///   - block: the counters `inner` writes, snapshotted at bucket edges.
    public init(inner: Inner, block: CounterBlock, accumulator: BucketAccumulator) {
        self.inner = inner
        self.block = block
        self.accumulator = accumulator
    }

    @inline(__always)
    public mutating func consume(_ summary: PacketSummary) {
        let ts = summary.timestampNanos
        // One compare covers both sides of the window: below windowStart wraps to a huge value.
        if UInt64(bitPattern: ts &- windowStart) >= windowLength { crossEdge(to: ts) }
        lastTimestamp = ts
        inner.consume(summary)
    }

    @inline(never)
    private mutating func crossEdge(to ts: Int64) {
        if let last = lastTimestamp {
            accumulator.observe(block.snapshot(), atNanos: last)
        }
        accumulator.advanceClock(toNanos: ts)
        windowStart = accumulator.currentBucketStartNanos
        let next = accumulator.nextCheckNanos
        windowLength = next > windowStart ? UInt64(next - windowStart) : 0
    }

    /// Observes the counts of the last window and flushes (reason `shutdown`).
    /// - Returns: whether everything was written.
    @discardableResult
    public func finish() -> Bool {
        if let last = lastTimestamp {
            accumulator.observe(block.snapshot(), atNanos: last)
            accumulator.setState(String(last), for: AccountingStore.lastObservationKey)
        }
        return accumulator.flush(reason: .shutdown)
    }
}
