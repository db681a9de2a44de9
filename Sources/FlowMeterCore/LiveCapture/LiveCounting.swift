import CLinuxShim
import CPcapShim
import Synchronization

/// The classifier and the counter blocks (one per worker, each with one
/// writer) that one configuration counts into. A SIGHUP reload publishes a
/// new generation; the old one's blocks stay readable so totals never go
/// backwards.
public final class CountingGeneration: Sendable {
    public let number: Int
    /// What it classifies by: a reload to an equal model keeps this generation.
    public let model: HostModel
    public let relayLabels: [String]
    public let classifier: Classifier
    public let blocks: [CounterBlock]
    /// One flow table per worker (the engine's), for connection counts. A
    /// worker sees whole flows: the fanout program (CLinuxShim_joinFanout)
    /// hashes symmetrically, so both directions of a flow, and a UDP
    /// datagram's fragments, land on the same handle.
    /// Tables grow with the flows (`FlowTableGrowth.growing`). A generation
    /// made by a reload that keeps their sizes shares its predecessor's
    /// tables: each worker empties its own as it adopts the new generation
    /// (`FlowTable.startOver`), so a reload never holds two sets.
    public let tables: [FlowTable]
    /// Each worker's connection metrics under this generation: readable
    /// after the worker moved on, when its table counts for the next one.
    let connectionCounters: [ConnectionCounters]
    public let flowTable: FlowTableConfiguration

    /// - Parameter previous: the generation this one replaces; its tables
    ///   are reused when the worker count and `flowTable` are the same.
    public init(number: Int, model: HostModel, workers: Int,
                flowTable: FlowTableConfiguration = FlowTableConfiguration(), reusing previous: CountingGeneration? = nil) {
        self.number = number
        self.model = model
        relayLabels = model.relayLabels
        let classifier = Classifier(model)
        self.classifier = classifier
        let layout = CounterLayout(relayCount: classifier.relayCount)
        let n = max(1, workers)
        blocks = (0..<n).map { _ in CounterBlock(layout: layout) }
        self.flowTable = flowTable
        let counters = (0..<n).map { _ in ConnectionCounters(relayCount: classifier.relayCount) }
        connectionCounters = counters
        if let previous, previous.tables.count == n, previous.flowTable == flowTable {
            tables = previous.tables
        } else {
            let share = max(FlowTable.bucketSize, flowTable.capacity / n)
            tables = counters.map { FlowTable(capacity: share, timeouts: flowTable.timeouts, connections: $0) }
        }
    }

    public func connections() -> ConnectionSnapshot {
        var total = ConnectionSnapshot(relayCount: classifier.relayCount)
        for c in connectionCounters { total += c.snapshot() }
        return total
    }

    public func snapshot() -> CounterSnapshot {
        var total = CounterSnapshot(layout: blocks[0].layout)
        for b in blocks { total += b.snapshot() }
        return total
    }
}

/// Where workers find the current generation. Workers compare `number` (one
/// relaxed atomic load per pcap_dispatch call, not per packet) and take the
/// lock only when it changed, i.e. once per reload.
public final class GenerationSlot: Sendable {
    private let current: Mutex<CountingGeneration>
    private let number: Atomic<Int>

    public init(_ g: CountingGeneration) {
        current = Mutex(g)
        number = Atomic(g.number)
    }

    public func publish(_ g: CountingGeneration) {
        current.withLock { $0 = g }
        // Pairs with the acquiring load in `changed(since:)`.
        number.store(g.number, ordering: .releasing)
    }

    public func load() -> CountingGeneration { current.withLock { $0 } }

    func changed(since n: Int) -> Bool { number.load(ordering: .acquiring) != n }
}

/// The decoder and counter one capture thread drives. Lives in memory the
/// worker allocates, reached from libpcap's callback through the `user`
/// pointer (a C callback cannot capture Swift state).
///
/// Where the engine's rings slot in (the other layout, one capture thread
/// feeding per-core workers): `consume` becomes `EnginePipeline.offer`, a
/// non-blocking push that drops and counts when a ring is full; decoding
/// stays here, on the capture thread, so the rings carry fixed-size summaries.
struct WorkerHotState: PacketSink {
    var decoder: PacketDecoder
    var counter: PacketCounter
    /// Unretained: the per-packet call must not pay a retain/release.
    /// Safe: `current` keeps the generation
    /// that owns the table alive for as long as this state points into it.
    var table: Unmanaged<FlowTable>
    var current: CountingGeneration
    /// The other layout: hand summaries to the engine's per-core workers.
    let pipeline: EnginePipeline?
    let slot: GenerationSlot
    let blockIndex: Int
    var generation: Int
    /// Set before each pcap_dispatch: the first packet of a batch checks for
    /// a reload. Checking at the first packet rather than after the call
    /// matters: a dispatch that was waiting in poll when the reload came
    /// must count its whole batch under the new configuration.
    var batchStarts = true
    /// The look-ahead: the last `lookAhead` packets of this batch, held back
    /// so that their flow-table lines load while the next ones are decoded,
    /// as the engine's worker does (`Worker.process`). Without it every
    /// packet waited for its bucket's tags and its entry from memory (perf on
    /// the veth benchmark: most of the capture thread's time on those two
    /// loads). `queued` packets were held this batch; the slot of packet n
    /// is n % lookAhead. Emptied at the end of every dispatch (`flush`).
    let pending: UnsafeMutablePointer<RoutedSummary>
    var queued = 0
    /// The reader's listener memo, for this thread's connection attempts.
    var listenerMemo = ListenerMemo()
    /// Where the previous packet's bytes were in the kernel's ring (see
    /// `prefetchRing`); nil before the first.
    var lastPacket: UnsafeRawPointer?
    /// Twice the replay worker's distances (8 and 4): here the tag line
    /// must come from memory the packet ring keeps streaming through, and
    /// perf put the entry prefetch's wait for it first (4 packets was too
    /// close); a power of two, so an index modulo it is a mask.
    static let lookAhead = 16
    static let entryDistance = 8

