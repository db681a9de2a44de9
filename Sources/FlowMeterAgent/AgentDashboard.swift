import FlowMeterCore
import FlowMeterAccounting
import FlowMeterStore
import FlowMeterReports
import FlowMeterExport
import Foundation
import Logging
import Synchronization

/// The agent's side of the dashboard at `/`: the live ring fed by the 1 s
/// tick, and the store's last 30 days and quota curves, read at most once a
/// minute on the store's read queue (`refresh`); a page reads memory only,
/// never the disk, so a slow or hostile store cannot hold a request.
final class AgentDashboard: @unchecked Sendable {
    // @unchecked Sendable — Safe: the cached charts are used only under `cache`;
    // the reader only inside `refresh`, which runs on one serial queue.
    let live = LiveHistory()
    private let database: String?
    private let logger: Logger
    private struct Cache {
        var at: Date? = nil
        var history: (series: [TrafficSeries], spans: [ChartSpan])? = nil
        var quotas: [QuotaChart] = []
    }
    private let cache = Mutex(Cache())
    private var reader: AccountingReader? = nil
    static let historySeconds: TimeInterval = 30 * 86_400
    static let refreshSeconds: TimeInterval = 60

    init(database: String?, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    func observe(_ r: AgentReading, now: Date) { live.observe(r, now: now) }

    func page(_ r: AgentReading, quotas: [QuotaStatus], now: Date) -> String {
        let (history, charts) = cache.withLock { c in (c.history, c.quotas) }
        return DashboardPage(reading: r, live: live.series(), history: history, quotas: charts,
                             rates: live.recentRates(now: now)).html()
    }

    /// Reads the store's history and quota curves when the cache is a minute
    /// old (or the quotas changed). Call it from one serial queue only.
    func refresh(quotas: [QuotaStatus], now: Date) {
        guard let database else { return }
        let fresh = cache.withLock { c in
            c.at.map { now.timeIntervalSince($0) < Self.refreshSeconds } == true && c.quotas.count == quotas.count
        }
        if fresh { return }
        do {
            let reader = try self.reader ?? AccountingReader(path: database, timeLimit: .agent)
            self.reader = reader
            let from = now.addingTimeInterval(-Self.historySeconds)
            var history = try TrafficSeries.fromHistory(reader, from: from, to: now)
            // Surges recorded in the store, shaded like gaps: their bytes count, but they are not the trend.
            let surges = try reader.surgeSpans(from: from, to: now).map { s in
                ChartSpan(DateInterval(start: s.start, end: max(s.start, s.end ?? now)), reason: "surge")
            }
            history.spans += surges
            let charts = try quotas.enumerated().map { try QuotaChart.build($1, source: reader, id: "quota-\($0)") }
            cache.withLock { c in
                c.history = history
                c.quotas = charts
                c.at = now
            }
        } catch {
            reader = nil
            logger.warning("\(database): dashboard history not read: \(error)")
        }
    }
}
