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
/// period's totals (the glance), read at most once a minute (a page refresh
/// reads memory, not the disk).
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
        /// Stored totals per relay for `day` and `period` (as of `at`).
        var traffic: [Glance.Traffic] = []
        var day: DateInterval? = nil
        var period: DateInterval? = nil
        var trafficUntil: Date? = nil
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
        var page = DashboardPage(reading: r, live: live.series(), history: history, quotas: charts,
                                 rates: live.recentRates(now: now))
        page.glance = glance(r, quotas: quotas, now: now)
        return page.html()
    }

    /// The three answers (`Glance`): today in this host's zone, the first
    /// host-wide quota's period (else the month), the stored totals as of
    /// the last read; without a store, the counts since the agent started.
    func glance(_ r: AgentReading, quotas: [QuotaStatus], now: Date) -> Glance {
        let zone = TimeZone.current
        let day = Glance.day(containing: now, zone: zone)
        let period = Glance.period(quotas: quotas, now: now, zone: zone)
        guard database != nil else {
            return Glance(now: now, zone: zone, day: day, period: period, traffic: Self.sinceStart(r),
                          countsSince: Date(timeIntervalSince1970: r.startTimeSeconds), quotas: quotas, torControl: r.torControl)
        }
        _ = stored(quotas: quotas, now: now)
        let (traffic, until) = cache.withLock { c in
            if c.day != day || c.period != period.0 { refreshTraffic(&c, day: day, period: period.0, now: now) }
            return (c.traffic, c.trafficUntil)
        }
        return Glance(now: now, zone: zone, day: day, period: period, traffic: traffic, countsUntil: until,
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

    private func refreshTraffic(_ c: inout Cache, day: DateInterval, period: DateInterval, now: Date) {
        guard let reader = c.reader else { return }
        do {
            let until = reader.dataEnd(current: now)
            c.traffic = try Glance.traffic(from: reader, day: day, period: period, now: until)
            c.trafficUntil = until
            c.day = day
            c.period = period
        } catch {
            logger.warning("\(database ?? ""): today's and this period's totals not read: \(error)")
        }
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
                let dataEnd = c.reader!.dataEnd(current: now)
                c.history = try TrafficSeries.fromHistory(c.reader!, from: from, to: now, now: dataEnd)
                // Surges recorded in the store, shaded like gaps: their bytes count, but they are not the trend.
                let surges = try c.reader!.surgeSpans(from: from, to: now).map { s in
                    ChartSpan(DateInterval(start: s.start, end: max(s.start, s.end ?? now)), reason: "surge")
                }
                c.history?.spans += surges
                c.quotas = try quotas.enumerated().map { try QuotaChart.build($1, source: c.reader!, id: "quota-\($0)") }
                c.at = now
                c.day = nil  // the glance's totals are read again with the history
            } catch {
                logger.warning("\(database): dashboard history not read: \(error)")
            }
            return (c.history, c.quotas)
        }
    }
}
