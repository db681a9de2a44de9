import FlowMeterFormat
import FlowMeterCore
import FlowMeterAccounting
import Foundation
import Logging

/// Why a flush happened (logged, and decides whether the WAL is checkpointed).
public struct FlushReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    /// The flush interval of clock time passed.
    public static let interval = FlushReason(rawValue: "interval")
    /// A bucket or quota period ended (callers flush at their own period edges too).
    public static let periodEdge = FlushReason(rawValue: "period_edge")
    /// The clock stepped further than the policy allows, either way.
    public static let clockJump = FlushReason(rawValue: "clock_jump")
    /// The agent or replay is stopping.
    public static let shutdown = FlushReason(rawValue: "shutdown")
    public var description: String { rawValue }
}

/// What the accumulator has done, for logs, metrics and tests.
public struct AccumulatorStats: Sendable, Equatable {
    public var flushes = 0
    public var failedFlushes = 0
    public var backwardClockJumps = 0
    public var forwardClockJumps = 0
    public var counterResets = 0
    public var ignoredInstants = 0
    /// The error of the last flush, nil once a flush succeeds again.
    public var lastError: StoreError?
}

/// Turns cumulative `CounterSnapshot`s taken at clock instants into per-bucket
/// deltas and writes them to the store in batches.
///
/// Control plane, called at most a few times a second (a timer in `run`, bucket
/// edges in `replay` through `BucketClock`), never per packet. Confined to one
/// thread. The clock is whatever the caller passes: the system clock in `run`,
/// capture timestamps in `replay`, a synthetic one in tests.
///
/// Invariants: every count observed is either in `pending` or committed, never
/// both and never neither (a failed write keeps the batch, a successful one
/// clears exactly it); no delta is ever negative.
///
/// Clock policy (vnstat#160/#251 taught what not to do; all are logged):
/// - backward step: counting continues in the bucket of the new time; pending
///   counts are flushed at once; nothing is subtracted.
/// - forward step beyond `clockJumpThresholdSeconds`: the skipped span is
///   recorded as a `clock_jump` gap, pending counts are flushed, and retention
///   pruning is suspended for this process so a clock set to 2050 cannot
///   delete history.
/// - a non-finite or absurd instant (before 1970, or past 2255) is ignored:
///   nothing is ever stored at an instant `AccountingReader` would refuse.
public final class BucketAccumulator {
    public let configuration: StoreConfiguration
    public let relayLabels: [String]
    public let path: String
    public private(set) var stats = AccumulatorStats()
    /// Why the store could not be opened at start, if it could not: shown to
    /// the operator; counting goes on and opening is retried at each flush.
    public private(set) var openError: StoreError?

    private var store: AccountingStore?
    private var logger: Logger
    private var baseline: CounterSnapshot?
    private var pending: [PendingKey: CellCounts] = [:]
    private var pendingGaps: [GapRecord] = []
    private var pendingState: [String: String] = [:]
    private var pendingStateIfAbsent: [String: String] = [:]
    private var pendingSurges: [SurgeSpan] = []
    private var clockNanos: Int64?
    private var sessionStartNanos: Int64?
    private var nextFlushNanos: Int64 = .max
    private var pruneDue = false
    private var pruneSuspended = false
    private var restartGapRecorded = false
    private var pendingImports: [CaptureFingerprint] = []

    /// Holds every count in memory until the `shutdown` flush, which writes
    /// them in one transaction with the imports' fingerprints: an import is
    /// stored whole or not at all (`replay --db`, docs/storage.md "Imports").
    public var writesOnlyAtShutdown = false

    struct PendingKey: Hashable {
        var resolution: Int
        var startUTC: Int64
        /// A counter cell (relay, category, direction), or -1 for undecoded packets.
        var cell: Int
    }

