import FlowMeterCore
import FlowMeterCapture
import FlowMeterConfig
import FlowMeterAccounting
import FlowMeterStore
import FlowMeterReports
import FlowMeterExport
import Foundation
import Logging
import Synchronization

/// The live agent's link to the accounting store and its quotas: once a
/// second it hands the summed counters to the `BucketAccumulator` (which
/// flushes every N seconds, at period edges and on shutdown), marks spans with
/// drops or capture gaps as lower bounds, and re-evaluates the quotas for
/// `/metrics` every 30 s on a queue of its own.
///
/// Nothing an HTTP handler or the signal handler calls waits on the store:
/// they read `health()` and `quotaStatuses()`, the last results, under locks
/// held only to copy them. The slow parts (a flush, a quota query) run on
/// the ticker's thread and on `reads`, each bounded by `QueryTimeLimit`.
final class AgentStore: @unchecked Sendable {
    // @unchecked Sendable — Safe: the accumulator is used only under `lock`, the
    // reader only on the serial queue `reads`; the rest is behind `published` and `reading`.
    private let accumulator: BucketAccumulator
    private let labels: [String]
    private let path: String
    private let spillDirectory: String
    /// Read on `reads` only (a Tor quota's state file is read again there).
    private var quotas: [(Quota, QuotaStatus.TorInputs?)]
    private let logger: Logger
    private struct Mutable {
        var lastTick: Date? = nil
        var lastDrops: UInt64 = 0
        var lastGaps: UInt64 = 0
        var closed = false
        var lastFlushAt: Date? = nil
        var flushesSeen = 0
    }
    private let lock = Mutex(Mutable())
    /// What the handlers read: copied in and out, never computed under this lock.
    private struct Published {
        var health = StoreHealth(up: true, lastFlushSeconds: nil, writeFailures: 0)
        var quotas: [QuotaStatus] = []
    }
    private let published = Mutex(Published())
    private struct Reading {
        var evaluatedAt: Date? = nil
        var running = false
    }
    private let reading = Mutex(Reading())
    private let reads = DispatchQueue(label: "flowmeter.store-reads")
    /// Used only on `reads` (a serial queue), so it needs no lock.
    private var reader: AccountingReader? = nil
    static let quotaRefreshSeconds: TimeInterval = 30

    /// How the final write went (`close`).
    enum FinalWrite: Equatable {
        case stored
        /// The counts are in this spill file; the next start merges them.
        case spilled(path: String, packets: UInt64)
        /// Neither the store nor a spill file could take them.
        case lost(packets: UInt64, reason: String)
    }

    /// Opens the store or throws: at start a store that cannot be opened is
    /// the operator's to fix (exit 1); later failures are retried. Counts a
    /// previous run left in `spillDirectory` are merged first.
    init(path: String, configuration: StoreConfiguration = StoreConfiguration(), labels: [String],
         quotas: [(Quota, QuotaStatus.TorInputs?)], spillDirectory: String? = nil, logger: Logger) throws {
        accumulator = try BucketAccumulator(path: path, configuration: configuration, relayLabels: labels, logger: logger,
                                            openFailureIsFatal: true)
        self.labels = labels
        self.path = path
        self.spillDirectory = spillDirectory ?? (path as NSString).deletingLastPathComponent
        self.quotas = quotas
        self.logger = logger
        accumulator.mergeSpills(in: self.spillDirectory)
        lock.withLock { $0.lastFlushAt = Date() }   // opening wrote the schema: the store took a write
        publishHealth(lastFlushAt: Date())
    }

    /// The agent's counters in the store's layout (the relays it started
    /// with; relays added by a reload are stored after a restart).
    static func snapshot(_ r: AgentReading, labels: [String]) -> CounterSnapshot {
        let layout = CounterLayout(relayCount: labels.count)
        var s = CounterSnapshot(layout: layout)
        let table = r.cells
        for (i, label) in labels.enumerated() {
            for c in Category.allCases {
                for d in Direction.allCases {
                    let slot = CounterSlot(relay: i, category: c, direction: d)
                    for f in 0..<CellField.count {
                        s.values[layout.index(slot, CellField(rawValue: f))] = table.value(relay: label, c, d, CellField(rawValue: f))
                    }
                }
            }
        }
        for (reason, packets, bytes) in r.reasons {
            s.values[layout.reasonIndex(reason, bytes: false)] = packets
            s.values[layout.reasonIndex(reason, bytes: true)] = bytes
        }
        return s
    }

    /// Once a second (and once more at the end), with the surge spans to
    /// write at the next flush.
    func tick(_ r: AgentReading, now: Date, surges: AgentSurges? = nil) {
        let flushedAt: Date? = lock.withLock { m in
            guard !m.closed else { return nil }
            if let surges { accumulator.recordSurges(surges.drainSpans()) }
            accumulator.observe(Self.snapshot(r, labels: labels), at: now)
            if let last = m.lastTick {
                if r.totalDrops > m.lastDrops { accumulator.recordGap(from: last, to: now, reason: .captureDrops) }
                if r.totalGaps > m.lastGaps { accumulator.recordGap(from: last, to: now, reason: .captureGap) }
            }
            m.lastDrops = r.totalDrops
            m.lastGaps = r.totalGaps
            m.lastTick = now
            if accumulator.stats.flushes != m.flushesSeen {
                m.flushesSeen = accumulator.stats.flushes
                m.lastFlushAt = now
            }
            accumulator.setState(String(Int64(now.timeIntervalSince1970 * 1e9)), for: AccountingStore.lastObservationKey)
            return m.lastFlushAt
        }
        if let flushedAt { publishHealth(lastFlushAt: flushedAt) }
    }

