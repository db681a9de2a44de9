import CLinuxShim
import CPcapShim
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How the engine is laid out.
public struct EngineConfiguration: Sendable, Equatable {
    /// Worker threads (each with its own ring, counters and flow table).
    public var workers: Int
    public var flowTable: FlowTableConfiguration
    /// Slots per ring (a power of two). Enough for milliseconds of a
    /// worker's work, longer than the reader's back-off sleep lasts even on a
    /// busy machine, so a worker never runs dry while the reader oversleeps.
    public var ringCapacity: Int = 32768
    /// Pushes collected before the reader publishes them to a worker.
    public var publishBatch: Int = 32
    /// Pin worker i to CPU i+1 when there is a CPU for every worker besides
    /// the reader's; otherwise leave placement to the scheduler.
    public var pinWorkers: Bool = true
    /// Who reads the capture files' records (replay only).
    public var reader: OfflineReader = .automatic
    /// Flow tables that start small and grow with the flows (live capture),
    /// or take their whole capacity at once (replay sets `.whole`: its
    /// connection counts must not depend on when a table grew).
    public var flowTableGrowth: FlowTableGrowth = .growing

    public init(workers: Int = EngineConfiguration.defaultWorkers,
                flowTable: FlowTableConfiguration = FlowTableConfiguration()) {
        self.workers = workers
        self.flowTable = flowTable
    }

    /// One worker per CPU beyond the reader's, at least one.
    public static var defaultWorkers: Int { max(1, Int(CLinuxShim_availableCPUs()) - 1) }
}

/// Everything the workers have counted, summed. Readable while they run.
public struct EngineSnapshot: Sendable, Equatable {
    public var counters: CounterSnapshot
    public var connections: ConnectionSnapshot
    public var flowTable: FlowTableInfo
    /// Packets each worker's ring dropped because it was full (live capture only).
    public var ringDrops: [UInt64]
    /// CPU time each worker thread used, known once the pipeline has finished
    /// (0 before): what the benchmark divides by packets to show where time goes.
    public var workerCPUNanos: [UInt64] = []
}

/// What travels through a ring: the summary and its symmetric flow hash,
/// which the reader computes anyway to pick the worker, so the worker does
/// not compute it again (it needs it once to prefetch and once to track).
struct RoutedSummary {
    var summary: PacketSummary
    /// How the packet is counted when the reader already knows
    /// (`Classifier.listenerCode`), else `.unknown`. Sits in the summary's
    /// tail padding: the element stays 72 bytes.
    var code: CellCode = .unknown
    /// Where the worker's entry prefetch found this flow's tag: slot in its
    /// bucket + 1, or 0 (not found, or not looked up yet). Also padding.
    var hint: UInt8 = 0
    var hash: UInt64
}

/// One worker: consumes its ring, classifies and counts, tracks flows.
final class Worker: @unchecked Sendable {
    // @unchecked Sendable — Safe: after `start` only the worker thread touches
    // `table` and the counters' writing side; others read atomics, or read
    // everything after `join`.
    let ring: SPSCRing<RoutedSummary>
    let counter: PacketCounter
    let connections: ConnectionCounters
    let table: FlowTable
    let cpu: Int32
    private var thread: pthread_t? = nil
    /// The worker thread's CPU time, written by it as it exits; read after `join`.
    private(set) var cpuNanos: UInt64 = 0

    init(classifier: Classifier, layout: CounterLayout, configuration: EngineConfiguration, tableCapacity: Int, cpu: Int32) {
        ring = SPSCRing(capacity: configuration.ringCapacity, publishBatch: configuration.publishBatch)
        counter = PacketCounter(classifier: classifier, block: CounterBlock(layout: layout))
        connections = ConnectionCounters(relayCount: layout.relayCount)
        table = FlowTable(capacity: tableCapacity, timeouts: configuration.flowTable.timeouts, connections: connections,
                          growth: configuration.flowTableGrowth)
        self.cpu = cpu
    }

    /// How many packets ahead the worker prefetches a flow-table bucket's
    /// tags and ranks, and then the entry the packet will use.
    static let bucketPrefetchDistance = 8
    static let entryPrefetchDistance = 4