    /// Opens the store at `path`. If it cannot be opened (read-only or
    /// missing directory, full disk) the error is logged and kept in
    /// `openError`, counting goes on in memory and every flush tries again.
    /// A newer schema or a second writer is thrown: retrying cannot fix those.
    /// - Parameter openFailureIsFatal: throw instead when the store cannot
    ///   be opened now (the live agent's start: the operator is there to fix it).
    public init(path: String, configuration: StoreConfiguration = StoreConfiguration(),
                relayLabels: [String], logger: Logger = Logger(label: "flowmeter.store"),
                openFailureIsFatal: Bool = false) throws {
        self.path = path
        self.configuration = configuration
        self.relayLabels = relayLabels
        self.logger = logger
        if let problem = configuration.problem() { throw StoreError.invalidConfiguration(problem) }
        do {
            store = try AccountingStore(path: path, configuration: configuration)
        } catch let e as StoreError {
            switch e {
            case .newerSchema, .notAFlowMeterDatabase, .writerBusy, .olderSchema, .invalidConfiguration, .unexpectedSchema, .notAFile: throw e
            default:
                if openFailureIsFatal { throw e }
                openError = e
                stats.lastError = e
                logger.error("\(e.description); counting continues in memory and opening is retried at each flush")
            }
        }
    }

    // MARK: Observing

    /// Adds the counts since the previous snapshot to the buckets that contain
    /// `instant`, after moving the clock there (flushing when due).
    /// `snapshot` is cumulative (as `CounterBlock.snapshot()` returns it).
    public func observe(_ snapshot: CounterSnapshot, at instant: Date) {
        guard let t = Self.nanos(instant) else { stats.ignoredInstants += 1; logIgnored(instant); return }
        observe(snapshot, atNanos: t)
    }

    /// `observe(_:at:)` with the capture's own nanosecond timestamp. An
    /// instant before 1970 is ignored (its counts wait for the next sound one).
    public func observe(_ snapshot: CounterSnapshot, atNanos t: Int64) {
        guard Self.storable(t) else { stats.ignoredInstants += 1; logIgnored(nanos: t); return }
        let reason = moveClock(to: t)
        addDeltas(snapshot, atNanos: t)
        if let reason { flush(reason: reason) }
    }

    /// Moves the clock without new counts; flushes when an interval or a
    /// bucket edge has passed. Call it from a timer when traffic is idle.
    public func advanceClock(to instant: Date) {
        guard let t = Self.nanos(instant) else { stats.ignoredInstants += 1; logIgnored(instant); return }
        advanceClock(toNanos: t)
    }

    public func advanceClock(toNanos t: Int64) {
        guard Self.storable(t) else { stats.ignoredInstants += 1; logIgnored(nanos: t); return }
        if let reason = moveClock(to: t) { flush(reason: reason) }
    }

    /// Marks `[start, end)` as a span whose counts are a lower bound
    /// (capture drops, a hole between replayed files); written at the next flush.
    public func recordGap(from start: Date, to end: Date, reason: GapReason) {
        guard let s = Self.nanos(start), let e = Self.nanos(end) else { return }
        pendingGaps.append(GapRecord(startUTC: Self.seconds(s), endUTC: Self.seconds(e + 999_999_999), reason: reason))
    }

    /// The next snapshot comes from counters that started at zero (a new
    /// `CounterBlock` for the next replayed file, a restarted worker): all of
    /// its values are new counts. (A drop in any value is detected anyway;
    /// this covers a new block whose values all happen to be higher.)
    public func countersRestarted() { baseline = nil }

    /// A named continuity value (e.g. a quota period's start) written with the next flush.
    public func setState(_ value: String, for name: String) { pendingState[name] = value }

    /// Surge spans written with the next flush; a later record of the same
    /// span (same cell and start) replaces an earlier one.
    public func recordSurges(_ spans: [SurgeSpan]) {
        for s in spans {
            pendingSurges.removeAll { $0.start == s.start && $0.relay == s.relay && $0.category == s.category && $0.direction == s.direction }
            pendingSurges.append(s)
        }
        // Bounded while the store cannot be written: the oldest ended spans go first.
        if pendingSurges.count > 2 * SurgeDetector.maxPendingSpans { pendingSurges.removeFirst(pendingSurges.count - 2 * SurgeDetector.maxPendingSpans) }
    }

    /// The next instant at which the clock must be shown to the accumulator
    /// (a bucket edge or a flush), for `BucketClock`'s one compare per packet.
    public var nextCheckNanos: Int64 {
        guard let c = clockNanos else { return .min }
        return min(nextFlushNanos, nextEdgeNanos(after: c))
    }

    /// Start (nanoseconds) of the finest bucket holding the clock.
    public var currentBucketStartNanos: Int64 {
        guard let c = clockNanos else { return .min }
        return configuration.finest.start(of: Self.seconds(c)) * 1_000_000_000
    }

