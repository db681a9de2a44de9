import FlowMeterCore
import FlowMeterAccounting
import FlowMeterStore
import FlowMeterReports
import FlowMeterExport
import Foundation
import Logging
import Synchronization

/// The agent's side of the dashboard at `/`: the live ring fed by the 1 s
/// tick, and the store's last 30 days, quota curves and today's and this
/// period's totals (the glance), read at most once a minute on the store's
/// read queue (`refresh`); a page reads memory only, never the disk, so a
/// slow or hostile store cannot hold a request.
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
        /// Stored totals per relay for `day` and `period`, counted until `trafficUntil`.
        var traffic: [Glance.Traffic] = []
        var day: DateInterval? = nil
        var period: DateInterval? = nil
        var trafficUntil: Date? = nil
    }
    private let cache = Mutex(Cache())
    private var reader: AccountingReader? = nil
    static let historySeconds: TimeInterval = 30 * 86_400
    static let refreshSeconds: TimeInterval = 60
    /// The zone "today" is a day in: this host's, as Tor's own dates are.
    static let zone = TimeZone.current

    init(database: String?, logger: Logger) {
        self.database = database
        self.logger = logger
    }

    func observe(_ r: AgentReading, now: Date) { live.observe(r, now: now) }

    func page(_ r: AgentReading, quotas: [QuotaStatus], now: Date) -> String {
        let (history, charts) = cache.withLock { c in (c.history, c.quotas) }
        var page = DashboardPage(reading: r, live: live.series(), history: history, quotas: charts,
                                 rates: live.recentRates(now: now))
        page.glance = glance(r, quotas: quotas, now: now)
        return page.html()
    }

    /// The three answers (`Glance`): today in this host's zone, the first
    /// host-wide quota's period (else the month), the stored totals as of
    /// the last refresh; without a store, the counts since the agent started.
    func glance(_ r: AgentReading, quotas: [QuotaStatus], now: Date) -> Glance {
        let day = Glance.day(containing: now, zone: Self.zone)
        let period = Glance.period(quotas: quotas, now: now, zone: Self.zone)
        guard database != nil else {
            return Glance(now: now, zone: Self.zone, day: day, period: period, traffic: Self.sinceStart(r),
                          countsSince: Date(timeIntervalSince1970: r.startTimeSeconds), quotas: quotas, torControl: r.torControl)
        }
        let (traffic, until) = cache.withLock { c in (c.traffic, c.trafficUntil) }
        return Glance(now: now, zone: Self.zone, day: day, period: period, traffic: traffic, countsUntil: until,
                      quotas: quotas, torControl: r.torControl)
    }

    /// Each relay's counts since the agent started, in every category.
    static func sinceStart(_ r: AgentReading) -> [Glance.Traffic] {
        let table = r.cells
        return table.relays.map { relay in
            var t = Glance.Traffic(relay: relay, lowerBound: true)
            for c in Category.allCases {
                t.todayInBytes &+= table.value(relay: relay, c, .inbound, .bytes)
                t.todayOutBytes &+= table.value(relay: relay, c, .outbound, .bytes)
            }
            t.periodInBytes = t.todayInBytes
            t.periodOutBytes = t.todayOutBytes
            return t
        }
    }

    /// Reads the store's history, quota curves and the glance's totals when
    /// the cache is a minute old (or the quotas, the day or the period
    /// changed). Call it from one serial queue only.
    func refresh(quotas: [QuotaStatus], now: Date) {
        guard let database else { return }
        let day = Glance.day(containing: now, zone: Self.zone)
        let period = Glance.period(quotas: quotas, now: now, zone: Self.zone).0
        let fresh = cache.withLock { c in
            c.at.map { now.timeIntervalSince($0) < Self.refreshSeconds } == true && c.quotas.count == quotas.count
                && c.day == day && c.period == period
        }
        if fresh { return }
        do {
            let reader = try self.reader ?? AccountingReader(path: database, timeLimit: .agent)
            self.reader = reader
            let from = now.addingTimeInterval(-Self.historySeconds)
            let dataEnd = reader.dataEnd(current: now)
            var history = try TrafficSeries.fromHistory(reader, from: from, to: now, now: dataEnd)
            // Surges recorded in the store, shaded like gaps: their bytes count, but they are not the trend.
            let surges = try reader.surgeSpans(from: from, to: now).map { s in
                ChartSpan(DateInterval(start: s.start, end: max(s.start, s.end ?? now)), reason: "surge")
            }
            history.spans += surges
            let charts = try quotas.enumerated().map { try QuotaChart.build($1, source: reader, id: "quota-\($0)") }
            let traffic = try Glance.traffic(from: reader, day: day, period: period, now: dataEnd)
            cache.withLock { c in
                c.history = history
                c.quotas = charts
                c.at = now
                c.traffic = traffic
                c.day = day
                c.period = period
                c.trafficUntil = dataEnd
            }
        } catch {
            reader = nil
            logger.warning("\(database): dashboard history not read: \(error)")
        }
    }
}