    /// One contiguous batch from the ring, processed in order while the flow
    /// table lines of packets a few places ahead are loaded (two stages: the
    /// bucket first, then the entry chosen from it).
    @inline(__always)
    func process(batch: UnsafeMutableBufferPointer<RoutedSummary>) {
        let n = batch.count
        let b = Self.bucketPrefetchDistance, e = Self.entryPrefetchDistance
        for j in 0..<min(b, n) { table.prefetch(batch[j].summary, hash: batch[j].hash) }
        for j in 0..<min(e, n) { batch[j].hint = table.prefetchEntry(batch[j].summary, hash: batch[j].hash) }
        for i in 0..<n {
            if i + b < n { table.prefetch(batch[i + b].summary, hash: batch[i + b].hash) }
            if i + e < n { batch[i + e].hint = table.prefetchEntry(batch[i + e].summary, hash: batch[i + e].hash) }
            // Read in place rather than copying the 72-byte summary.
            // Safe: i < n = batch.count.
            table.countAndTrack(batch.baseAddress! + i, counter: counter)
        }
    }

    /// The worker thread's loop: bulk dequeue, back off when idle, stop after
    /// the ring is closed and drained.
    func run() {
        if cpu >= 0 { _ = CLinuxShim_pinCurrentThread(cpu) }  // best effort
        var backoff = Backoff()
        while true {
            if ring.consumeBatch(max: 256, { process(batch: $0) }) > 0 {
                backoff.reset()
                continue
            }
            if ring.isClosed {
                // Items published before close() are visible now (acquire in isClosed).
                while ring.consumeBatch(max: 256, { process(batch: $0) }) > 0 {}
                cpuNanos = threadCPUNanos()
                return
            }
            backoff.pause()
        }
    }

    func start() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(&tid, nil, { raw in
            // Safe: `raw` is the retained Worker passed below; we take that retain.
            let worker = Unmanaged<Worker>.fromOpaque(raw!).takeRetainedValue()
            worker.run()
            return nil
        }, context)
        // Failing to start a thread here is a resource exhaustion we cannot count around.
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = tid
    }

    func join() {
        guard let t = thread else { return }
        pthread_join(t, nil)
        thread = nil
    }
}

/// The per-core pipeline: one reader (the caller's thread) hands decoded
/// summaries, by symmetric flow hash, to N workers through SPSC rings.
///
/// Producer side (`offer`, `submit`, `flush`, `finish`) belongs to one thread:
/// the capture/reader thread. `snapshot()` may be called from any thread.
///
/// - `offer` never blocks: a full ring drops the packet and counts it, per
///   worker (live capture).
/// - `submit` waits for room: nothing is lost (replay of a file).
public final class EnginePipeline: @unchecked Sendable {
    // @unchecked Sendable — Safe: the producer methods are documented as
    // single-thread; everything else reads atomics or happens after join.
    public let configuration: EngineConfiguration
    public let layout: CounterLayout
    private let workers: [Worker]
    private let rings: [SPSCRing<RoutedSummary>]
    /// The same rings as unretained references: the per-packet push must not
    /// pay a retain/release (seen under callgrind). Safe: `rings` keeps them alive.
    private let ringRefs: UnsafeMutablePointer<Unmanaged<SPSCRing<RoutedSummary>>>
    private let workerCount: UInt64
    /// The classifier the workers share, for the reader's `listenerCode` in `submit`.
    private let classifier: Classifier
    /// The reader's memo of the last listener a connection attempt went to
    /// (`ListenerMemo`). Producer thread only; behind a pointer so the
    /// per-packet update pays no exclusivity check.
    private let listenerMemo: UnsafeMutablePointer<ListenerMemo>
    /// Where `submit(decoding:)` decodes a record before copying it to its
    /// worker's ring (the worker is known only from the decoded summary's
    /// hash). Producer thread only.
    private let scratch: UnsafeMutablePointer<RoutedSummary>
    /// Whether worker i runs pinned to CPU i+1 (`EngineConfiguration.pinWorkers`).
    public let workersPinned: Bool
    private var started = false
    private var finished = false