    @inline(__always)
    mutating func consume(_ summary: PacketSummary) {
        if let pipeline {
            pipeline.offer(summary)  // never blocks; a full ring drops and counts
            return
        }
        let slot = makeRoom()
        slot.pointee.summary = summary
        enqueue(slot)
    }

    /// libpcap's packet, decoded straight into its look-ahead slot: the
    /// packet `lookAhead` back is counted first, to free that slot.
    @inline(__always)
    mutating func receive(_ captured: UnsafeRawBufferPointer, wireLength: UInt32, timestampNanos: Int64) {
        if pipeline != nil {
            consume(decoder.decode(captured, wireLength: wireLength, timestampNanos: timestampNanos))
            return
        }
        let slot = makeRoom()
        decoder.decode(captured, wireLength: wireLength, timestampNanos: timestampNanos, into: &slot.pointee.summary)
        enqueue(slot)
    }

    /// The slot of the next packet, counting the packet `lookAhead` back
    /// that held it; the first packet of a batch checks for a reload.
    @inline(__always)
    mutating func makeRoom() -> UnsafeMutablePointer<RoutedSummary> {
        if batchStarts { adoptNewGeneration() }
        let n = queued
        // Safe: every index is taken modulo lookAhead, the buffer's size
        // (a power of two, and n ≥ 0: a mask).
        let slot = pending + n & (Self.lookAhead - 1)
        if n >= Self.lookAhead {
            let counter = counter
            table._withUnsafeGuaranteedRef { t in Self.count(slot, table: t, counter: counter) }
        }
        return slot
    }

    /// Completes the slot `makeRoom` gave (its summary written): hash, the
    /// listener shortcut, and the flow table's prefetches.
    @inline(__always)
    mutating func enqueue(_ slot: UnsafeMutablePointer<RoutedSummary>) {
        let hash = slot.pointee.summary.symmetricFlowHash
        slot.pointee.code = listenerMemo.connectionAttemptCode(
            slot.pointee.summary, classifier: counter.classifier, layout: counter.block.layout)
        slot.pointee.hint = 0
        slot.pointee.hash = hash
        let n = queued
        let d = Self.lookAhead, e = Self.entryDistance
        table._withUnsafeGuaranteedRef { t in
            t.prefetch(slot.pointee.summary, hash: hash)
            if n >= e {
                // Safe: modulo lookAhead, as above (n ≥ e).
                let p = pending + (n &- e) & (d - 1)
                p.pointee.hint = t.prefetchEntry(p.pointee.summary, hash: p.pointee.hash)
            }
        }
        queued = n &+ 1
    }

    /// Counts what the look-ahead still holds, oldest first; at the end of
    /// each dispatch, so every batch is counted before the call returns.
    mutating func flush() {
        let d = Self.lookAhead
        let counter = counter
        table._withUnsafeGuaranteedRef { t in
            for n in max(0, queued - d)..<queued { Self.count(pending + n % d, table: t, counter: counter) }
        }
        queued = 0
    }

    @inline(__always)
    static func count(_ p: UnsafeMutablePointer<RoutedSummary>, table: FlowTable, counter: PacketCounter) {
        table.countAndTrack(p, counter: counter)
    }

    /// Once per batch: one atomic load; the lock only after a reload.
    mutating func adoptNewGeneration() {
        batchStarts = false
        guard slot.changed(since: generation) else { return }
        let g = slot.load()
        generation = g.number
        counter = PacketCounter(classifier: g.classifier, block: g.blocks[blockIndex])
        let t = g.tables[blockIndex]
        // This thread is the table's only writer, and no longer counts under
        // the generation it leaves: the table may start over (a shared one
        // is emptied; a new one is empty already, and this is cheap).
        t.startOver(connections: g.connectionCounters[blockIndex])
        table = Unmanaged.passUnretained(t)
        current = g
        listenerMemo = ListenerMemo()
    }
}

