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
/// minute (a page refresh reads memory, not the disk).
final class AgentDashboard: @unchecked Sendable {
    // @unchecked Sendable — Safe: the reader and cached charts are used only under `cache`.
    let live = LiveHistory()
    private let database: String?
    private let logger: Logger
    private struct Cache {
        var reader: AccountingReader? = nil
        var at: Date? = nil
        var history: (series: [TrafficSeries], spans: [ChartSpan])? = nil
        var quotas: [QuotaChart] = []
    }
    private let cache = Mutex(Cache())
    static let historySeconds: TimeInterval = 30 * 86_400
    static let refreshSeconds: TimeInterval = 60

    init(database: String?, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    func observe(_ r: AgentReading, now: Date) { live.observe(r, now: now) }

    func page(_ r: AgentReading, quotas: [QuotaStatus], now: Date) -> String {
        let (history, charts) = stored(quotas: quotas, now: now)
        return DashboardPage(reading: r, live: live.series(), history: history, quotas: charts,
                             rates: live.recentRates(now: now)).html()
    }

    private func stored(quotas: [QuotaStatus], now: Date) -> ((series: [TrafficSeries], spans: [ChartSpan])?, [QuotaChart]) {
        guard let database else { return (nil, []) }
        return cache.withLock { c in
            if let at = c.at, now.timeIntervalSince(at) < Self.refreshSeconds, c.quotas.count == quotas.count {
                return (c.history, c.quotas)
            }
            do {
                if c.reader == nil { c.reader = try AccountingReader(path: database) }
                let from = now.addingTimeInterval(-Self.historySeconds)
                c.history = try TrafficSeries.fromHistory(c.reader!, from: from, to: now)
                // Surges recorded in the store, shaded like gaps: their bytes count, but they are not the trend.
                let surges = try c.reader!.surgeSpans(from: from, to: now).map { s in
                    ChartSpan(DateInterval(start: s.start, end: max(s.start, s.end ?? now)), reason: "surge")
                }
                c.history?.spans += surges
                c.quotas = try quotas.enumerated().map { try QuotaChart.build($1, source: c.reader!, id: "quota-\($0)") }
                c.at = now
            } catch {
                logger.warning("\(database): dashboard history not read: \(error)")
            }
            return (c.history, c.quotas)
        }
    }
}
