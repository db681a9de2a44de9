/// What a replay counted.
public struct EngineResult: Sendable {
    public var counters: CounterSnapshot
    public var connections: ConnectionSnapshot
    public var flowTable: FlowTableInfo
    /// What the reader itself read (an independent count for the invariant
    /// "categories + reasons = records read").
    public var totals: ReadTotals
    /// Per worker; always zero for replay (the reader waits instead of dropping).
    public var ringDrops: [UInt64]
    /// One per file that could not be read whole; counting went on with the next file.
    public var errors: [CaptureError]
    public var workers: Int
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
                              flowTableCapacity: Int = FlowTableConfiguration.defaultCapacity) -> EngineResult {
        let configuration = EngineConfiguration(workers: workers,
                                                flowTable: FlowTableConfiguration(capacity: flowTableCapacity))
        return ReplayEngine(model: model, configuration: configuration).replay(files: files)
    }

    public func replay(files: [String]) -> EngineResult {
        let pipeline = EnginePipeline(model: model, configuration: configuration)
        pipeline.start()
        var totals = ReadTotals()
        var errors: [CaptureError] = []
        for path in files {
            let capture: OfflineCapture
            do {
                capture = try OfflineCapture(path: path)
            } catch {
                errors.append(error)
                continue
            }
            var decoder = PacketDecoder(linkType: capture.linkType)
            var sink = PipelineSink(pipeline: pipeline)
            do {
                totals += try capture.read(into: &sink, decoder: &decoder)
            } catch {
                // What was read before the damage was counted; keep its totals.
                totals += sink.seen
                errors.append(error)
            }
        }
        let snapshot = pipeline.finish(endTimestampNanos: totals.lastTimestampNanos)
        return EngineResult(counters: snapshot.counters, connections: snapshot.connections,
                            flowTable: snapshot.flowTable, totals: totals, ringDrops: snapshot.ringDrops,
                            errors: errors, workers: configuration.workers)
    }
}

/// Feeds a pipeline from `OfflineCapture.read`, waiting when a ring is full,
/// and keeps its own totals in case the read ends in an error.
struct PipelineSink: PacketSink {
    let pipeline: EnginePipeline
    var seen = ReadTotals()

    @inline(__always)
    mutating func consume(_ summary: PacketSummary) {
        seen.packets &+= 1
        seen.bytes &+= UInt64(summary.wireLength)
        if seen.firstTimestampNanos == nil { seen.firstTimestampNanos = summary.timestampNanos }
        seen.lastTimestampNanos = summary.timestampNanos
        pipeline.submit(summary)
    }
}
