import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A bounded single-producer / single-consumer ring, the hand-off between the
/// capture thread and one worker (after rigtorp/SPSCQueue, DPDK `rte_ring`,
/// Linux `ptr_ring`).
///
/// Layout and invariants:
/// - `capacity` is a power of two; a slot is `index & mask`.
/// - `tail` (next index the producer writes) and `head` (next index the
///   consumer reads) are free-running `UInt`s that only ever grow (wrapping).
///   `tail &- head` is the number of published, unread items and is always in
///   `0...capacity`. Wrap is harmless: 2⁶⁴ is a multiple of every power-of-two
///   capacity, so `index & mask` stays continuous across the wrap, and the
///   modular difference `tail &- head` is exact as long as it is ≤ capacity
///   (far below 2⁶³). Tests start indices just below the wrap to show it.
/// - Each published index sits on its own 128-byte line (two x86 lines, for the
///   adjacent-line prefetcher), and each side keeps a private cached copy of the
///   other side's index on yet another line, so a side only touches the shared
///   line when its cached view says it is full (producer) or empty (consumer).
/// - The producer publishes every `publishBatch` items (or on `publish()`); the
///   consumer dequeues in bulk and frees all slots of a batch with one store.
///
/// Exactly one thread may call the producer methods and exactly one (other)
/// thread the consumer methods; `dropped`/`approximateCount` may be read by anyone.
public final class SPSCRing<Element>: @unchecked Sendable {
    // @unchecked Sendable — Safe: slots are written only by the producer before
    // it publishes them (release store of `tail`) and read only by the consumer
    // after it observes them (acquire load of `tail`); they are handed back the
    // same way through `head`. Private fields are touched by one side only.

    public let capacity: Int
    /// Items the producer collects before it publishes them.
    public let publishBatch: Int
    private let mask: UInt
    private let slots: UnsafeMutablePointer<Element>
    private let lines: UnsafeMutableRawPointer

    private static var lineSize: Int { 128 }
    // Line 0: published tail (producer writes, consumer reads).
    // Line 1: published head (consumer writes, producer reads).
    // Line 2: producer-private: local tail, cached head, unpublished count; and
    //         the drop counter (producer writes, anyone reads).
    // Line 3: consumer-private: local head, cached tail.
    // Line 4: closed flag (producer writes once, consumer reads when idle).
    private var publishedTail: UnsafeMutablePointer<Atomic<UInt>> { lines.assumingMemoryBound(to: Atomic<UInt>.self) }
    private var publishedHead: UnsafeMutablePointer<Atomic<UInt>> {
        (lines + Self.lineSize).assumingMemoryBound(to: Atomic<UInt>.self)
    }
    private var producer: UnsafeMutablePointer<ProducerState> {
        (lines + 2 * Self.lineSize).assumingMemoryBound(to: ProducerState.self)
    }
    private var dropCounter: UnsafeMutablePointer<Atomic<UInt64>> {
        (lines + 2 * Self.lineSize + 64).assumingMemoryBound(to: Atomic<UInt64>.self)
    }
    private var consumer: UnsafeMutablePointer<ConsumerState> {
        (lines + 3 * Self.lineSize).assumingMemoryBound(to: ConsumerState.self)
    }
    private var closedFlag: UnsafeMutablePointer<Atomic<Bool>> {
        (lines + 4 * Self.lineSize).assumingMemoryBound(to: Atomic<Bool>.self)
    }

    private struct ProducerState {
        var tail: UInt
        var cachedHead: UInt
        var unpublished: Int
    }

    private struct ConsumerState {
        var head: UInt
        var cachedTail: UInt
    }

    /// - Parameters:
    ///   - capacity: a power of two ≥ 1.
    ///   - publishBatch: how many pushes are collected before one release store.
    public convenience init(capacity: Int, publishBatch: Int = 32) {
        self.init(capacity: capacity, publishBatch: publishBatch, startIndex: 0)
    }

    /// `startIndex` lets tests place the free-running indices anywhere,
    /// in particular just below the `UInt` wrap.
    init(capacity: Int, publishBatch: Int, startIndex: UInt) {
        precondition(capacity >= 1 && capacity & (capacity - 1) == 0, "ring capacity must be a power of two")
        precondition(publishBatch >= 1, "publish batch must be at least 1")
        self.capacity = capacity
        self.publishBatch = min(publishBatch, capacity)
        mask = UInt(capacity - 1)
        slots = .allocate(capacity: capacity)
        lines = .allocate(byteCount: 5 * Self.lineSize, alignment: Self.lineSize)
        publishedTail.initialize(to: Atomic(startIndex))
        publishedHead.initialize(to: Atomic(startIndex))
        producer.initialize(to: ProducerState(tail: startIndex, cachedHead: startIndex, unpublished: 0))
        dropCounter.initialize(to: Atomic(0))
        consumer.initialize(to: ConsumerState(head: startIndex, cachedTail: startIndex))
        closedFlag.initialize(to: Atomic(false))
    }

