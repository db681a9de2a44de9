import CLinuxShim
import CPcapShim

/// What a replay through the engine counted.
public struct EngineResult: Sendable {
    /// Counters, totals and per-file outcomes, as the single-threaded replay reports them.
    public var replay: ReplayResult
    public var connections: ConnectionSnapshot
    public var flowTable: FlowTableInfo
    /// Per worker; always zero for replay (the reader waits instead of dropping).
    public var ringDrops: [UInt64]
    public var workers: Int
    /// CPU time of each worker thread (the reader's is the caller's thread).
    public var workerCPUNanos: [UInt64] = []

    public var counters: CounterSnapshot { replay.counters }
    /// What the reader itself read (an independent count for the invariant
    /// "categories + reasons = records read").
    public var totals: ReadTotals { replay.totals }
    /// One per file that could not be read whole; counting went on with the next file.
    public var errors: [CaptureError] { replay.errors }
}

/// Replays capture files through the per-core pipeline: the caller's thread
/// reads and decodes, `workers` threads classify, count and track flows.
public struct ReplayEngine: Sendable {
    public let model: HostModel
    public let configuration: EngineConfiguration

    public init(model: HostModel, configuration: EngineConfiguration) {
        self.model = model
        self.configuration = configuration
    }

    /// The entry point the CLI calls.
    public static func replay(files: [String], model: HostModel, workers: Int,
                              flowTableCapacity: Int = FlowTableConfiguration.defaultCapacity,
                              reader: OfflineReader = .automatic, clock: (any ReplayClock)? = nil,
                              skipping: [UInt64] = [],
                              progress: ((String, OfflineCapture, ReadTotals) -> Void)? = nil) -> EngineResult {
        var configuration = EngineConfiguration(workers: workers,
                                                flowTable: FlowTableConfiguration(capacity: flowTableCapacity))
        configuration.reader = reader
        return ReplayEngine(model: model, configuration: configuration).replay(files: files, clock: clock, skipping: skipping,
                                                                                progress: progress)
    }

    /// - Parameter clock: when given, the captures' own timestamps drive it
    ///   (the accounting store's buckets and flushes), so a month of captures
    ///   becomes a month of history; it sees exact counters at each edge.
    /// - Parameter skipping: per file (by position), records at its start an
    ///   earlier import counted; they are read past, not counted.
    public func replay(files: [String], clock: (any ReplayClock)? = nil, skipping: [UInt64] = [],
                       progress: ((String, OfflineCapture, ReadTotals) -> Void)? = nil) -> EngineResult {
        // Whole tables from the start, so that connection counts never
        // depend on when a table grew; their pages still fault in as flows
        // use them, so a three-packet file does not touch 60 MiB.
        var lazy = configuration
        lazy.flowTableGrowth = .whole
        let pipeline = EnginePipeline(model: model, configuration: lazy)
        pipeline.start()
        // The workers are pinned to CPUs 1…N when there are enough CPUs; the
        // reader then keeps CPU 0 for the replay, so the scheduler never puts
        // it on a worker's CPU. The caller's affinity comes back afterwards.
        var saved = CLinuxShim_Affinity()
        let pinReader = pipeline.workersPinned && CLinuxShim_currentAffinity(&saved) == 0
        if pinReader { _ = CLinuxShim_pinCurrentThread(0) }
        defer { if pinReader { _ = CLinuxShim_restoreAffinity(&saved) } }
        var result = ReplayResult(labels: model.relayLabels, counters: CounterSnapshot(layout: CounterLayout(relayCount: model.relayLabels.count)))
        if let clock {
            var sink = ClockedPipelineSink(pipeline: pipeline, clock: clock)
            for (i, path) in files.enumerated() {
                let skip = i < skipping.count ? skipping[i] : 0
                result.record(Replay.readOne(path, into: &sink, reader: configuration.reader, skipping: skip, progress: progress))
            }
            pipeline.drain()
            clock.finish(counters: pipeline.snapshot().counters, lastTimestampNanos: sink.lastTimestamp)
        } else {
            var sink = PipelineSink(pipeline: pipeline)
            for (i, path) in files.enumerated() {
                let skip = i < skipping.count ? skipping[i] : 0
                result.record(Replay.readOne(path, into: &sink, reader: configuration.reader, skipping: skip, progress: progress))
            }
        }
        let snapshot = pipeline.finish(endTimestampNanos: result.totals.lastTimestampNanos)
        result.counters = snapshot.counters
        return EngineResult(replay: result, connections: snapshot.connections, flowTable: snapshot.flowTable,
                            ringDrops: snapshot.ringDrops, workers: configuration.workers,
                            workerCPUNanos: snapshot.workerCPUNanos)
    }
}

