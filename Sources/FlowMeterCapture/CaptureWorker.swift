import FlowMeterCore
import CPcapShim
import Foundation
import Synchronization

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
    /// Non-nil: this worker shares its interface with others through a
    /// fanout group (the id at start; reopens use `currentFanoutGroup()`).
    public let fanoutGroup: UInt16?
    /// Set in the `rings` layout: this (only) capture thread of its interface
    /// is the pipeline's single producer.
    public let pipeline: EnginePipeline?
    private let slot: GenerationSlot
    private let clock: LiveClock
    /// Told once per change between capturing and not (and when the reason
    /// for not capturing changes), never once per retry.
    private let onStateChange: (@Sendable (CaptureStateChange) -> Void)?

    private let stopping = Atomic<Bool>(false)
    private let isUp = Atomic<Bool>(false)
    private let kernelDrops = Atomic<UInt64>(0)
    private let kernelReceived = Atomic<UInt64>(0)
    private let gapCount = Atomic<UInt64>(0)
    private let closedGapNanos = Atomic<UInt64>(0)
    /// Monotonic start of the open gap, 0 when capturing.
    private let openGapSince = Atomic<UInt64>(0)
    private let handleLock = Mutex<BreakablePcap?>(nil)
    /// Ends the thread's idle wait on `stop()` and `adoptNow()`.
    private let wakeSignal = WakeSignal()
    /// Tells the thread a device came or went: its handle may be bound to a
    /// deleted device (reopen now), or a missing interface may be back (stop
    /// waiting out the retry backoff).
    private let linkEvents = LinkEvents()
    private let history = Mutex<(gaps: [CaptureGap], lastError: String?)>(([], nil))
    private var thread: Thread? = nil
    private let finished = DispatchSemaphore(value: 0)
    static let keptGaps = 32

    /// The handle is opened later, by `openInitialHandle()` before privileges
    /// are dropped; when that fails, `start(with:)` opens a gap from the
    /// start with the reason.
    public init(interface: String, index: Int, options: LiveCaptureOptions, fanoutGroup: UInt16?,
                slot: GenerationSlot, pipeline: EnginePipeline? = nil, clock: LiveClock = .system,
                onStateChange: (@Sendable (CaptureStateChange) -> Void)? = nil) {
        self.onStateChange = onStateChange
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
    /// An open handle is up at once: the kernel fills its ring from now on,
    /// although the agent serves `/metrics` (and opens its store) before the
    /// capture thread starts reading, and a loaded machine may take seconds
    /// to get there; a scrape then must not report a gap that is not one.
    public func openInitialHandle() -> Result<LiveCaptureHandle, CaptureError> {
        do throws(CaptureError) {
            let handle = try LiveCaptureHandle(interface: interface, options: options, fanoutGroup: currentFanoutGroup())
            isUp.store(true, ordering: .relaxed)
            return .success(handle)
        } catch {
            return .failure(error)
        }
    }

    /// The fanout group to join now, derived from the interface's index as
    /// it is at this open. A deleted and re-created interface has a new
    /// index, so its handles make a new group bound to the new device: the
    /// old group lives on while any handle of the dead device is still open
    /// (each worker notices the loss on its own), and the kernel refuses a
    /// socket of another device into it with EINVAL. Every worker of the
    /// interface computes the same id, so they meet in the same new group.
    func currentFanoutGroup() -> UInt16? {
        guard fanoutGroup != nil else { return nil }
        return fanoutGroupID(interfaceIndex: if_nametoindex(interface))
    }

    /// Starts the capture thread. The thread inherits the calling thread's
    /// capabilities (CAP_NET_RAW after the privilege drop), which it needs to
    /// reopen an interface that vanished.
    public func start(with initial: Result<LiveCaptureHandle, CaptureError>) {
        if case .failure(let e) = initial { beginGap(reason: e.description) }
        let box = HandleBox(initial: try? initial.get())
        let name = "capture\(index) \(interface)"
        let t = Thread { [self] in
            nameCurrentThread(name)
            run(first: box)
            finished.signal()
        }
        t.name = name
        thread = t
        t.start()
    }

    /// Wakes the thread if it is waiting for packets, so that it adopts a
    /// newly published generation now (and lets the retired one, with its
    /// flow table, go) rather than at its next packet: an idle interface
    /// may carry none for hours. A thread in the middle of a batch adopts at
    /// its next one anyway.
    public func adoptNow() { wakeSignal.signal() }

    /// Asks the thread to stop and waits for it; counters are final after this.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        wakeSignal.signal()
        handleLock.withLock { if let h = $0 { pcap_breakloop(h.pointer) } }
        if thread != nil { finished.wait() }
        isUp.store(false, ordering: .relaxed)  // also when stopped before its first read
    }

    // MARK: The thread

    /// `first` is taken out of its box, so that once the thread lets a
    /// handle go (the device vanished) nothing else holds its socket.
    private func run(first: HandleBox) {
        var handle = first.take()
        var backoffNanos: UInt64 = 500_000_000
        while !stopping.load(ordering: .relaxed) {
            if handle == nil {
                switch openInitialHandle() {
                case .success(let h): handle = h
                case .failure(let e):
                    beginGap(reason: e.description)
                    // A link event (the interface may be back) ends the wait
                    // early, and then the backoff starts over.
                    _ = linkEvents.takeEvents()
                    let linkChanged = linkEvents.wait(nanos: backoffNanos, orUntil: wakeSignal)
                    backoffNanos = linkChanged ? 500_000_000 : min(backoffNanos * 2, 30_000_000_000)
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
        // Events queued before this handle existed are about older devices.
        _ = linkEvents.takeEvents()
        if let lost = lostDevice(h, afterEvents: true) { return lost }
        let counter = LiveBatchCounter(linkType: h.linkType, slot: slot, index: index, pipeline: pipeline)
        var statistics = HandleStatistics()
        func readStatistics() {
            guard let st = h.statistics() else { return }
            // Added as increases: a reopened handle's counters start again
            // from zero, and the exported counters must not go back.
            let new = statistics.observe(received: st.received, dropped: st.dropped)
            kernelDrops.wrappingAdd(new.drops, ordering: .relaxed)
            kernelReceived.wrappingAdd(new.received, ordering: .relaxed)
        }
        defer { readStatistics() }
        // Non-blocking reads, and the waiting done here (`CaptureWait`):
        // while traffic flows, an emptied ring is left to gather blocks (one
        // wake-up per several blocks, not one per block); otherwise poll()
        // waits for the kernel's next block, `stop()` or `adoptNow()`.
        if let error = h.setNonblocking() { return error }
        var wait = CaptureWait(gatherNanos: options.gatherNanos)
        while !stopping.load(ordering: .relaxed) {
            let rc = counter.dispatch(h)
            if rc == -2 { continue }  // PCAP_ERROR_BREAK: stop() was called
            pipeline?.flush()  // publish what this batch queued, even a partial ring batch
            if rc < 0 { return h.lastError }
            let now = clock.monotonicNanos()
            if statistics.due(now: now, afterReading: rc) {
                readStatistics()
                if let lost = lostDevice(h, afterEvents: linkEvents.takeEvents()) { return lost }
            }
            wait.read(packets: rc)
            guard rc == 0 else { continue }
            switch wait.next() {
            case .gather(let nanos):
                var pause = timespec(tv_sec: 0, tv_nsec: Int(nanos))
                nanosleep(&pause, nil)
            case .poll:
                if statistics.staleBeforeWaiting(now: now) { readStatistics() }
                h.waitForPackets(orUntil: wakeSignal, links: linkEvents)
                if let lost = lostDevice(h, afterEvents: linkEvents.takeEvents()) { return lost }
            }
        }
        return nil
    }

    /// After a link event: why the handle no longer captures its interface
    /// (its device was deleted, or replaced by a new one of the same name),
    /// or nil while it does.
    private func lostDevice(_ h: LiveCaptureHandle, afterEvents: Bool) -> String? {
        guard afterEvents, !h.isBoundToLiveDevice else { return nil }
        return "\(interface) was deleted or replaced: the capture was bound to a device that is gone"
    }

    private func beginGap(reason: String) {
        let change: CaptureStateChange? = history.withLock { h in
            let previous = h.lastError
            h.lastError = reason
            if openGapSince.load(ordering: .relaxed) != 0 {
                return previous == reason ? nil : .stillDown(interface: interface, worker: index, reason: reason)
            }
            openGapSince.store(max(1, clock.monotonicNanos()), ordering: .relaxed)
            gapCount.wrappingAdd(1, ordering: .relaxed)
            h.gaps.append(CaptureGap(startNanos: clock.wallNanos(), endNanos: nil, reason: reason))
            if h.gaps.count > Self.keptGaps { h.gaps.removeFirst(h.gaps.count - Self.keptGaps) }
            return .down(interface: interface, worker: index, reason: reason)
        }
        if let change { onStateChange?(change) }
    }

    private func endGap() {
        let change: CaptureStateChange? = history.withLock { h in
            let since = openGapSince.load(ordering: .relaxed)
            guard since != 0 else { return nil }
            let nanos = clock.monotonicNanos() &- since
            closedGapNanos.wrappingAdd(nanos, ordering: .relaxed)
            openGapSince.store(0, ordering: .relaxed)
            if let last = h.gaps.indices.last { h.gaps[last].endNanos = clock.wallNanos() }
            return .up(interface: interface, worker: index, seconds: Double(nanos) / 1e9)
        }
        if let change { onStateChange?(change) }
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

/// When a capture handle's kernel statistics (`pcap_stats`, 32-bit counters
/// widened to 64 bits) are read: every 250 ms under traffic, and before a
/// wait that may last until the next packet, if anything was read since
/// (else a handle gone idle would keep a burst's drops and its received
/// count to itself until traffic came back).
struct HandleStatistics {
    static let intervalNanos: UInt64 = 250_000_000
    private var drops = WidenedCounter()
    private var received = WidenedCounter()
    private var lastRead: UInt64 = 0
    private var readSinceLast = false

    /// After a read of `packets` at `now`: whether the statistics are due.
    mutating func due(now: UInt64, afterReading packets: Int32) -> Bool {
        if packets > 0 { readSinceLast = true }
        return take(now: now, if: now &- lastRead >= Self.intervalNanos)
    }

    /// Before a wait without a timeout: whether packets were read since.
    mutating func staleBeforeWaiting(now: UInt64) -> Bool { take(now: now, if: readSinceLast) }

    /// The drops and received packets new since the last observation.
    mutating func observe(received r: UInt32, dropped d: UInt32) -> (drops: UInt64, received: UInt64) {
        let before = (drops.total, received.total)
        drops.observe(d)
        received.observe(r)
        return (drops.total &- before.0, received.total &- before.1)
    }

    private mutating func take(now: UInt64, if condition: Bool) -> Bool {
        guard condition else { return false }
        lastRead = now
        readSinceLast = false
        return true
    }
}
