// Kept whole: the table's layout, probe, eviction and growth share invariants on
// private storage (slot states, the split pointer) that Swift's `private` keeps to this file.
import CLinuxShim
import CPcapShim
import Synchronization

/// Idle timeouts of the flow table, per protocol and state, in nanoseconds of
/// capture time. Semantics: docs/engine.md.
public struct FlowTimeouts: Sendable, Equatable {
    /// A TCP handshake in progress (SYN sent, SYN-ACK seen).
    public var tcpHandshake: Int64 = 30 * 1_000_000_000
    /// An opened TCP connection, or one first seen mid-stream.
    public var tcpIdle: Int64 = 600 * 1_000_000_000
    /// How long a closed TCP connection lingers to absorb late segments.
    public var tcpClosed: Int64 = 10 * 1_000_000_000
    /// A UDP "connection" ends after this much silence.
    public var udpIdle: Int64 = 60 * 1_000_000_000
    public init() {}
}

/// Size and behaviour of the flow tables (one per worker).
public struct FlowTableConfiguration: Sendable, Equatable {
    /// Entries over all workers together; each worker gets an equal share,
    /// rounded down to a multiple of the bucket size.
    public var capacity: Int
    public var timeouts: FlowTimeouts
    public init(capacity: Int = FlowTableConfiguration.defaultCapacity, timeouts: FlowTimeouts = FlowTimeouts()) {
        self.capacity = capacity
        self.timeouts = timeouts
    }
    /// 2²⁰ entries: `FlowTable.bytesPerEntry` × 2²⁰ = 60 MiB.
    public static let defaultCapacity = 1 << 20
    /// Memory the tables reserve (address space) and never exceed.
    public var bytesReserved: Int { capacity * FlowTable.bytesPerEntry }
}

/// How a flow table takes its memory (`TableMemory`).
public enum FlowTableGrowth: Sendable, Equatable {
    /// All of the capacity from the first packet (replay: its connection
    /// counts must not depend on when a table grew); pages still fault in
    /// only as flows first use them.
    case whole
    /// Start at `FlowTable.startingCapacity` entries (faulted in at once)
    /// and grow one bucket at a time as flows come, up to the capacity (live
    /// capture: memory follows the connections actually seen).
    case growing
}

/// What the flow tables did, for `--json` (`flow_table`).
public struct FlowTableInfo: Sendable, Equatable {
    /// Entries over all workers.
    public var capacity: Int
    /// Live flows pushed out because their bucket was full (not idle expiry).
    public var evictions: UInt64
    /// Bytes allocated for the tables: capacity × `FlowTable.bytesPerEntry`.
    public var bytesReserved: Int
    public init(capacity: Int = 0, evictions: UInt64 = 0, bytesReserved: Int = 0) {
        self.capacity = capacity; self.evictions = evictions; self.bytesReserved = bytesReserved
    }
    public static func + (a: FlowTableInfo, b: FlowTableInfo) -> FlowTableInfo {
        FlowTableInfo(capacity: a.capacity + b.capacity, evictions: a.evictions + b.evictions,
                      bytesReserved: a.bytesReserved + b.bytesReserved)
    }
}

/// One tracked conversation. The key is canonical: endpoint `a` is the lower
/// (address, port) of the two, so both directions find the same entry.
struct FlowEntry {
    var aHi: UInt64 = 0, aLo: UInt64 = 0, bHi: UInt64 = 0, bLo: UInt64 = 0
    var lastSeen: Int64 = 0
    var aPort: UInt16 = 0, bPort: UInt16 = 0
    /// Whose connection it is: the relay and category its metrics go to.
    var group = ConnectionGroup(rawValue: 0)
    var proto: UInt8 = 0
    var state: FlowState = .empty
    var bits: UInt8 = 0
    /// How packets from `a` / from `b` are counted, once known (`countAndObserve`).
    var codeFromA: CellCode = .unknown
    var codeFromB: CellCode = .unknown
    // 56 bytes, so most entries straddle two cache lines. Padding to 64 (one
    // line each) was measured: no change in the live benchmark's CPU per
    // packet, and 18 more instructions per packet in callgrind (register
    // spills in countAndTrack), so the entry stays at 56.
}

/// Where a flow is in its life. Transitions: docs/engine.md.
struct FlowState: RawRepresentable, Equatable {
    var rawValue: UInt8
    static let empty = FlowState(rawValue: 0)
    static let synSent = FlowState(rawValue: 1)
    static let synAckSeen = FlowState(rawValue: 2)
    static let midstream = FlowState(rawValue: 3)
    static let established = FlowState(rawValue: 4)
    static let closed = FlowState(rawValue: 5)
    static let udpOneWay = FlowState(rawValue: 6)
    static let udpOpened = FlowState(rawValue: 7)
}

/// A packet's canonical flow key: `a` is the lower (address, port) of its two ends.
struct FlowKey {
    let srcIsA: Bool
    let a: IPAddress, b: IPAddress
    let aPort: UInt16, bPort: UInt16
    @inline(__always)
    init(_ s: PacketSummary) {
        srcIsA = (s.src.hi, s.src.lo, s.srcPort.rawValue) <= (s.dst.hi, s.dst.lo, s.dstPort.rawValue)
        a = srcIsA ? s.src : s.dst
        b = srcIsA ? s.dst : s.src
        aPort = srcIsA ? s.srcPort.rawValue : s.dstPort.rawValue
        bPort = srcIsA ? s.dstPort.rawValue : s.srcPort.rawValue
    }
}

/// Bits of `FlowEntry.bits`.
enum FlowBits {
    static let initiatorIsA: UInt8 = 0x01
    static let dataA: UInt8 = 0x02
    static let dataB: UInt8 = 0x04
    static let finA: UInt8 = 0x08
    static let finB: UInt8 = 0x10
}