/// Feeds a pipeline from `OfflineCapture.read`, waiting when a ring is full.
struct PipelineSink: PacketSink {
    let pipeline: EnginePipeline

    @inline(__always)
    mutating func consume(_ summary: PacketSummary) {
        pipeline.submit(summary)
    }

    @inline(__always)
    mutating func decode(_ captured: UnsafeRawBufferPointer, wireLength: UInt32, timestampNanos: Int64,
                         with decoder: inout PacketDecoder) -> PacketSummary {
        pipeline.submit(decoding: captured, wireLength: wireLength, timestampNanos: timestampNanos, with: &decoder)
    }
}

/// What drives the accounting clock from a replay: the store side implements
/// it (FlowMeterStore's `BucketClock`). The replay calls it only when a packet
/// leaves the current window, never per packet, and always with exact
/// counters: every packet before the one that left the window is counted.
public protocol ReplayClock: AnyObject {
    /// `counters` hold every packet up to the one stamped `lastTimestampNanos`
    /// (nil before the first packet); the next packet is stamped `nextNanos`.
    /// Returns the new window: packets in `[start, start + length)` need no call.
    func cross(counters: CounterSnapshot?, lastTimestampNanos: Int64?, nextNanos: Int64) -> (start: Int64, length: UInt64)
    /// After the last file: the final counters, and the last packet's stamp.
    func finish(counters: CounterSnapshot, lastTimestampNanos: Int64?)
}

/// `PipelineSink` plus the accounting clock: one unsigned compare per packet
/// against the window; at an edge the workers are drained so the counters
/// handed to the clock are exact.
struct ClockedPipelineSink: PacketSink {
    let pipeline: EnginePipeline
    let clock: any ReplayClock
    private var windowStart: Int64 = 0
    private var windowLength: UInt64 = 0
    private(set) var lastTimestamp: Int64?

    init(pipeline: EnginePipeline, clock: any ReplayClock) {
        self.pipeline = pipeline
        self.clock = clock
    }

    @inline(__always)
    mutating func consume(_ summary: PacketSummary) {
        moveClock(to: summary.timestampNanos)
        pipeline.submit(summary)
    }

    /// As `consume`, the record decoded straight into the pipeline's slot.
    @inline(__always)
    mutating func decode(_ captured: UnsafeRawBufferPointer, wireLength: UInt32, timestampNanos ts: Int64,
                         with decoder: inout PacketDecoder) -> PacketSummary {
        moveClock(to: ts)
        return pipeline.submit(decoding: captured, wireLength: wireLength, timestampNanos: ts, with: &decoder)
    }

    /// Before a packet stamped `ts` is submitted: crosses the window's edge
    /// if `ts` left it, and remembers `ts` unless it is no valid time.
    @inline(__always)
    private mutating func moveClock(to ts: Int64) {
        // One compare covers both sides of the window: below windowStart wraps
        // to a huge value, and so does `invalidTimestamp`, which lies outside
        // every window.
        if UInt64(bitPattern: ts &- windowStart) >= windowLength {
            guard crossEdge(to: ts) else { return }
        }
        lastTimestamp = ts
    }

    /// Moves the window to `ts`; false for a record with no valid time, which
    /// is counted in the current window and moves nothing.
    @inline(never)
    private mutating func crossEdge(to ts: Int64) -> Bool {
        if ts == OfflineCapture.invalidTimestamp { return false }
        var counters: CounterSnapshot? = nil
        if lastTimestamp != nil {
            pipeline.drain()
            counters = pipeline.snapshot().counters
        }
        (windowStart, windowLength) = clock.cross(counters: counters, lastTimestampNanos: lastTimestamp, nextNanos: ts)
        return true
    }
}