    /// Buckets (per resolution and label) not yet written.
    public var pendingBucketCount: Int { pending.count }
    /// Packets observed but not yet written.
    public var pendingPackets: UInt64 {
        let finest = configuration.finest.rawValue
        return pending.reduce(0) { $0 + ($1.key.resolution == finest ? $1.value.packets : 0) }
    }
    /// The clock as last shown to the accumulator.
    public var clock: Date? { clockNanos.map { Date(timeIntervalSince1970: Double($0) / 1e9) } }

    // MARK: Flushing

    /// Writes everything pending in one transaction. On failure the counts
    /// stay pending (logged, `stats.lastError`) and the next flush retries.
    /// - Returns: whether the store now holds every count observed.
    @discardableResult
    public func flush(reason: FlushReason) -> Bool {
        defer { if let c = clockNanos { nextFlushNanos = c + configuration.flushIntervalSeconds * 1_000_000_000 } }
        if writesOnlyAtShutdown && reason != .shutdown { return false }
        if store == nil {
            do {
                store = try AccountingStore(path: path, configuration: configuration)
                logger.notice("\(path): accounting database opened; writing the counts kept in memory")
                openError = nil
            } catch let e as StoreError {
                return failed(e, reason: reason)
            } catch {
                return failed(.cannotOpen(path: path, reason: "\(error)"), reason: reason)
            }
        }
        guard let store else { return false }
        noteRestartGap(store)
        guard var batch = pendingBatch() else { return pending.isEmpty }
        batch.checkpoint = reason != .interval
        do {
            try store.write(batch)
        } catch let e as StoreError {
            return failed(e, reason: reason)
        } catch {
            return failed(.writeFailed(path: path, reason: "\(error)"), reason: reason)
        }
        if stats.lastError != nil {
            logger.notice("\(path): writes succeed again; \(batch.deltas.count) pending buckets saved")
        }
        pending.removeAll(keepingCapacity: true)
        pendingGaps.removeAll()
        pendingState.removeAll()
        pendingStateIfAbsent.removeAll()
        pendingSurges.removeAll()
        pendingImports.removeAll()
        if batch.prune { pruneDue = false }
        stats.flushes += 1
        stats.lastError = nil
        logger.debug("flush (\(reason)): \(batch.deltas.count) buckets, \(batch.gaps.count) gaps")
        return true
    }

    /// Everything the next flush would write, at the clock (nil before the
    /// clock was first shown): for a spill file when it cannot be written.
    public func pendingBatch() -> FlushBatch? {
        guard let clockNanos else { return nil }
        var batch = FlushBatch(clockUTC: Self.seconds(clockNanos))
        batch.deltas = pending.map { key, c in
            BucketDelta(resolution: BucketResolution(rawValue: key.resolution), startUTC: key.startUTC,
                        cell: Cell(labels(ofCell: key.cell), c))
        }
        batch.gaps = pendingGaps
        batch.state = pendingState
        batch.stateIfAbsent = pendingStateIfAbsent
        batch.surges = pendingSurges
        batch.imports = pendingImports
        batch.prune = pruneDue && !pruneSuspended
        return batch
    }

    /// Writes what is pending into a spill file in `directory` (after a
    /// final flush failed), for `mergeSpills` at the next start.
    /// - Returns: the spill written, nil when nothing was pending.
    public func spill(into directory: String) throws -> (SpillFile, path: String)? {
        guard var batch = pendingBatch() else { return nil }
        batch.prune = false
        guard !batch.isEmpty else { return nil }
        let spill = SpillFile(batch, database: Self.absolute(path))
        return (spill, try spill.write(in: directory))
    }

    /// Merges the spill files of this database waiting in `directory`, each
    /// exactly once (`AccountingStore.merge`), and deletes them; a spill
    /// that cannot be merged now stays for the next start. Call it before
    /// the first flush, so the restart gap starts where the spill ends.
    public func mergeSpills(in directory: String) {
        guard let store else { return }
        for file in SpillFile.pending(in: directory) {
            // The file's name and contents are read back from disk: what the
            // log quotes of them is printable and short.
            let name = Format.printable(file, limit: 300)
            do {
                let spill = try SpillFile.read(file)
                guard spill.database == Self.absolute(path) else {
                    logger.warning("\(name): counts of another database (\(Format.printable(spill.database, limit: 300))); left as it is")
                    continue
                }
                if try store.merge(spill) {
                    logger.notice("\(name): merged the \(spill.packets) packets' counts the previous run could not write (up to \(Format.iso8601(seconds: spill.clockUTC)))")
                } else {
                    logger.notice("\(name): merged before; removing it")
                }
                unlink(file)
            } catch {
                logger.error("\(name): counts the previous run could not write are not merged yet: \(error); kept for the next start")
            }
        }
    }