    public init(model: HostModel, configuration: EngineConfiguration) {
        precondition(configuration.workers >= 1, "at least one worker")
        self.configuration = configuration
        let classifier = Classifier(model)
        layout = CounterLayout(relayCount: classifier.relayCount)
        let n = configuration.workers
        let cpus = Int(CLinuxShim_availableCPUs())
        let pin = configuration.pinWorkers && n + 1 <= cpus
        workersPinned = pin
        let share = max(FlowTable.bucketSize, configuration.flowTable.capacity / n)
        var ws: [Worker] = []
        for i in 0..<n {
            ws.append(Worker(classifier: classifier, layout: layout, configuration: configuration,
                             tableCapacity: share, cpu: pin ? Int32(i + 1) : -1))
        }
        workers = ws
        rings = ws.map(\.ring)
        ringRefs = .allocate(capacity: n)
        for i in 0..<n { (ringRefs + i).initialize(to: Unmanaged.passUnretained(ws[i].ring)) }
        workerCount = UInt64(n)
        self.classifier = classifier
        listenerMemo = .allocate(capacity: 1)
        listenerMemo.initialize(to: ListenerMemo())
        scratch = .allocate(capacity: 1)
        scratch.initialize(to: RoutedSummary(summary: PacketSummary(), hash: 0))
    }

    public func start() {
        precondition(!started, "pipeline started twice")
        started = true
        for w in workers { w.start() }
    }

    /// The worker a packet goes to: both directions of a flow hash alike.
    @inline(__always)
    public func workerIndex(_ s: PacketSummary) -> Int { workerIndex(hash: s.symmetricFlowHash) }

    @inline(__always)
    func workerIndex(hash: UInt64) -> Int {
        // Multiply-shift maps the hash's top 32 bits evenly onto 0..<N.
        Int(truncatingIfNeeded: ((hash >> 32) &* workerCount) >> 32)
    }

    /// Live capture: hands `s` to its worker, or drops and counts it if that
    /// worker's ring is full. Never blocks.
    @inline(__always)
    @discardableResult
    public func offer(_ s: PacketSummary) -> Bool {
        // Safe: workerIndex < workers.count; `rings` holds every ring for our lifetime.
        let hash = s.symmetricFlowHash
        return ringRefs[workerIndex(hash: hash)]._withUnsafeGuaranteedRef { $0.tryPush(RoutedSummary(summary: s, hash: hash)) }
    }

    /// Replay: hands `s` to its worker, waiting while its ring is full.
    ///
    /// A connection attempt (SYN without ACK) to our listener is also
    /// settled here (`listenerCode`, one probe): it opens a flow the worker
    /// would otherwise classify, and the worker is the busier thread whenever
    /// flows are new (a SYN flood). Only SYNs: for the other packets of a
    /// flow the worker already knows the answer, and the reader would pay.
    @inline(__always)
    public func submit(_ s: PacketSummary) {
        scratch.pointee.summary = s
        submitScratch()
    }

    /// `submit` of the record in `captured`, decoded into memory rather than
    /// into a value: a summary built in registers was spilled and then
    /// stored to the ring field by field (33 instructions per packet in
    /// callgrind), where the decoded slot is copied whole. Returns the summary.
    @inline(__always)
    public func submit(decoding captured: UnsafeRawBufferPointer, wireLength: UInt32, timestampNanos: Int64,
                       with decoder: inout PacketDecoder) -> PacketSummary {
        decoder.decode(captured, wireLength: wireLength, timestampNanos: timestampNanos, into: &scratch.pointee.summary)
        submitScratch()
        return scratch.pointee.summary
    }

    /// Hands the summary in `scratch` to its worker: its hash, the listener
    /// code of a connection attempt, and a copy into the worker's ring.
    @inline(__always)
    private func submitScratch() {
        let slot = scratch
        let hash = slot.pointee.summary.symmetricFlowHash
        slot.pointee.code = listenerMemo.pointee.connectionAttemptCode(slot.pointee.summary, classifier: classifier,
                                                                       layout: layout)
        slot.pointee.hash = hash
        // Safe: as in `offer`.
        ringRefs[workerIndex(hash: hash)]._withUnsafeGuaranteedRef { $0.push(copyOf: slot) }
    }

    /// Publishes what every ring holds; call when the source goes idle.
    public func flush() {
        for r in rings { r.publish() }
    }