/// A worker's flow table: fixed capacity, allocated once, bucketized open
/// addressing. A flow's hash picks one bucket of 16 slots; a bucket is one
/// cache line holding its slots' 16-bit tags (16 bits of the hash, 0 for an
/// empty slot) and their eviction ranks (a byte each). A lookup reads that
/// line and touches an entry only on a tag match. A
/// full bucket evicts its least valuable flow: lingering closed ones first,
/// then unanswered attempts, then half-open ones, then opened ones — so a SYN
/// flood churns through its own entries and established connections survive
/// it. The choice reads only the ranks in the same line; among equal ranks it
/// rotates by the new flow's hash. So a packet touches the table in two
/// places, the bucket's line and its entry, flood or not.
///
/// Byte and packet counters live elsewhere (per category), so neither eviction
/// nor expiry can change them; only connection metrics depend on this table.
///
/// Growing (`FlowTableGrowth.growing`) is linear hashing (Litwin, 1980): the
/// active buckets are the first `bucketCount` of the reserved ones; a flow's
/// bucket is its hash modulo the next power of two above them, folded back
/// by half when that bucket is not active yet. Growing splits the one bucket
/// whose flows fold onto the next new one, moving those whose hash now names
/// it: a bounded step (16 slots) on the owner's thread, one per new flow at
/// most, taken while more than a quarter of the active slots are in use.
/// The buckets not yet split in a round take twice the flows of those
/// split, so at that load they hold at most 8 of 16 on average and a bucket
/// is rarely full before the table reaches its capacity; the table keeps
/// four slots (240 bytes) per flow of the most it has held at once.
///
/// One writer (its worker); `evictions`/`occupancy` may be read by anyone.
public final class FlowTable: @unchecked Sendable {
    // @unchecked Sendable — Safe: tags and entries are touched only by the
    // owning worker; the counters other threads read are atomics.

    public static let bucketSize = 16
    /// Memory per slot: one 56-byte entry and its share of a bucket line
    /// (a 16-bit tag, a rank byte and a spare byte).
    public static var bytesPerEntry: Int {
        MemoryLayout<FlowEntry>.stride + bucketBytesPerSlot
    }
    /// A bucket's line (64 bytes) over its 16 slots.
    static let bucketBytesPerSlot = 4

    /// The most entries the table may hold (reserved, not all in use).
    public let capacity: Int
    public let timeouts: FlowTimeouts
    /// Where a growing table starts: 4,096 entries (240 KiB), what a quiet
    /// relay host's connections fit in at the growth threshold's load.
    public static let startingCapacity = 4096
    private let maxBuckets: Int
    /// Active buckets, between `lowMask + 1` and `highMask + 1` (linear
    /// hashing, above); all of them in a `whole` table.
    private var bucketCount: Int
    private var lowMask: Int
    private var highMask: Int
    /// Occupancy past which the next bucket splits; `Int.max` at capacity.
    private var growAt: Int
    /// How far huge pages were asked for (`TableMemory.adviseHugePages`).
    private var hugeLines = 0, hugeEntries = 0
    /// The buckets' lines, 64 bytes per 16 slots: bytes 0–31 the slots'
    /// tags (`tag(_:)`), bytes 32–47 their eviction ranks (`rank(_:)`, kept
    /// current by `countAndObserve`), bytes 48–63 spare.
    private let bucketLines: UnsafeMutableRawPointer
    private let entries: UnsafeMutablePointer<FlowEntry>
    /// One byte per group of `groupBuckets` buckets, set when a flow first
    /// takes a free slot there (a full bucket's slots were all taken that
    /// way), never cleared: `finishReplay` visits only these groups, so the
    /// end of a small replay costs what its flows used, not the table.
    private let touchedGroups: UnsafeMutablePointer<UInt8>
    private let groupCount: Int
    /// 64 buckets: one 4 KiB page of bucket lines per group.
    static let groupBuckets = 64
    private let bucketMemory: TableMemory
    private let entryMemory: TableMemory
    /// Replaced when a reload hands the table to a new configuration
    /// (`startOver`). The per-packet code reaches them through
    /// `connectionEvent`, unretained: a `var` read is retained and released
    /// around each use, on every connection event.
    /// Safe: `connections` holds the same object for as long as it is used,
    /// and both change together, on the owner thread only.
    private var connections: ConnectionCounters
    private var unretainedConnections: Unmanaged<ConnectionCounters>
    private var clock: Int64 = .min
    private var sweepCursor = 0
    private var sweepCountdown = 0
    private let evictionCounter = Atomic<UInt64>(0)
    private let occupancyCounter = Atomic<Int>(0)
    private let activeCounter = Atomic<Int>(0)

    /// Live flows pushed out of a full bucket (single writer, relaxed).
    public var evictions: UInt64 { evictionCounter.load(ordering: .relaxed) }
    /// Slots in use right now (single writer, relaxed).
    public var occupancy: Int { occupancyCounter.load(ordering: .relaxed) }
    /// Slots the table has grown to (≤ `capacity`; single writer, relaxed).
    public var activeCapacity: Int { activeCounter.load(ordering: .relaxed) }
    public var bytesReserved: Int { capacity * Self.bytesPerEntry }
    /// Memory the active slots take: what the table costs once its flows
    /// have touched it.
    public var bytesActive: Int { activeCapacity * Self.bytesPerEntry }