/// libpcap's per-packet callback: decode headers, classify, count. No
/// allocation, lock, throw or String on this path.
private let countPacket: pcap_handler = { user, header, bytes in
    // Safe: `user` is the WorkerHotState pointer passed to pcap_dispatch by
    // CaptureWorker.captureUntilError, alive and exclusively ours for the call;
    // `header` and `bytes` are valid until the callback returns, with
    // `caplen` bytes at `bytes`.
    guard let user, let header, let bytes else { return }
    let state = UnsafeMutableRawPointer(user).assumingMemoryBound(to: WorkerHotState.self)
    prefetchRing(UnsafeRawPointer(bytes), last: &state.pointee.lastPacket)
    let h = header.pointee
    let ts = Int64(h.ts.tv_sec) &* 1_000_000_000 &+ Int64(h.ts.tv_usec)
    state.pointee.receive(UnsafeRawBufferPointer(start: bytes, count: Int(h.caplen)), wireLength: h.len, timestampNanos: ts)
}


/// Starts loading the packet two ahead in the kernel's ring. A TPACKET_V3
/// block holds its packets one after another, and the sender's CPU wrote
/// them, so each packet's first read is a miss to the other core's cache
/// (perf on the veth benchmark: the decoder's first loads were the capture
/// thread's second-largest stall). tcpdump hides that latency by accident,
/// its per-packet work being short enough for the CPU to run ahead into the
/// next packets; FlowMeter's decode and count are too long for that. The
/// distance to the next packet is not known here (libpcap hands over the
/// bytes only), so the last packet's is taken: exact for a stream of equal
/// snapshots, a harmless wrong guess otherwise (a prefetch never faults).
@inline(__always)
private func prefetchRing(_ here: UnsafeRawPointer, last: inout UnsafeRawPointer?) {
    if let last {
        let stride = last.distance(to: here)
        if stride > 0 && stride <= 1024 {
            // The lines of libpcap's frame header (the 80 bytes before the
            // packet) and of the headers the decoder reads (the first 48).
            let ahead = here + 2 &* stride
            CLinuxShim_prefetchForRead(ahead - 80)
            CLinuxShim_prefetchForRead(ahead - 33)
            CLinuxShim_prefetchForRead(ahead)
            CLinuxShim_prefetchForRead(ahead + 47)
        }
    }
    last = here
}

/// The per-packet half of one capture thread: the state libpcap's callback
/// reaches through its `user` pointer, and the dispatch call itself. The
/// thread's lifecycle (retries, gaps, statistics) is FlowMeterCapture's.
public final class LiveBatchCounter {
    private let state: UnsafeMutablePointer<WorkerHotState>

    /// Counts into block `index` of the slot's current generation (and its
    /// flow table), or hands summaries to `pipeline` when one is given.
    public init(linkType: LinkType, slot: GenerationSlot, index: Int, pipeline: EnginePipeline?) {
        let generation = slot.load()
        let pending = UnsafeMutablePointer<RoutedSummary>.allocate(capacity: WorkerHotState.lookAhead)
        pending.initialize(repeating: RoutedSummary(summary: PacketSummary(), hash: 0), count: WorkerHotState.lookAhead)
        state = .allocate(capacity: 1)
        state.initialize(to: WorkerHotState(
            decoder: PacketDecoder(linkType: linkType),
            counter: PacketCounter(classifier: generation.classifier, block: generation.blocks[index]),
            table: Unmanaged.passUnretained(generation.tables[index]), current: generation, pipeline: pipeline,
            slot: slot, blockIndex: index, generation: generation.number, pending: pending))
    }

    deinit {
        let pending = state.pointee.pending
        state.deinitialize(count: 1)
        state.deallocate()
        pending.deinitialize(count: WorkerHotState.lookAhead)
        pending.deallocate()
    }

    /// One `pcap_dispatch` over what the kernel has ready (-1: every
    /// TPACKET_V3 block that is ready; 0 packets at once when none is, the
    /// handle being non-blocking: `CaptureWorker` waits). Returns libpcap's result:
    /// packets seen, -2 after `pcap_breakloop`, another negative on error.
    public func dispatch(_ handle: LiveCaptureHandle) -> Int32 {
        state.pointee.batchStarts = true
        // Safe: `state` is ours, initialized, and outlives the call.
        let rc = pcap_dispatch(handle.pointer, -1, countPacket,
                               UnsafeMutableRawPointer(state).assumingMemoryBound(to: UInt8.self))
        if state.pointee.queued > 0 { state.pointee.flush() }
        // A batch without packets adopted nothing: adopt now, so an idle
        // worker does not keep a retired generation (and its flow table) alive.
        if state.pointee.batchStarts && state.pointee.pipeline == nil { state.pointee.adoptNewGeneration() }
        return rc
    }
}