    /// Waits until every worker has counted everything submitted so far, so
    /// `snapshot()` is exact up to the last submitted packet. Producer thread
    /// only; meant for rare barriers (the replay's accounting edges).
    public func drain() {
        for r in rings { r.waitUntilDrained() }
    }

    /// Closes the rings, waits for the workers to drain them, applies the
    /// end-of-replay rule at `endTimestampNanos` (docs/engine.md) and returns
    /// the totals. Producer thread only; the pipeline cannot be restarted.
    public func finish(endTimestampNanos: Int64?) -> EngineSnapshot {
        precondition(started && !finished, "finish() needs a started pipeline, once")
        finished = true
        for r in rings { r.close() }
        for w in workers { w.join() }
        if let end = endTimestampNanos {
            for w in workers { w.table.finishReplay(now: end) }
        } else {
            for w in workers { w.table.finishReplay(now: .min) }
        }
        return snapshot()
    }

    /// Counters summed over workers, read with relaxed loads while they run.
    public func snapshot() -> EngineSnapshot {
        var counters = CounterSnapshot(layout: layout)
        var connections = ConnectionSnapshot(relayCount: layout.relayCount)
        var table = FlowTableInfo()
        for w in workers {
            counters += w.counter.block.snapshot()
            connections += w.connections.snapshot()
            table = table + FlowTableInfo(capacity: w.table.capacity, evictions: w.table.evictions,
                                          bytesReserved: w.table.bytesReserved)
        }
        return EngineSnapshot(counters: counters, connections: connections, flowTable: table,
                              ringDrops: rings.map(\.dropped),
                              workerCPUNanos: finished ? workers.map(\.cpuNanos) : [])
    }

    deinit {
        if started && !finished { _ = finish(endTimestampNanos: nil) }
        ringRefs.deallocate()
        listenerMemo.deinitialize(count: 1)
        listenerMemo.deallocate()
        scratch.deinitialize(count: 1)
        scratch.deallocate()
    }
}

/// `Classifier.connectionAttemptCode` with a one-entry memo of the listener
/// the last attempt went to. Whether a TCP packet goes to our listener, and
/// which, depends on its destination address and port only
/// (`Classifier.listenerSlot`), and a SYN flood aims every packet at the same
/// one: comparing the destination with the memo spares the hash-table probe.
/// The part that depends on the source (whether the relay's tor ignores that
/// peer) is computed for every packet, as `listenerCode` does.
struct ListenerMemo {
    private var hi: UInt64 = 0, lo: UInt64 = 0
    private var port: UInt16 = 0
    /// The listener's cell and relay; -1: nothing remembered yet.
    private var cell = -1
    private var relay = 0

    @inline(__always)
    mutating func connectionAttemptCode(_ s: PacketSummary, classifier: Classifier, layout: CounterLayout) -> CellCode {
        guard s.tcpFlags & (TCPFlags.syn.rawValue | TCPFlags.ack.rawValue) == TCPFlags.syn.rawValue else { return .unknown }
        if cell >= 0 && s.dst.lo == lo && s.dst.hi == hi && s.dstPort.rawValue == port && s.proto == .tcp
            && s.outcome == .ip {
            return CellCode(cell: cell, torIgnoresPeer: classifier.torIgnores(peer: s.src, relay: relay))
        }
        return remember(s, classifier: classifier, layout: layout)
    }

    /// The classifier's answer, remembered when it is a listener whose code fits.
    @inline(__always)
    private mutating func remember(_ s: PacketSummary, classifier: Classifier, layout: CounterLayout) -> CellCode {
        guard s.outcome == .ip, let slot = classifier.listenerSlot(s) else { return .unknown }
        let c = layout.cellCode(slot, torIgnoresPeer: classifier.torIgnores(peer: s.src, relay: slot.relay))
        guard c.fits else { return .unknown }
        (hi, lo, port, cell, relay) = (s.dst.hi, s.dst.lo, s.dstPort.rawValue, c.code.cell, slot.relay)
        return c.code
    }
}

/// Names the calling thread for the kernel (`top -H`, /proc/…/comm; cut to
/// 15 bytes). Foundation's `Thread.name` does not reach it on Linux.
public func nameCurrentThread(_ name: String) {
    _ = CLinuxShim_nameCurrentThread(name)
}

/// CPU time the calling thread has used, in nanoseconds.
public func threadCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}