    /// - Parameter growth: all of the capacity at once (replay), or start
    ///   small and grow with the flows (live capture). `FlowTableGrowth`.
    init(capacity requested: Int, timeouts: FlowTimeouts, connections: ConnectionCounters,
         growth: FlowTableGrowth = .growing) {
        var buckets = 1
        while buckets * 2 * Self.bucketSize <= max(requested, Self.bucketSize) { buckets *= 2 }
        capacity = buckets * Self.bucketSize
        maxBuckets = buckets
        var start = buckets
        if growth == .growing {
            while start > 1 && start * Self.bucketSize > Self.startingCapacity { start /= 2 }
        }
        bucketCount = start
        lowMask = start - 1
        highMask = 2 * start - 1
        growAt = Self.growthThreshold(buckets: start, of: buckets)
        activeCounter.store(start * Self.bucketSize, ordering: .relaxed)
        self.timeouts = timeouts
        self.connections = connections
        unretainedConnections = .passUnretained(connections)
        // Zero-filled, 2 MiB aligned (so each bucket is one cache line):
        // TableMemory. All-zero bytes are the empty state: tag 0 is "empty",
        // rank 0, and an entry is read only after its tag was set, by which
        // time it has been written.
        let startSlots = start * Self.bucketSize
        let lines: TableMemory.Use = growth == .whole ? .whole : .growing(initial: startSlots * Self.bucketBytesPerSlot)
        let slots: TableMemory.Use = growth == .whole ? .whole : .growing(initial: startSlots * MemoryLayout<FlowEntry>.stride)
        bucketMemory = TableMemory(byteCount: capacity * Self.bucketBytesPerSlot, use: lines)
        entryMemory = TableMemory(byteCount: capacity * MemoryLayout<FlowEntry>.stride, use: slots)
        // Safe: each region holds `capacity` values of a trivial type, is
        // zero-filled (a valid value of each) and is bound once, here.
        bucketLines = bucketMemory.base
        entries = entryMemory.base.bindMemory(to: FlowEntry.self, capacity: capacity)
        groupCount = (buckets + Self.groupBuckets - 1) / Self.groupBuckets
        touchedGroups = .allocate(capacity: groupCount)
        touchedGroups.initialize(repeating: 0, count: groupCount)
    }

    /// A table with its own connection counters, for benchmarks and tools
    /// that drive one table directly (the pipeline builds its own per worker).
    public convenience init(capacity: Int, timeouts: FlowTimeouts = FlowTimeouts(), relayCount: Int,
                            growth: FlowTableGrowth = .growing) {
        self.init(capacity: capacity, timeouts: timeouts, connections: ConnectionCounters(relayCount: relayCount),
                  growth: growth)
    }

    /// Splitting at more than a quarter of the active slots in use (above).
    @inline(__always)
    private static func growthThreshold(buckets: Int, of maximum: Int) -> Int {
        buckets >= maximum ? .max : buckets * bucketSize / 4
    }

    /// Packets the table tracks: decoded IP with TCP or UDP ports.
    @inline(__always)
    static func tracks(_ s: PacketSummary) -> Bool { s.outcome == .ip && s.hasPorts }

    /// A flow hash's bucket (its first slot) and its tag: the hash's top 16
    /// bits (the bucket comes from the low bits, the eviction rotation from
    /// bits 40–43), never 0 (the empty mark).
    @inline(__always)
    private func bucket(_ hash: UInt64) -> (first: Int, tag: UInt16) {
        let tag = UInt16(truncatingIfNeeded: hash >> 48)
        return (bucketIndex(hash) &* Self.bucketSize, tag == 0 ? 1 : tag)
    }

    /// The active bucket of a hash (linear hashing: the type's comment).
    @inline(__always)
    private func bucketIndex(_ hash: UInt64) -> Int {
        let h = Int(truncatingIfNeeded: hash)
        let high = h & highMask
        return high < bucketCount ? high : h & lowMask
    }

    /// The line of the bucket that slot `i` belongs to: its 16 tags, then
    /// their 16 rank bytes.
    @inline(__always)
    private func tags(_ i: Int) -> UnsafeMutablePointer<UInt16> {
        // Safe: i < capacity, and each bucket of 16 slots owns 64 bytes of `bucketLines`.
        (bucketLines + (i & ~(Self.bucketSize - 1)) &* Self.bucketBytesPerSlot).assumingMemoryBound(to: UInt16.self)
    }

    /// Slot `i`'s tag, 0 when the slot is empty.
    @inline(__always)
    private func tag(_ i: Int) -> UInt16 { tags(i)[i & (Self.bucketSize - 1)] }

    @inline(__always)
    private func setTag(_ i: Int, _ tag: UInt16) { tags(i)[i & (Self.bucketSize - 1)] = tag }

    /// The 16 rank bytes of the bucket that slot `i` belongs to.
    @inline(__always)
    private func ranks(_ i: Int) -> UnsafeMutablePointer<UInt8> {
        // Safe: bytes 32–47 of the bucket's 64-byte line.
        (UnsafeMutableRawPointer(tags(i)) + 2 &* Self.bucketSize).assumingMemoryBound(to: UInt8.self)
    }

    /// Where a full bucket starts looking for a victim, from the new flow's hash.
    @inline(__always)
    private static func rotation(_ hash: UInt64) -> Int { Int(truncatingIfNeeded: hash >> 40) }

    /// Starts loading the line a later `countAndTrack(s)` will read first (the
    /// bucket's tags and ranks). Under a SYN flood nearly every packet's
    /// bucket is cold in a 60 MiB table; issuing the loads a few packets ahead
    /// overlaps those misses with the work on the packets in between.
    @inline(__always)
    func prefetch(_ s: PacketSummary, hash: UInt64) {
        guard Self.tracks(s) else { return }
        CLinuxShim_prefetchForWrite(tags(bucket(hash).first))
    }