    /// Flushes and closes; says where the final counts went. When the store
    /// cannot take them they go to a spill file in the state directory, and
    /// when that fails too the log says, loudly, what was lost.
    func close(_ r: AgentReading, now: Date, surges: AgentSurges? = nil) -> FinalWrite {
        tick(r, now: now, surges: surges)
        let result: FinalWrite = lock.withLock { m in
            guard !m.closed else { return .stored }
            m.closed = true
            do {
                try accumulator.close()
                return .stored
            } catch {
                let pendingPackets = accumulator.pendingPackets
                guard let batch = accumulator.pendingBatch(), !batch.deltas.isEmpty || !batch.gaps.isEmpty else {
                    logger.warning("\(path): the store was not closed cleanly (\(error)); every count was written")
                    return .stored
                }
                logger.error("\(path): the final counters could not be saved: \(error)")
                do {
                    guard let (_, file) = try accumulator.spill(into: spillDirectory) else { return .stored }
                    logger.error("\(path): \(pendingPackets) packets' counts kept in \(file); the next start merges them into the store")
                    return .spilled(path: file, packets: pendingPackets)
                } catch {
                    logger.critical("\(path): \(pendingPackets) packets' counts are LOST: neither the store nor a spill file in \(spillDirectory) could take them (\(error))")
                    return .lost(packets: pendingPackets, reason: "\(error)")
                }
            }
        }
        publishHealth(lastFlushAt: nil)
        return result
    }

    /// For /metrics: up while the last write succeeded. Never waits on a flush.
    func health() -> StoreHealth { published.withLock { $0.health } }

    private func publishHealth(lastFlushAt: Date?) {
        let stats = lock.withLock { _ in accumulator.stats }
        published.withLock { p in
            p.health = StoreHealth(up: stats.lastError == nil,
                                   lastFlushSeconds: lastFlushAt?.timeIntervalSince1970 ?? p.health.lastFlushSeconds,
                                   writeFailures: UInt64(stats.failedFlushes))
        }
    }

    /// Every quota's status as last evaluated (`refreshReads`), with tor's
    /// bytes from the latest control-port reading of the same interval:
    /// quotas are evaluated every 30 s, tor is polled every 10 s, and its
    /// bytes are exact, so every view shows the latest. Never waits.
    func quotaStatuses(torControl: [TorControlStatus] = []) -> [QuotaStatus] {
        published.withLock { $0.quotas }.map { $0.withLatestTorBytes(Self.latest(torControl, for: $0.quota)) }
    }

    static func latest(_ torControl: [TorControlStatus], for q: Quota) -> TorControlFigures? {
        torControl.first { $0.relay == q.scope.relay && $0.up }?.figures
    }

    /// From the ticker: when the quotas are 30 s old and no evaluation is
    /// running, evaluates them on `reads` (every query bounded in time), then
    /// hands them to `then` on that queue (the dashboard's history).
    /// A Tor quota is evaluated with tor's own figures where its control port
    /// answered, else its state file read again (`TorIntervalChoice`).
    func refreshReads(now: Date, torControl: [TorControlStatus] = [], then: @escaping @Sendable ([QuotaStatus]) -> Void = { _ in }) {
        let due = reading.withLock { r -> Bool in
            guard !r.running else { return false }
            if let at = r.evaluatedAt, now.timeIntervalSince(at) < Self.quotaRefreshSeconds { return false }
            r.running = true
            return true
        }
        guard due else { return }
        reads.async { [self] in
            let statuses = evaluateQuotas(now: now, torControl: torControl)
            if let statuses { published.withLock { $0.quotas = statuses } }
            reading.withLock { r in
                r.running = false
                r.evaluatedAt = now
            }
            then(statuses ?? quotaStatuses())
        }
    }

    /// nil when the store could not be read (logged; the last statuses stay).
    private func evaluateQuotas(now: Date, torControl: [TorControlStatus]) -> [QuotaStatus]? {
        guard !quotas.isEmpty else { return [] }
        do {
            let reader = try self.reader ?? AccountingReader(path: path, timeLimit: .agent)
            self.reader = reader
            quotas = quotas.map { ($0.0, $0.1?.refreshed()) }
            return try quotas.map { q, tor in
                try QuotaStatus.evaluate(q, source: reader, now: now, tor: tor, control: Self.latest(torControl, for: q))
            }
        } catch {
            reader = nil  // a damaged or replaced file: open it afresh next time
            logger.warning("\(path): quotas not evaluated: \(error)")
            return nil
        }
    }
}