    static func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

    /// A capture whose counts are being observed: its fingerprint is written
    /// with them, so `importedUTC` finds it next time.
    public func recordImport(_ f: CaptureFingerprint) { pendingImports.append(f) }

    /// When a capture with this fingerprint was imported (UTC seconds), or nil.
    public func importedUTC(_ f: CaptureFingerprint) throws -> Int64? {
        guard let store else { throw openError ?? StoreError.readFailed(path: path, reason: "the store is not open") }
        return try store.importedUTC(f)
    }

    /// A value in the store's `state` table (as written by an earlier
    /// flush), or nil; pending values are not seen.
    public func storedState(named name: String) throws -> String? {
        guard let store else { throw openError ?? StoreError.readFailed(path: path, reason: "the store is not open") }
        return try store.state(named: name)
    }

    /// Flushes (reason `shutdown`) and closes the store cleanly.
    /// - Throws: the last `StoreError` if counts could not be saved: the
    ///   caller should tell the operator they are lost.
    public func close() throws {
        if !flush(reason: .shutdown), let e = stats.lastError { throw e }
        try store?.close()
        store = nil
    }

    /// Logged once per state change (a new kind of failure); repeats of the
    /// same failure go to debug, so a full disk does not flood the journal.
    private func failed(_ e: StoreError, reason: FlushReason) -> Bool {
        stats.failedFlushes += 1
        let repeated = stats.lastError?.description == e.description
        stats.lastError = e
        let message: Logger.Message = "flush (\(reason)) failed: \(e.description) [\(pending.count) buckets, \(pendingPackets) packets pending]; counting in memory and retrying"
        if repeated { logger.debug(message) } else { logger.error(message) }
        return false
    }

    // MARK: Clock policy

    /// Moves the clock to `t` and says whether (and why) to flush.
    private func moveClock(to t: Int64) -> FlushReason? {
        guard let prev = clockNanos else {
            clockNanos = t
            sessionStartNanos = t
            pendingStateIfAbsent[AccountingStore.firstObservationKey] = String(t)
            nextFlushNanos = t + configuration.flushIntervalSeconds * 1_000_000_000
            return nil
        }
        clockNanos = t
        // Captures merged from several interfaces are out of order by
        // milliseconds; that is not a clock step worth a warning or a flush.
        if t < prev && prev - t <= 2_000_000_000 { return nil }
        if t < prev {
            stats.backwardClockJumps += 1
            logger.warning("clock stepped back \(Double(prev - t) / 1e9) s (to \(Self.iso(t))): counting continues in the bucket of the new time; pending counts flushed")
            return .clockJump
        }
        let threshold = configuration.clockJumpThresholdSeconds * 1_000_000_000
        if t - prev > threshold {
            stats.forwardClockJumps += 1
            pendingGaps.append(GapRecord(startUTC: Self.seconds(prev), endUTC: Self.seconds(t), reason: .clockJump))
            if !pruneSuspended {
                pruneSuspended = true
                logger.warning("retention pruning suspended until restart: the clock jumped forward")
            }
            logger.warning("clock stepped forward \(Double(t - prev) / 1e9) s (to \(Self.iso(t))): recorded as a clock_jump gap; pending counts flushed")
            return .clockJump
        }
        let fine = configuration.finest
        if BucketResolution.day.start(of: Self.seconds(prev)) != BucketResolution.day.start(of: Self.seconds(t)) { pruneDue = true }
        if fine.start(of: Self.seconds(prev)) != fine.start(of: Self.seconds(t)) { return .periodEdge }
        if t >= nextFlushNanos { return .interval }
        return nil
    }

    private func nextEdgeNanos(after c: Int64) -> Int64 {
        let fine = configuration.finest
        return (fine.start(of: Self.seconds(c)) + Int64(fine.rawValue)) * 1_000_000_000
    }