    /// Starts loading the entry `countAndTrack(s)` will use: its flow's, or
    /// the free or victim slot a new flow would take. Reads the bucket's
    /// line, so call it after `prefetch(s)` has had time to bring them in.
    /// Returns the hint `countAndTrack` takes: the slot in the bucket + 1
    /// where the flow's tag matched, else 0.
    @inline(__always)
    func prefetchEntry(_ s: PacketSummary, hash: UInt64) -> UInt8 {
        guard Self.tracks(s) else { return 0 }
        let (first, tag) = bucket(hash)
        // Safe: a bucket's line is 64-byte aligned (the region is 2 MiB aligned).
        let m = CLinuxShim_matchBucketTags(tags(first), tag)
        let slot: Int
        var hint: UInt8 = 0
        if m & 0xFFFF != 0 {
            let k = (m & 0xFFFF).trailingZeroBitCount
            slot = first + k
            hint = UInt8(truncatingIfNeeded: k + 1)
        } else if m >> 16 != 0 {
            slot = first + (m >> 16).trailingZeroBitCount
        } else {
            slot = victimCandidate(first, rotation: Self.rotation(hash))
        }
        CLinuxShim_prefetchForWrite(entries + slot)
        CLinuxShim_prefetchForWrite(UnsafeRawPointer(entries + slot) + (MemoryLayout<FlowEntry>.size - 1))
        return hint
    }

    /// Counts `s` into `counter` and, for TCP and UDP, tracks its flow: the
    /// per-packet step the tests and benchmarks drive. The engine's worker
    /// and the live fanout path make the same step through
    /// `countAndTrack(_:hash:known:hint:counter:)`, with the hash, the
    /// listener code and the prefetch hint they computed ahead. A connection
    /// attempt to our listener is settled with one probe
    /// (`connectionAttemptCode`), as they settle it. Owner thread only.
    @inline(__always)
    public func countAndTrack(_ s: PacketSummary, counter: PacketCounter) {
        let code = counter.classifier.connectionAttemptCode(s, layout: counter.block.layout)
        countAndTrack(s, hash: s.symmetricFlowHash, known: code, counter: counter)
    }

    /// As `countAndTrack(_:counter:)`, with `s.symmetricFlowHash` already
    /// computed and, when not `.unknown`, the code classification would give
    /// (`Classifier.listenerCode`).
    /// `hint` is `prefetchEntry`'s answer for `s` (0: none).
    @inline(__always)
    func countAndTrack(_ s: PacketSummary, hash: UInt64, known: CellCode = .unknown, hint: UInt8 = 0,
                       counter: PacketCounter) {
        if Self.tracks(s) {
            countAndObserve(s, hash: hash, known: known, hint: hint, counter: counter)
        } else {
            counter.count(s)
        }
    }

    /// The worker's step for a ring element, read in place: passing the
    /// summary by value made the caller copy its 72 bytes to the stack first.
    @inline(never)
    func countAndTrack(_ p: UnsafeMutablePointer<RoutedSummary>, counter: PacketCounter) {
        countAndTrack(p.pointee.summary, hash: p.pointee.hash, known: p.pointee.code, hint: p.pointee.hint,
                      counter: counter)
    }

    /// The connection metrics this table has counted.
    public var connectionSnapshot: ConnectionSnapshot { connections.snapshot() }

    deinit {
        bucketMemory.release()
        entryMemory.release()
        touchedGroups.deallocate()
    }

    @inline(__always)
    private func timeout(_ state: FlowState) -> Int64 {
        switch state {
        case .synSent, .synAckSeen: return timeouts.tcpHandshake
        case .closed: return timeouts.tcpClosed
        case .udpOneWay, .udpOpened: return timeouts.udpIdle
        default: return timeouts.tcpIdle
        }
    }

