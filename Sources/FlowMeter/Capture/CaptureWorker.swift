import CPcapShim
import Foundation
import Synchronization

/// The classifier and the counter blocks (one per worker, each with one
/// writer) that one configuration counts into. A SIGHUP reload publishes a
/// new generation; the old one's blocks stay readable so totals never go
/// backwards.
public final class CountingGeneration: Sendable {
    public let number: Int
    public let relayLabels: [String]
    public let classifier: Classifier
    public let blocks: [CounterBlock]
    /// One flow table per worker (the engine's), for connection counts. A
    /// worker sees whole flows: PACKET_FANOUT's hash mode uses the kernel's
    /// symmetric flow hash, so both directions land on the same handle.
    public let tables: [FlowTable]

    public init(number: Int, model: HostModel, workers: Int,
                flowTable: FlowTableConfiguration = FlowTableConfiguration()) {
        self.number = number
        relayLabels = model.relayLabels
        let classifier = Classifier(model)
        self.classifier = classifier
        let layout = CounterLayout(relayCount: classifier.relayCount)
        let n = max(1, workers)
        blocks = (0..<n).map { _ in CounterBlock(layout: layout) }
        let share = max(FlowTable.bucketSize, flowTable.capacity / n)
        let relays = classifier.relayCount
        tables = (0..<n).map { _ in FlowTable(capacity: share, timeouts: flowTable.timeouts, relayCount: relays) }
    }