    deinit {
        // No other thread can hold the ring now: every item between the
        // consumer's head and the producer's (possibly unpublished) tail is live.
        var i = consumer.pointee.head
        while i != producer.pointee.tail {
            (slots + Int(i & mask)).deinitialize(count: 1)
            i &+= 1
        }
        slots.deallocate()
        publishedTail.deinitialize(count: 1)
        publishedHead.deinitialize(count: 1)
        dropCounter.deinitialize(count: 1)
        closedFlag.deinitialize(count: 1)
        lines.deallocate()
    }

    // MARK: Producer side

    /// Appends `element` if there is room; otherwise counts a drop and returns
    /// false. Never blocks: this is what live capture uses.
    @inline(__always)
    @discardableResult
    public func tryPush(_ element: consuming Element) -> Bool {
        let p = producer
        if p.pointee.tail &- p.pointee.cachedHead >= UInt(capacity) {
            // Acquire pairs with the consumer's release store of `head` in
            // `release(upTo:)`: the slots it freed are no longer being read.
            p.pointee.cachedHead = publishedHead.pointee.load(ordering: .acquiring)
            if p.pointee.tail &- p.pointee.cachedHead >= UInt(capacity) {
                // Make what is queued visible, so the consumer can make room.
                publish()
                let d = dropCounter.pointee.load(ordering: .relaxed)  // single writer
                dropCounter.pointee.store(d &+ 1, ordering: .relaxed)
                return false
            }
        }
        // Safe: tail - head < capacity, so this slot is free and not read by the consumer.
        (slots + Int(p.pointee.tail & mask)).initialize(to: element)
        p.pointee.tail &+= 1
        p.pointee.unpublished &+= 1
        if p.pointee.unpublished >= publishBatch { publish() }
        return true
    }

    /// As `push`, copying the element at `source` (memory the producer
    /// owns) into the ring.
    @inline(__always)
    func push(copyOf source: UnsafePointer<Element>) {
        nextFreeSlot().initialize(to: source.pointee)
        pushed()
    }

    /// Appends `element`, waiting for room if the ring is full. Only for
    /// sources that can wait (replay of a file): nothing is ever lost.
    @inline(__always)
    public func push(_ element: consuming Element) {
        nextFreeSlot().initialize(to: element)
        pushed()
    }

    /// The slot the next push fills, once there is room (waiting for it).
    @inline(__always)
    private func nextFreeSlot() -> UnsafeMutablePointer<Element> {
        let p = producer
        if p.pointee.tail &- p.pointee.cachedHead >= UInt(capacity) {
            waitForRoom()
        }
        // Safe: tail - head < capacity, so this slot is free and not read by the consumer.
        return slots + Int(p.pointee.tail & mask)
    }

    /// Counts the slot `nextFreeSlot` gave as filled.
    @inline(__always)
    private func pushed() {
        let p = producer
        p.pointee.tail &+= 1
        p.pointee.unpublished &+= 1
        if p.pointee.unpublished >= publishBatch { publish() }
    }

    @inline(never)
    private func waitForRoom() {
        let p = producer
        publish()
        var backoff = Backoff()
        while true {
            // Acquire pairs with the consumer's release store in `release(upTo:)`.
            p.pointee.cachedHead = publishedHead.pointee.load(ordering: .acquiring)
            if p.pointee.tail &- p.pointee.cachedHead < UInt(capacity) { return }
            backoff.pause()
        }
    }

    /// Makes every pushed item visible to the consumer. Call it when the source
    /// goes idle (end of a pcap batch, a live timeout) so nothing lingers.
    @inline(__always)
    public func publish() {
        let p = producer
        guard p.pointee.unpublished != 0 else { return }
        p.pointee.unpublished = 0
        // Release pairs with the consumer's acquire load of `tail` in
        // `consume(max:_:)`: the slot writes above happen-before its reads.
        publishedTail.pointee.store(p.pointee.tail, ordering: .releasing)
    }