    @inline(__always)
    private func bump(_ counter: borrowing Atomic<UInt64>) {
        counter.store(counter.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
    }

    @inline(__always)
    private func setOccupancy(_ delta: Int) {
        occupancyCounter.store(occupancyCounter.load(ordering: .relaxed) &+ delta, ordering: .relaxed)
    }

    /// A connection metric changes (owner thread only; unretained, above).
    @inline(__always)
    private func connectionEvent(_ body: (ConnectionCounters) -> Void) {
        unretainedConnections._withUnsafeGuaranteedRef(body)
    }

    /// Counts how `e` ended (it is leaving the table) into the connection metrics.
    @inline(__always)
    private func finish(_ e: UnsafeMutablePointer<FlowEntry>) {
        switch e.pointee.state {
        case .synSent, .udpOneWay:
            connectionEvent { $0.unanswered(e.pointee.group) }
        case .established, .udpOpened:
            connectionEvent { $0.closed(e.pointee.group) }
        default:
            break
        }
    }

    /// Counts one decoded TCP or UDP packet into `counter` and tracks it. The
    /// packet is classified only when its flow has no answer for its direction
    /// yet: a flow's later packets reuse the entry's `CellCode`, which is what
    /// classifying them again would give (`Classifier.classify(_:cacheable:)`).
    /// Counts never depend on the table: an evicted flow is classified afresh.
    @inline(__always)
    func countAndObserve(_ s: PacketSummary, hash: UInt64, known: CellCode = .unknown, hint: UInt8 = 0,
                         counter: PacketCounter) {
        let (i, found, srcIsA) = locate(s, hash: hash, hint: hint)
        let e = entries + i
        if found {
            let code = srcIsA ? e.pointee.codeFromA : e.pointee.codeFromB
            if code == .unknown {
                let c = classification(s, known: known, counter: counter)
                counter.count(s, code: c.code)
                if c.cacheable { remember(c.code, in: e, srcIsA: srcIsA) }
                continueFlow(e, s, srcIsA: srcIsA, group: c.group)
            } else {
                // The common case: the flow's code is known. Its connection
                // group is worked out only if the flow restarts.
                counter.count(s, code: code)
                if idled(e, s) {
                    restart(e, s, srcIsA: srcIsA, group: ConnectionGroup(cell: code.cell))
                } else if changesNothing(e, s, srcIsA: srcIsA) {
                    // Its state and rank stay as they are.
                    e.pointee.lastSeen = s.timestampNanos
                    return
                } else {
                    advance(e, s, srcIsA: srcIsA)
                }
            }
        } else {
            let c = classification(s, known: known, counter: counter)
            counter.count(s, code: c.code)
            e.pointee.codeFromA = .unknown
            e.pointee.codeFromB = .unknown
            if c.cacheable { remember(c.code, in: e, srcIsA: srcIsA) }
            start(e, s, srcIsA: srcIsA, group: c.group)
            ranks(i)[i & (Self.bucketSize - 1)] = Self.rank(e.pointee.state)
            // After the flow is in place, so that a split moves it with the rest.
            if occupancyCounter.load(ordering: .relaxed) > growAt { grow() }
            return
        }
        ranks(i)[i & (Self.bucketSize - 1)] = Self.rank(e.pointee.state)
    }

    /// How the packet is counted: the reader's code when it sent one (always
    /// cacheable, and its cell is below `CellCode.maximumCell`, so its
    /// connection group reads back exactly), else the classifier's answer.
    @inline(__always)
    private func classification(_ s: PacketSummary, known: CellCode, counter: PacketCounter)
        -> (code: CellCode, group: ConnectionGroup, cacheable: Bool) {
        if known != .unknown { return (known, ConnectionGroup(cell: known.cell), true) }
        return classifyNewFlow(s, counter: counter)
    }

    /// The classifier's answer for the first packet of a flow direction: out
    /// of line, so the common case (the reader's code, or the entry's) keeps
    /// its registers.
    @inline(never)
    private func classifyNewFlow(_ s: PacketSummary, counter: PacketCounter)
        -> (code: CellCode, group: ConnectionGroup, cacheable: Bool) {
        let c = counter.classifyForFlow(s)
        return (c.code, ConnectionGroup(relay: c.slot.relay, category: c.slot.category.rawValue), c.cacheable)
    }

    @inline(__always)
    private func remember(_ code: CellCode, in e: UnsafeMutablePointer<FlowEntry>, srcIsA: Bool) {
        if srcIsA { e.pointee.codeFromA = code } else { e.pointee.codeFromB = code }
    }

    /// The next packet of a known flow: a new conversation if the old one
    /// idled past its timeout, else the next step of this one.
    @inline(__always)
    private func continueFlow(_ e: UnsafeMutablePointer<FlowEntry>, _ s: PacketSummary, srcIsA: Bool,
                              group: ConnectionGroup) {
        if idled(e, s) {
            restart(e, s, srcIsA: srcIsA, group: group)
        } else {
            advance(e, s, srcIsA: srcIsA)
        }
    }

    /// Whether `s` leaves flow `e`'s state and bits as they are, so that
    /// only its time moves (what `advance` would find): TCP without SYN,
    /// FIN or RST in an opened connection, or mid-stream from a side whose
    /// data was seen already (or without data); UDP in an opened flow. Most
    /// packets of a busy relay; checked inline, where the state machine's
    /// call and the rank's store cost 60 instructions per packet (callgrind).
    @inline(__always)
    private func changesNothing(_ e: UnsafeMutablePointer<FlowEntry>, _ s: PacketSummary, srcIsA: Bool) -> Bool {
        let state = e.pointee.state
        if s.proto == .tcp {
            guard s.tcpFlags & (TCPFlags.syn.rawValue | TCPFlags.fin.rawValue | TCPFlags.rst.rawValue) == 0 else {
                return false
            }
            if state == .established { return true }
            let dataBit = srcIsA ? FlowBits.dataA : FlowBits.dataB
            return state == .midstream && (s.payloadLength == 0 || e.pointee.bits & dataBit != 0)
        }
        return state == .udpOpened
    }

    /// Whether flow `e` was idle past its timeout when `s` came.
    @inline(__always)
    private func idled(_ e: UnsafeMutablePointer<FlowEntry>, _ s: PacketSummary) -> Bool {
        s.timestampNanos &- e.pointee.lastSeen > timeout(e.pointee.state)
    }

    /// Idle too long: that conversation ended; `s` starts a new one. Rare,
    /// so out of line.
    @inline(never)
    private func restart(_ e: UnsafeMutablePointer<FlowEntry>, _ s: PacketSummary, srcIsA: Bool,
                         group: ConnectionGroup) {
        finish(e)
        start(e, s, srcIsA: srcIsA, group: group)
    }

    /// The slot of `s`'s flow, whether it was there, and whether `s` comes
    /// from the flow's end `a` (`FlowKey`). When it was not there, the slot
    /// (free, or a victim whose flow has been finished) now holds the
    /// canonical key and its tag; the caller starts the flow.
    ///
    /// `hint` (slot in the bucket + 1, from `prefetchEntry` a few packets
    /// earlier) is checked, not trusted: when that slot still holds this tag
    /// and key, it is the flow's (a flow is in one slot only) and the
    /// bucket's second tag scan is skipped; otherwise the scan runs as usual.
    @inline(__always)
    private func locate(_ s: PacketSummary, hash: UInt64, hint: UInt8 = 0) -> (Int, Bool, srcIsA: Bool) {
        let now = s.timestampNanos
        if now > clock { clock = now }
        sweepCountdown &-= 1
        if sweepCountdown < 0 { sweepStep() }

        let (first, tag) = bucket(hash)
        if hint != 0 {
            // Safe: hint - 1 < bucketSize, so the slot lies in this bucket.
            let i = first + Int(hint &- 1) & (Self.bucketSize - 1)
            if self.tag(i) == tag {
                let end = self.end(of: entries + i, s)
                if end != 0 { return (i, true, end == 1) }
            }
        }
        // Safe: first + bucketSize ≤ capacity by construction of bucketMask, and
        // a bucket's line is 64-byte aligned.
        let m = CLinuxShim_matchBucketTags(tags(first), tag)
        var hits = m & 0xFFFF
        while hits != 0 {
            let i = first + hits.trailingZeroBitCount
            let end = self.end(of: entries + i, s)
            if end != 0 { return (i, true, end == 1) }
            hits &= hits &- 1
        }
        let free: Int
        if m >> 16 != 0 {
            free = first + (m >> 16).trailingZeroBitCount  // the first empty slot
            setOccupancy(1)
            // Safe: free < capacity, so its group < groupCount.
            touchedGroups[Int(bitPattern: UInt(bitPattern: free) / UInt(Self.bucketSize * Self.groupBuckets))] = 1
        } else {
            free = victim(first, rotation: Self.rotation(hash))
            finish(entries + free)
        }
        setTag(free, tag)
        let key = FlowKey(s)
        let e = entries + free
        e.pointee.aHi = key.a.hi; e.pointee.aLo = key.a.lo; e.pointee.bHi = key.b.hi; e.pointee.bLo = key.b.lo
        e.pointee.aPort = key.aPort; e.pointee.bPort = key.bPort; e.pointee.proto = s.proto.rawValue
        return (free, false, key.srcIsA)
    }

    /// Whether entry `e` is the flow of `s`, and from which of its ends `s`
    /// comes: 1 from `a`, 2 from `b`, 0 when it is another flow. Both
    /// orders are tried rather than the packet's key made canonical first
    /// (25 instructions per packet in callgrind); a flow whose ends are
    /// equal matches the first, as `FlowKey` would put the source at `a`.
    @inline(__always)
    private func end(of e: UnsafeMutablePointer<FlowEntry>, _ s: PacketSummary) -> Int {
        guard e.pointee.proto == s.proto.rawValue else { return 0 }
        if e.pointee.aLo == s.src.lo && e.pointee.bLo == s.dst.lo && e.pointee.aPort == s.srcPort.rawValue
            && e.pointee.bPort == s.dstPort.rawValue && e.pointee.aHi == s.src.hi && e.pointee.bHi == s.dst.hi {
            return 1
        }
        if e.pointee.aLo == s.dst.lo && e.pointee.bLo == s.src.lo && e.pointee.aPort == s.dstPort.rawValue
            && e.pointee.bPort == s.srcPort.rawValue && e.pointee.aHi == s.dst.hi && e.pointee.bHi == s.src.hi {
            return 2
        }
        return 0
    }

    /// How much a flow is worth keeping when its bucket is full (lower goes first).
    @inline(__always)
    private static func rank(_ state: FlowState) -> UInt8 {
        switch state {
        case .closed: return 0
        case .synSent, .udpOneWay: return 1
        case .synAckSeen, .midstream: return 2
        default: return 3
        }
    }

    /// The slot of a full bucket to reuse: the lowest rank, the first found
    /// from a rotation given by the new flow's hash. An eviction unless that
    /// flow had already outlived its idle timeout (the sweep had not reached it).
    @inline(__always)
    private func victim(_ first: Int, rotation: Int) -> Int {
        let best = victimCandidate(first, rotation: rotation)
        let e = entries + best
        if clock &- e.pointee.lastSeen <= timeout(e.pointee.state) { bump(evictionCounter) }
        return best
    }

    /// The lowest-ranked slot of a full bucket, first from `rotation`.
    @inline(__always)
    private func victimCandidate(_ first: Int, rotation: Int) -> Int {
        // Safe: the bucket's 16 rank bytes.
        first + Int(CLinuxShim_lowestRankSlot(ranks(first), UInt32(truncatingIfNeeded: rotation)))
    }

    /// A new conversation in slot `e` (key already set) begins with packet `s`.
    @inline(__always)
    private func start(_ e: UnsafeMutablePointer<FlowEntry>, _ s: PacketSummary, srcIsA: Bool,
                       group: ConnectionGroup) {
        e.pointee.group = group
        e.pointee.lastSeen = s.timestampNanos
        let fromA = srcIsA
        if s.proto == .udp {
            e.pointee.state = .udpOneWay
            e.pointee.bits = fromA ? FlowBits.initiatorIsA : 0
            return
        }
        let f = s.tcpFlags
        if f & TCPFlags.syn.rawValue != 0 && f & (TCPFlags.ack.rawValue | TCPFlags.rst.rawValue) == 0 {
            e.pointee.state = .synSent
            e.pointee.bits = fromA ? FlowBits.initiatorIsA : 0
        } else if f & TCPFlags.rst.rawValue != 0 {
            // Nothing to follow: a reset of something we never saw.
            e.pointee.state = .closed
            e.pointee.bits = 0
        } else {
            e.pointee.state = .midstream
            e.pointee.bits = 0
            advance(e, s, srcIsA: srcIsA)
        }
    }

    /// Moves flow `e` on by one packet (TCP state from flags; UDP by direction).
    @inline(__always)
    private func advance(_ e: UnsafeMutablePointer<FlowEntry>, _ s: PacketSummary, srcIsA: Bool) {
        e.pointee.lastSeen = s.timestampNanos
        let p = Segment(s, entry: e.pointee, srcIsA: srcIsA)
        if s.proto == .udp { return advanceUDP(e, p) }
        switch e.pointee.state {
        case .synSent: advanceFromSynSent(e, p)
        case .synAckSeen: advanceFromSynAckSeen(e, p)
        case .midstream: advanceFromMidstream(e, p, hasPayload: s.payloadLength > 0)
        case .established: advanceFromEstablished(e, p)
        case .closed: advanceFromClosed(e, p)
        default: break
        }
    }

    /// What one packet tells a flow's state machine.
    struct Segment {
        let syn: Bool, ack: Bool, rst: Bool, fin: Bool
        let srcIsA: Bool
        let fromInitiator: Bool
        let group: ConnectionGroup
        /// This side's FIN and data bits in `FlowEntry.bits`.
        var finBit: UInt8 { srcIsA ? FlowBits.finA : FlowBits.finB }
        var dataBit: UInt8 { srcIsA ? FlowBits.dataA : FlowBits.dataB }

        @inline(__always)
        init(_ s: PacketSummary, entry: FlowEntry, srcIsA: Bool) {
            let f = s.tcpFlags
            syn = f & TCPFlags.syn.rawValue != 0
            ack = f & TCPFlags.ack.rawValue != 0
            rst = f & TCPFlags.rst.rawValue != 0
            fin = f & TCPFlags.fin.rawValue != 0
            self.srcIsA = srcIsA
            fromInitiator = (entry.bits & FlowBits.initiatorIsA != 0) == srcIsA
            group = entry.group
        }
    }

    /// A UDP flow counts as opened once the other side answers.
    @inline(__always)
    private func advanceUDP(_ e: UnsafeMutablePointer<FlowEntry>, _ p: Segment) {
        if e.pointee.state == .udpOneWay && !p.fromInitiator {
            e.pointee.state = .udpOpened
            connectionEvent { $0.opened(p.group) }
        }
    }

    @inline(__always)
    private func advanceFromSynSent(_ e: UnsafeMutablePointer<FlowEntry>, _ p: Segment) {
        if p.rst {
            // Refused or abandoned before any SYN-ACK: the attempt went unanswered.
            connectionEvent { $0.unanswered(p.group) }
            e.pointee.state = .closed
        } else if p.syn && p.ack && !p.fromInitiator {
            e.pointee.state = .synAckSeen
        }
    }

    @inline(__always)
    private func advanceFromSynAckSeen(_ e: UnsafeMutablePointer<FlowEntry>, _ p: Segment) {
        if p.rst {
            e.pointee.state = .closed
        } else if p.fromInitiator && p.ack && !p.syn {
            e.pointee.state = .established
            connectionEvent { $0.opened(p.group) }
            if p.fin { e.pointee.bits |= p.finBit }
        }
    }

    /// A flow first seen mid-connection: established once both sides carried
    /// data, closed once both sent FIN.
    @inline(__always)
    private func advanceFromMidstream(_ e: UnsafeMutablePointer<FlowEntry>, _ p: Segment, hasPayload: Bool) {
        if p.rst {
            e.pointee.state = .closed
        } else if p.syn && !p.ack {
            e.pointee.state = .synSent
            e.pointee.bits = p.srcIsA ? FlowBits.initiatorIsA : 0
        } else {
            var nb = e.pointee.bits
            if hasPayload { nb |= p.dataBit }
            if p.fin { nb |= p.finBit }
            e.pointee.bits = nb
            guard nb & (FlowBits.dataA | FlowBits.dataB) == FlowBits.dataA | FlowBits.dataB else { return }
            e.pointee.state = .established
            connectionEvent { $0.opened(p.group) }
            if nb & (FlowBits.finA | FlowBits.finB) == FlowBits.finA | FlowBits.finB {
                connectionEvent { $0.closed(p.group) }
                e.pointee.state = .closed
            }
        }
    }

    @inline(__always)
    private func advanceFromEstablished(_ e: UnsafeMutablePointer<FlowEntry>, _ p: Segment) {
        if p.rst {
            connectionEvent { $0.closed(p.group) }
            e.pointee.state = .closed
        } else if p.fin {
            let nb = e.pointee.bits | p.finBit
            e.pointee.bits = nb
            if nb & (FlowBits.finA | FlowBits.finB) == FlowBits.finA | FlowBits.finB {
                connectionEvent { $0.closed(p.group) }
                e.pointee.state = .closed
            }
        }
    }

    /// The same addresses and ports, a new connection.
    @inline(__always)
    private func advanceFromClosed(_ e: UnsafeMutablePointer<FlowEntry>, _ p: Segment) {
        if p.syn && !p.ack && !p.rst {
            e.pointee.state = .synSent
            e.pointee.bits = p.srcIsA ? FlowBits.initiatorIsA : 0
        }
    }

    /// Splits the next bucket (linear hashing: the type's comment): the flows
    /// of bucket `p` whose hash names the new bucket `bucketCount` move
    /// there, with their tags and ranks. The new bucket's memory has never
    /// been used (zero: empty), and its pages fault in now if they are new,
    /// one 4 KiB page per 73 entries or per 64 bucket lines: the only page
    /// faults a growing table takes on the packet path.
    @inline(never)
    private func grow() {
        let half = lowMask &+ 1
        let from = (bucketCount &- half) &* Self.bucketSize, to = bucketCount &* Self.bucketSize
        var moved = 0
        // Safe: both buckets lie below capacity (bucketCount < maxBuckets here),
        // each line 64-byte aligned.
        var used = usedSlots(from)
        while used != 0 {
            let k = used.trailingZeroBitCount
            used &= used &- 1
            let e = entries + from + k
            guard Int(truncatingIfNeeded: Self.hash(e)) & highMask == bucketCount else { continue }
            (entries + to + moved).pointee = e.pointee
            setTag(to + moved, tag(from + k))
            ranks(to)[moved] = ranks(from)[k]
            setTag(from + k, 0)
            ranks(from)[k] = 0
            moved += 1
        }
        if moved > 0 { touchedGroups[bucketCount / Self.groupBuckets] = 1 }
        bucketCount += 1
        if bucketCount == 2 * half { (lowMask, highMask) = (highMask, highMask &* 2 &+ 1) }
        growAt = Self.growthThreshold(buckets: bucketCount, of: maxBuckets)
        let slots = bucketCount * Self.bucketSize
        activeCounter.store(slots, ordering: .relaxed)
        if slots * MemoryLayout<FlowEntry>.stride >= hugeEntries + TableMemory.hugePage {
            hugeEntries = entryMemory.adviseHugePages(used: slots * MemoryLayout<FlowEntry>.stride, from: hugeEntries)
            hugeLines = bucketMemory.adviseHugePages(used: slots * Self.bucketBytesPerSlot, from: hugeLines)
        }
    }

    /// The hash `PacketSummary.symmetricFlowHash` gives the packets of the
    /// flow in entry `e` (it is symmetric, so the canonical key gives it).
    @inline(__always)
    private static func hash(_ e: UnsafeMutablePointer<FlowEntry>) -> UInt64 {
        PacketSummary.symmetricFlowHash(e.pointee.aHi, e.pointee.aLo, e.pointee.aPort,
                                        e.pointee.bHi, e.pointee.bLo, e.pointee.bPort, proto: e.pointee.proto)
    }

    /// Empties the table for a new configuration, keeping its memory and the
    /// size it grew to: a reload that keeps the table sizes reuses the
    /// tables instead of making new ones beside them. Flows in it are
    /// forgotten, not ended (as a new table would never have seen them); the
    /// connection metrics from now on go to `connections`. Owner thread
    /// only, once it no longer counts under the old configuration.
    func startOver(connections: ConnectionCounters) {
        // Safe: the active buckets' lines, inside the mapping.
        bucketLines.initializeMemory(as: UInt8.self, repeating: 0, count: bucketCount * Self.bucketSize * Self.bucketBytesPerSlot)
        touchedGroups.update(repeating: 0, count: groupCount)
        occupancyCounter.store(0, ordering: .relaxed)
        sweepCursor = 0
        self.connections = connections
        unretainedConnections = .passUnretained(connections)
    }

    /// Expires idle flows in one bucket; called every few packets so the table
    /// frees itself at a bounded cost per packet.
    @inline(never)
    private func sweepStep() {
        sweepCountdown = 16
        let first = sweepCursor * Self.bucketSize
        sweepCursor = sweepCursor + 1 == bucketCount ? 0 : sweepCursor + 1
        expire(bucketFrom: first, now: clock)
    }

    private func expire(bucketFrom first: Int, now: Int64) {
        // Only the slots in use, by the bucket's empty mask: a slot-by-slot
        // walk read 16 tags per step, 15 instructions per packet (callgrind).
        var used = usedSlots(first)
        while used != 0 {
            let i = first + used.trailingZeroBitCount
            used &= used &- 1
            let e = entries + i
            if now &- e.pointee.lastSeen > timeout(e.pointee.state) { remove(i) }
        }
    }

    /// The slots of bucket `first` in use, as bits (bit k: slot first + k).
    @inline(__always)
    private func usedSlots(_ first: Int) -> UInt32 {
        // Safe: a bucket's line is 64-byte aligned (the region is 2 MiB aligned).
        ~(CLinuxShim_matchBucketTags(tags(first), 0) >> 16) & 0xFFFF
    }

    /// Ends the flow in slot `i` (counted as by timeout) and frees the slot.
    private func remove(_ i: Int) {
        let e = entries + i
        finish(e)
        setTag(i, 0)
        e.pointee.state = .empty
        setOccupancy(-1)
    }

    /// The end of a replay (docs/engine.md): flows idle past their timeout at
    /// `now` (the last packet time of the whole replay) end as by timeout;
    /// then every attempt still waiting for an answer counts as unanswered.
    /// Opened connections stay active. Only after the worker has stopped.
    ///
    /// One pass over the groups flows ever used (`touchedGroups`), skipping
    /// empty buckets by their tag line: the two rules touch different
    /// entries' counters only, so their order does not matter; a small
    /// replay pays for the groups its flows touched, not for the table.
    func finishReplay(now: Int64) {
        let clockNow = max(now, clock)
        let groupSlots = Self.groupBuckets * Self.bucketSize
        for g in 0..<groupCount where touchedGroups[g] != 0 {
            let end = min(bucketCount * Self.bucketSize, (g + 1) * groupSlots)
            for first in stride(from: g * groupSlots, to: end, by: Self.bucketSize) {
                // Visit only the slots in use, in ascending order, by the bucket's empty mask.
                var used = usedSlots(first)
                while used != 0 {
                    let i = first + used.trailingZeroBitCount
                    used &= used &- 1
                    let e = entries + i
                    let state = e.pointee.state
                    if state == .synSent || state == .udpOneWay || clockNow &- e.pointee.lastSeen > timeout(state) {
                        remove(i)
                    }
                }
            }
        }
    }
}

extension Classifier {
    /// `listenerCode` for a connection attempt (SYN without ACK), else
    /// `.unknown`: the code the replay reader hands its worker and the live
    /// path hands its own table. Only SYNs: for the other packets of a flow
    /// the table already knows the answer, and the probe would be paid twice.
    @inline(__always)
    func connectionAttemptCode(_ s: PacketSummary, layout: CounterLayout) -> CellCode {
        let opens = s.tcpFlags & (TCPFlags.syn.rawValue | TCPFlags.ack.rawValue) == TCPFlags.syn.rawValue
        return opens ? listenerCode(s, layout: layout) : .unknown
    }
}