    public func connections() -> ConnectionSnapshot {
        var total = ConnectionSnapshot(relayCount: classifier.relayCount)
        for t in tables { total += t.connectionSnapshot }
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

/// A span during which an interface was not captured: its counts for that
/// span are unknown, not zero. `endNanos` is nil while the gap is open.
public struct CaptureGap: Sendable, Equatable, Codable {
    public var startNanos: Int64
    public var endNanos: Int64?
    public var reason: String
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
    /// Unretained: the per-packet call must not pay a retain/release (the
    /// engine saw it under callgrind). Safe: `current` keeps the generation
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

    @inline(__always)
    mutating func consume(_ summary: PacketSummary) {
        if let pipeline {
            pipeline.offer(summary)  // never blocks; a full ring drops and counts
            return
        }
        if batchStarts { adoptNewGeneration() }
        table._withUnsafeGuaranteedRef { $0.countAndTrack(summary, counter: counter) }
    }

    /// Once per batch: one atomic load; the lock only after a reload.
    mutating func adoptNewGeneration() {
        batchStarts = false
        guard slot.changed(since: generation) else { return }
        let g = slot.load()
        generation = g.number
        counter = PacketCounter(classifier: g.classifier, block: g.blocks[blockIndex])
        table = Unmanaged.passUnretained(g.tables[blockIndex])
        current = g
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
    let h = header.pointee
    let ts = Int64(h.ts.tv_sec) &* 1_000_000_000 &+ Int64(h.ts.tv_usec)
    let summary = state.pointee.decoder.decode(
        UnsafeRawBufferPointer(start: bytes, count: Int(h.caplen)), wireLength: h.len, timestampNanos: ts)
    state.pointee.consume(summary)
}

/// One capture thread: one libpcap handle on one interface (one member of
/// the interface's fanout group), decoding and counting into its own block.
/// If the handle fails or the interface is missing, it retries with backoff
/// (0.5 s doubling to 30 s) and records the gap; it stops only when told to.
public final class CaptureWorker: @unchecked Sendable {
    // @unchecked Sendable — Safe: the mutable state is atomics and mutexes;
    // `handle` and the hot state are touched only by the worker's thread,
    // except `pcap_breakloop`, which libpcap allows from any thread and which
    // is called under `handleLock` so the handle cannot be closed meanwhile.
    public let interface: String
    /// Index of this worker's counter block in every generation.
    public let index: Int
    public let options: LiveCaptureOptions
    public let fanoutGroup: UInt16?
    /// Set in the `rings` layout: this (only) capture thread of its interface
    /// is the pipeline's single producer.
    public let pipeline: EnginePipeline?
    private let slot: GenerationSlot
    private let clock: LiveClock

    private let stopping = Atomic<Bool>(false)
    private let isUp = Atomic<Bool>(false)
    private let kernelDrops = Atomic<UInt64>(0)
    private let kernelReceived = Atomic<UInt64>(0)
    private let gapCount = Atomic<UInt64>(0)
    private let closedGapNanos = Atomic<UInt64>(0)
    /// Monotonic start of the open gap, 0 when capturing.
    private let openGapSince = Atomic<UInt64>(0)
    private let handleLock = Mutex<BreakablePcap?>(nil)
    private let history = Mutex<(gaps: [CaptureGap], lastError: String?)>(([], nil))
    private var thread: Thread? = nil
    private let finished = DispatchSemaphore(value: 0)
    static let keptGaps = 32

    /// `initial` is the handle opened before privileges were dropped, or nil
    /// when opening failed (then `initialError` says why and a gap is open
    /// from the start).
    public init(interface: String, index: Int, options: LiveCaptureOptions, fanoutGroup: UInt16?,
                slot: GenerationSlot, pipeline: EnginePipeline? = nil, clock: LiveClock = .system) {
        self.pipeline = pipeline
        self.interface = interface
        self.index = index
        self.options = options
        self.fanoutGroup = fanoutGroup
        self.slot = slot
        self.clock = clock
    }

    /// Opens this worker's handle on the calling thread (before privileges
    /// are dropped). A failure is returned, not thrown: the worker will retry.
    public func openInitialHandle() -> Result<LiveCaptureHandle, CaptureError> {
        do throws(CaptureError) {
            return .success(try LiveCaptureHandle(interface: interface, options: options, fanoutGroup: fanoutGroup))
        } catch {
            return .failure(error)
        }
    }

    /// Starts the capture thread. The thread inherits the calling thread's
    /// capabilities (CAP_NET_RAW after the privilege drop), which it needs to
    /// reopen an interface that vanished.
    public func start(with initial: Result<LiveCaptureHandle, CaptureError>) {
        if case .failure(let e) = initial { beginGap(reason: e.description) }
        let box = HandleBox(initial: try? initial.get())
        let t = Thread { [self] in
            run(first: box.take())
            finished.signal()
        }
        t.name = "capture \(interface)#\(index)"
        thread = t
        t.start()
    }

    /// Asks the thread to stop and waits for it; counters are final after this.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        handleLock.withLock { if let h = $0 { pcap_breakloop(h.pointer) } }
        if thread != nil { finished.wait() }
    }

    // MARK: The thread

    private func run(first: LiveCaptureHandle?) {
        var handle = first
        var backoffNanos: UInt64 = 500_000_000
        while !stopping.load(ordering: .relaxed) {
            if handle == nil {
                switch openInitialHandle() {
                case .success(let h): handle = h
                case .failure(let e):
                    beginGap(reason: e.description)
                    sleepUnlessStopping(nanos: backoffNanos)
                    backoffNanos = min(backoffNanos * 2, 30_000_000_000)
                    continue
                }
            }
            guard let h = handle else { continue }
            backoffNanos = 500_000_000
            endGap()
            let reason = captureUntilError(h)
            handle = nil  // closes it (deinit), after breakloop can no longer reach it
            if let reason, !stopping.load(ordering: .relaxed) { beginGap(reason: reason) }
        }
    }

    /// Reads until the handle fails (returns the reason) or a stop (nil).
    private func captureUntilError(_ h: LiveCaptureHandle) -> String? {
        let breakable = BreakablePcap(pointer: h.pointer)
        handleLock.withLock { $0 = breakable }
        isUp.store(true, ordering: .relaxed)
        defer {
            handleLock.withLock { $0 = nil }
            isUp.store(false, ordering: .relaxed)
        }
        let generation = slot.load()
        var drops = WidenedCounter()
        var received = WidenedCounter()
        let state = UnsafeMutablePointer<WorkerHotState>.allocate(capacity: 1)
        state.initialize(to: WorkerHotState(
            decoder: PacketDecoder(linkType: h.linkType),
            counter: PacketCounter(classifier: generation.classifier, block: generation.blocks[index]),
            table: Unmanaged.passUnretained(generation.tables[index]), current: generation, pipeline: pipeline, slot: slot, blockIndex: index, generation: generation.number))
        defer {
            state.deinitialize(count: 1)
            state.deallocate()
        }
        let statsInterval: UInt64 = 250_000_000
        var lastStats: UInt64 = 0
        func refreshStatistics() {
            guard let st = h.statistics() else { return }
            let before = drops.total
            drops.observe(st.dropped)
            received.observe(st.received)
            kernelDrops.wrappingAdd(drops.total &- before, ordering: .relaxed)
            kernelReceived.store(received.total, ordering: .relaxed)
        }
        defer { refreshStatistics() }
        while !stopping.load(ordering: .relaxed) {
            state.pointee.batchStarts = true
            // -1: everything in the current TPACKET_V3 block, one wakeup per block.
            let rc = pcap_dispatch(h.pointer, -1, countPacket, UnsafeMutableRawPointer(state).assumingMemoryBound(to: UInt8.self))
            if rc == -2 { continue }  // PCAP_ERROR_BREAK: stop() was called
            pipeline?.flush()  // publish what this batch queued, even a partial ring batch
            if rc < 0 { return h.lastError }
            let now = clock.monotonicNanos()
            if now &- lastStats >= statsInterval {
                lastStats = now
                refreshStatistics()
            }
        }
        return nil
    }

    private func sleepUnlessStopping(nanos: UInt64) {
        let end = clock.monotonicNanos() &+ nanos
        while !stopping.load(ordering: .relaxed) && clock.monotonicNanos() < end {
            usleep(50_000)
        }
    }

    private func beginGap(reason: String) {
        history.withLock { h in
            h.lastError = reason
            if openGapSince.load(ordering: .relaxed) != 0 { return }
            openGapSince.store(max(1, clock.monotonicNanos()), ordering: .relaxed)
            gapCount.wrappingAdd(1, ordering: .relaxed)
            h.gaps.append(CaptureGap(startNanos: clock.wallNanos(), endNanos: nil, reason: reason))
            if h.gaps.count > Self.keptGaps { h.gaps.removeFirst(h.gaps.count - Self.keptGaps) }
        }
    }

    private func endGap() {
        history.withLock { h in
            let since = openGapSince.load(ordering: .relaxed)
            guard since != 0 else { return }
            closedGapNanos.wrappingAdd(clock.monotonicNanos() &- since, ordering: .relaxed)
            openGapSince.store(0, ordering: .relaxed)
            if let last = h.gaps.indices.last { h.gaps[last].endNanos = clock.wallNanos() }
        }
    }

    // MARK: What the exporter reads

    /// A consistent-enough view for one scrape (each value read atomically).
    public func status() -> CaptureWorkerStatus {
        let open = openGapSince.load(ordering: .relaxed)
        let openNanos = open == 0 ? 0 : clock.monotonicNanos() &- open
        let h = history.withLock { $0 }
        return CaptureWorkerStatus(
            interface: interface, worker: index, up: isUp.load(ordering: .relaxed),
            kernelRingDrops: kernelDrops.load(ordering: .relaxed),
            kernelReceived: kernelReceived.load(ordering: .relaxed),
            gaps: gapCount.load(ordering: .relaxed),
            gapSeconds: Double(closedGapNanos.load(ordering: .relaxed) &+ openNanos) / 1e9,
            recentGaps: h.gaps, lastError: h.lastError)
    }
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

/// Hands a non-Sendable handle to the capture thread exactly once.
private final class HandleBox: @unchecked Sendable {
    // @unchecked Sendable — Safe: written before the thread starts, taken once
    // by that thread, never touched again by the creator.
    private var handle: LiveCaptureHandle?
    init(initial: LiveCaptureHandle?) { handle = initial }
    func take() -> LiveCaptureHandle? { defer { handle = nil }; return handle }
}

/// The one thing another thread may do with a capture thread's pcap_t.
private struct BreakablePcap: @unchecked Sendable {
    // @unchecked Sendable — Safe: only pcap_breakloop is called through it,
    // which libpcap allows from any thread, and only under `handleLock`,
    // which the owner holds while clearing it before closing the handle.
    let pointer: OpaquePointer
}