    /// Publishes what is pending and waits until the consumer has finished
    /// with every item pushed so far (freed its slot after `body` returned).
    /// For rare barriers, such as the replay's accounting edges: after it,
    /// whatever the consumer wrote while processing those items is visible.
    public func waitUntilDrained() {
        publish()
        let tail = producer.pointee.tail
        var backoff = Backoff()
        // Acquire pairs with the consumer's release store in `release(upTo:)`.
        while publishedHead.pointee.load(ordering: .acquiring) != tail { backoff.pause() }
    }

    /// Publishes what is pending and tells the consumer no more items will come.
    public func close() {
        publish()
        // Release pairs with the acquire load in `isClosed`: a consumer that
        // sees `closed` also sees the final tail.
        closedFlag.pointee.store(true, ordering: .releasing)
    }

    // MARK: Consumer side

    /// Hands up to `max` items, oldest first, to `body`, then frees their
    /// slots with one release store. Returns how many were consumed (0 when
    /// the ring is empty). The main consumer API: one acquire per batch.
    @inline(__always)
    @discardableResult
    public func consume(max: Int = .max, _ body: (consuming Element) -> Void) -> Int {
        let available = published()
        if available == 0 { return 0 }
        let n = Swift.min(available, max)
        var i = consumer.pointee.head
        let end = i &+ UInt(n)
        while i != end {
            // Safe: head ≤ i < tail, so the slot is published and owned by us.
            body((slots + Int(i & mask)).move())
            i &+= 1
        }
        release(upTo: end)
        return n
    }

    /// Items published and not yet consumed; reloads the producer's tail only
    /// when the cached one says the ring is empty.
    @inline(__always)
    private func published() -> Int {
        let c = consumer
        if c.pointee.cachedTail == c.pointee.head {
            // Acquire pairs with the producer's release store in `publish()`:
            // every slot below the loaded tail is fully written.
            c.pointee.cachedTail = publishedTail.pointee.load(ordering: .acquiring)
        }
        return Int(c.pointee.cachedTail &- c.pointee.head)
    }

    /// Frees every slot below `end` (the consumer has moved or deinitialized them).
    @inline(__always)
    private func release(upTo end: UInt) {
        consumer.pointee.head = end
        // Release pairs with the producer's acquire load of `head` in
        // `tryPush`/`waitForRoom`: our reads of these slots happen-before reuse.
        publishedHead.pointee.store(end, ordering: .releasing)
    }

    /// Like `consume(max:_:)`, but hands `body` the items as one contiguous
    /// buffer (at most up to the end of the slot array), so it can look ahead
    /// (prefetch what later items will touch). `body` may read and modify the
    /// items; they are deinitialized and their slots freed when it returns.
    @inline(__always)
    @discardableResult
    func consumeBatch(max: Int = .max, _ body: (UnsafeMutableBufferPointer<Element>) -> Void) -> Int {
        let available = published()
        if available == 0 { return 0 }
        let head = consumer.pointee.head
        let start = Int(head & mask)
        let n = Swift.min(available, max, capacity - start)
        // Safe: head ≤ index < tail for the n slots from `start` (no wrap: n ≤ capacity - start),
        // so they are published and owned by the consumer until the release below.
        body(UnsafeMutableBufferPointer(start: slots + start, count: n))
        (slots + start).deinitialize(count: n)
        release(upTo: head &+ UInt(n))
        return n
    }

    /// True once the producer has closed the ring. A consumer that sees it
    /// must drain once more: items published before `close()` are visible.
    public var isClosed: Bool {
        // Acquire pairs with the release store in `close()`.
        closedFlag.pointee.load(ordering: .acquiring)
    }

    // MARK: Anyone

    /// Items dropped by `tryPush` because the ring was full (single writer:
    /// the producer; relaxed, a counter needs nothing more).
    public var dropped: UInt64 { dropCounter.pointee.load(ordering: .relaxed) }

    /// Published items not yet consumed (a moment's view, for diagnostics).
    public var approximateCount: Int {
        // Relaxed: a diagnostic view; no memory is read on the strength of it.
        let t = publishedTail.pointee.load(ordering: .relaxed)
        let h = publishedHead.pointee.load(ordering: .relaxed)
        return Int(truncatingIfNeeded: t &- h)
    }
}

/// Spin a little, then yield, then sleep: the machines FlowMeter runs on are
/// often shared, so a waiting thread must give its core away quickly.
struct Backoff {
    private var rounds = 0
    @inline(never)
    mutating func pause() {
        rounds += 1
        if rounds < 16 {
            return
        } else if rounds < 64 {
            sched_yield()
        } else {
            var ts = timespec(tv_sec: 0, tv_nsec: 50_000)
            nanosleep(&ts, nil)
        }
    }
    mutating func reset() { rounds = 0 }
}
