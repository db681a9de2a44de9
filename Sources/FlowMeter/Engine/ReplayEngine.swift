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
                              reader: OfflineReader = .automatic,
                              progress: ((String, OfflineCapture, ReadTotals) -> Void)? = nil) -> EngineResult {
        var configuration = EngineConfiguration(workers: workers,
                                                flowTable: FlowTableConfiguration(capacity: flowTableCapacity))
        configuration.reader = reader
        return ReplayEngine(model: model, configuration: configuration).replay(files: files, progress: progress)
    }

    public func replay(files: [String], progress: ((String, OfflineCapture, ReadTotals) -> Void)? = nil) -> EngineResult {
        let pipeline = EnginePipeline(model: model, configuration: configuration)
        pipeline.start()
        // The workers are pinned to CPUs 1…N when there are enough CPUs; the
        // reader then keeps CPU 0 for the replay, so the scheduler never puts
        // it on a worker's CPU. The caller's affinity comes back afterwards.
        var saved = CPcapShim_Affinity()
        let pinReader = pipeline.workersPinned && CPcapShim_currentAffinity(&saved) == 0
        if pinReader { _ = CPcapShim_pinCurrentThread(0) }
        defer { if pinReader { _ = CPcapShim_restoreAffinity(&saved) } }
        var result = ReplayResult(labels: model.relayLabels, counters: CounterSnapshot(layout: CounterLayout(relayCount: model.relayLabels.count)))
        var sink = PipelineSink(pipeline: pipeline)
        for path in files {
            // Same per-file handling (errors, undecoded link types) as the single-threaded replay.
            result.record(Replay.readOne(path, into: &sink, reader: configuration.reader, progress: progress))
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
}
