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
/// drops or capture gaps as lower bounds, and evaluates the quotas for
/// `/metrics` at most every 30 s (a scrape reads the store, never the packets).
final class AgentStore: @unchecked Sendable {
    // @unchecked Sendable — Safe: every mutable field is used under `lock`.
    private let accumulator: BucketAccumulator
    private let labels: [String]
    private let path: String
    private var quotas: [(Quota, QuotaStatus.TorInputs?)]
    private let logger: Logger
    private struct Mutable {
        var lastTick: Date? = nil
        var lastDrops: UInt64 = 0
        var lastGaps: UInt64 = 0
        var cachedAt: Date? = nil
        var cached: [QuotaStatus] = []
        var reader: AccountingReader? = nil
        var closed = false
        var lastFlushAt: Date? = nil
        var flushesSeen = 0
    }
    private let lock = Mutex(Mutable())
    static let quotaRefreshSeconds: TimeInterval = 30

    /// Opens the store or throws: at start a store that cannot be opened is
    /// the operator's to fix (exit 1); later failures are retried.
    init(path: String, configuration: StoreConfiguration = StoreConfiguration(), labels: [String],
         quotas: [(Quota, QuotaStatus.TorInputs?)], logger: Logger) throws {
        accumulator = try BucketAccumulator(path: path, configuration: configuration, relayLabels: labels, logger: logger,
                                            openFailureIsFatal: true)
        lock.withLock { $0.lastFlushAt = Date() }   // opening wrote the schema: the store took a write
        self.labels = labels
        self.path = path
        self.quotas = quotas
        self.logger = logger
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
        lock.withLock { m in
            guard !m.closed else { return }
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
        }
    }

    /// Flushes and closes; the final counters are in the store afterwards.
    func close(_ r: AgentReading, now: Date, surges: AgentSurges? = nil) {
        tick(r, now: now, surges: surges)
        lock.withLock { m in
            guard !m.closed else { return }
            m.closed = true
            do { try accumulator.close() } catch {
                logger.error("\(path): the final counters could not be saved: \(error)")
            }
        }
    }

    /// For /metrics: up while the last write succeeded.
    func health() -> StoreHealth {
        lock.withLock { m in
            StoreHealth(up: accumulator.stats.lastError == nil,
                        lastFlushSeconds: m.lastFlushAt?.timeIntervalSince1970,
                        writeFailures: UInt64(accumulator.stats.failedFlushes))
        }
    }

    /// Every quota's status as of `now`, recomputed at most every 30 s; a
    /// Tor quota with tor's own figures where its control port answered,
    /// else its state file read again (`TorIntervalChoice`).
    func quotaStatuses(now: Date, torControl: [TorControlStatus] = []) -> [QuotaStatus] {
        guard !quotas.isEmpty else { return [] }
        func latest(_ q: Quota) -> TorControlFigures? { torControl.first { $0.relay == q.scope.relay && $0.up }?.figures }
        let statuses = lock.withLock { m in
            if let at = m.cachedAt, now.timeIntervalSince(at) < Self.quotaRefreshSeconds { return m.cached }
            do {
                if m.reader == nil { m.reader = try AccountingReader(path: path) }
                quotas = quotas.map { ($0.0, $0.1?.refreshed()) }
                m.cached = try quotas.map { q, tor in
                    try QuotaStatus.evaluate(q, source: m.reader!, now: now, tor: tor, control: latest(q))
                }
                m.cachedAt = now
            } catch {
                logger.warning("\(path): quotas not evaluated: \(error)")
            }
            return m.cached
        }
        return statuses.map { $0.withLatestTorBytes(latest($0.quota)) }
    }
}