    /// After a restart the span since the previous writer's last flush holds
    /// no counts: stopped cleanly, or crashed and lost what was pending.
    private func noteRestartGap(_ store: AccountingStore) {
        guard !restartGapRecorded, let start = sessionStartNanos else { return }
        restartGapRecorded = true
        guard let last = store.previousSession.lastFlushUTC else { return }
        let now = Self.seconds(start)
        let crashed = !store.previousSession.closedCleanly
        // A crash always lost what was pending, however quick the restart.
        guard now > last || crashed else { return }
        let reason: GapReason = crashed ? .agentCrashed : .agentStopped
        pendingGaps.append(GapRecord(startUTC: last, endUTC: max(now, last), reason: reason))
        logger.notice("\(path): no counts from \(Format.iso8601(seconds: last)) to \(Format.iso8601(seconds: max(now, last))) (\(Format.duration(Double(max(now, last) - last)))): recorded as \(reason)")
    }

    // MARK: Deltas

    private func addDeltas(_ snapshot: CounterSnapshot, atNanos t: Int64) {
        let layout = snapshot.layout
        if baseline?.layout != layout {
            if baseline != nil { logger.warning("counter layout changed; counting from zero with the new layout") }
            baseline = CounterSnapshot(layout: layout)
        }
        let base = baseline!
        // A counter that went down means a new counter block (a restarted
        // worker, the next replayed file): its values are all new counts.
        let reset = zip(snapshot.values, base.values).contains { $0 < $1 }
        if reset {
            stats.counterResets += 1
            logger.notice("counters restarted from zero; their values are taken as new counts")
        }
        let previous = reset ? CounterSnapshot(layout: layout) : base
        let seconds = Self.seconds(t)
        for cell in 0..<layout.cellCount {
            let c = snapshot.counts(cell: cell) - previous.counts(cell: cell)
            if !c.isZero { add(c, cell: cell, seconds: seconds) }
        }
        let undecoded = CellCounts(packets: snapshot.undecodedPackets - previous.undecodedPackets,
                                   bytes: snapshot.undecodedBytes - previous.undecodedBytes)
        if !undecoded.isZero { add(undecoded, cell: -1, seconds: seconds) }
        baseline = snapshot
    }

    private func add(_ c: CellCounts, cell: Int, seconds: Int64) {
        for r in configuration.resolutions {
            let key = PendingKey(resolution: r.resolution.rawValue, startUTC: r.resolution.start(of: seconds), cell: cell)
            pending[key, default: .zero] += c
        }
    }

    /// Labels of a counter cell (`CounterLayout.slot(ofCell:)`), or of the
    /// undecoded row (cell -1).
    private func labels(ofCell cell: Int) -> CellLabels {
        if cell < 0 { return CellLabels(relay: "host", category: .undecoded, direction: .none) }
        let slot = CounterLayout.slot(ofCell: cell)
        let relay = slot.relay < relayLabels.count ? relayLabels[slot.relay] : "relay_\(slot.relay)"
        return CellLabels(relay: relay, category: slot.category, direction: slot.direction)
    }

    // MARK: Time

    /// Nanoseconds since 1970, or nil for an instant no clock can mean.
    static func nanos(_ d: Date) -> Int64? {
        let s = d.timeIntervalSince1970
        guard s.isFinite, s >= 0, s < 9.0e9 else { return nil }
        return Int64((s * 1e9).rounded(.down))
    }

    /// Instants the store keeps: from 1970 to 9.0e9 s (2255), so every bucket
    /// and gap edge, a day past it included, lies in `StoredRow.instantRange`.
    static func storable(_ nanos: Int64) -> Bool { nanos >= 0 && nanos < 9_000_000_000_000_000_000 }

    static func seconds(_ nanos: Int64) -> Int64 {
        nanos >= 0 ? nanos / 1_000_000_000 : (nanos - 999_999_999) / 1_000_000_000
    }

    static func iso(_ nanos: Int64) -> String { Format.iso8601(nanos: nanos) }

    private func logIgnored(_ d: Date) {
        logger.warning("ignored an instant no clock can mean (\(d.timeIntervalSince1970) s since 1970, out of any date's range)")
    }

    private func logIgnored(nanos: Int64) {
        logger.warning("ignored an instant no clock can mean (\(nanos) ns since 1970)")
    }
}
