import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterExport

/// The dashboard's pieces without a network: the route and its access, the
/// live ring's bound, and the page's promise to load nothing from elsewhere.
struct DashboardPageTests {
    @Test func theDashboardIsServedAtRootBehindTheSamePolicyAndTokenAndABrowserMayGiveTheTokenAsBasicPassword() {
        let e = HTTPEndpoint(access: .init(policy: .loopbackOnly, token: "t0k"), metrics: { [] }, status: { Data() },
                             dashboard: { "<html></html>" })
        let local = IPAddress(parsing: "127.0.0.1")
        let basic = "Basic " + Data("anyone:t0k".utf8).base64EncodedString()
        let wrong = "Basic " + Data("anyone:nope".utf8).base64EncodedString()
        #expect(e.decide(client: local, method: .GET, uri: "/", authorization: "Bearer t0k") == .dashboard)
        #expect(e.decide(client: local, method: .GET, uri: "/?x=1", authorization: basic) == .dashboard)
        #expect(e.decide(client: local, method: .GET, uri: "/", authorization: wrong) == .refusedByToken)
        #expect(e.decide(client: local, method: .GET, uri: "/", authorization: nil) == .refusedByToken)
        #expect(e.decide(client: IPAddress(parsing: "198.18.0.1"), method: .GET, uri: "/", authorization: basic) == .refusedByPolicy)
        #expect(DashboardAccess.challenge(uri: "/").hasPrefix("Basic"))
        #expect(DashboardAccess.challenge(uri: "/metrics") == "Bearer")
        let without = HTTPEndpoint(access: .init(policy: .loopbackOnly, token: nil), metrics: { [] }, status: { Data() })
        #expect(without.decide(client: local, method: .GET, uri: "/", authorization: nil) == .notFound)
    }

    @Test func theLiveRingKeepsAtMostItsCapacityOfMinutesAndTheirDifferencesAreTheTraffic() {
        let history = LiveHistory(capacity: 5)
        var reading = AgentReading()
        let layout = CounterLayout(relayCount: 1)
        var snapshot = CounterSnapshot(layout: layout)
        let slot = CounterSlot(relay: 0, category: .orInbound, direction: .inbound)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for minute in 0..<20 {
            for second in stride(from: 0, to: 60, by: 20) {
                snapshot.values[layout.index(slot, .bytes)] += 1000
                snapshot.values[layout.index(slot, .packets)] += 1
                reading.generations = [(["guard1"], snapshot)]
                history.observe(reading, now: start.addingTimeInterval(Double(minute * 60 + second)))
            }
        }
        let (series, spans) = history.series()
        #expect(series.count == 1 && spans.isEmpty)
        let s = series[0]
        #expect(s.stepSeconds == 60)
        #expect(s.steps == 5, "five samples kept, the last being the minute in progress")
        // Each whole minute between two samples carried three observations of 1000 bytes.
        #expect(s.inbound["or_inbound"]!.prefix(4).allSatisfy { $0 == 3000 })
        #expect(s.inbound["or_inbound"]![4] == 2000)  // the minute in progress, so far
    }

    @Test func thePageNamesNoOtherHostAndEscapesRelayNames() {
        var reading = AgentReading()
        let layout = CounterLayout(relayCount: 1)
        var snapshot = CounterSnapshot(layout: layout)
        snapshot.values[layout.index(CounterSlot(relay: 0, category: .dns, direction: .outbound), .bytes)] = 4096
        snapshot.values[layout.index(CounterSlot(relay: 0, category: .dns, direction: .outbound), .packets)] = 4
        reading.generations = [(["<b>x</b>"], snapshot)]
        let history = LiveHistory()
        history.observe(reading, now: Date())
        let html = DashboardPage(reading: reading, live: history.series(), history: nil, quotas: [],
                                 rates: history.recentRates(now: Date())).html()
        #expect(html.contains("&lt;b&gt;x&lt;/b&gt;") && !html.contains("<b>x</b>"))
        #expect(html.contains("data-bytes=\"4096\""))
        #expect(html.contains("name=\"viewport\"") && html.contains("http-equiv=\"refresh\""))
        let urls = html.components(separatedBy: "://").count - 1
        #expect(urls == html.components(separatedBy: "http://www.w3.org/2000/svg").count - 1)
        #expect(!html.contains("<script") && !html.contains(" src=") && !html.contains(" href="))
    }
}

/// History kept in memory: the quota chart needs only the protocol.
private struct FakeHistory: UsageHistorySource {
    var stored: [UsageBucket]
    var gapList: [DateInterval] = []
    func buckets(from: Date, to: Date) throws -> [UsageBucket] { stored.filter { $0.start >= from && $0.start < to } }
    func gaps(from: Date, to: Date) throws -> [DateInterval] { gapList.filter { $0.end > from && $0.start < to } }
}

struct QuotaChartTests {
    /// Twenty days of 40 GB an hour each way against Tor's 1 TB monthly
    /// AccountingMax: the burn-down shows the limit, the projection range,
    /// the projected exhaustion and Tor's soft/hard limit and wake-up, and
    /// a capture gap shaded as a lower bound.
    @Test func theBurnDownDrawsTheLimitProjectionExhaustionAndTorsMarkers() throws {
        let zone = TimeZone(identifier: "UTC")!
        let periodStart = Date(timeIntervalSince1970: 1_772_323_200)  // 2026-03-01T00:00:00Z
        let now = periodStart.addingTimeInterval(10 * 86_400 + 1800)
        var buckets: [UsageBucket] = []
        for h in 0..<(10 * 24) {
            for d in ["in", "out"] {
                let counts = CellCounts(packets: 1, bytes: 2_000_000_000, payloadBytes: 2_000_000_000, torPayloadBytes: 2_000_000_000)
                buckets.append(UsageBucket(start: periodStart.addingTimeInterval(Double(h * 3600)), durationSeconds: 3600,
                                           cell: Cell(relay: "guard1", category: .orInbound, direction: Direction(label: d)!, counts)))
            }
        }
        let gap = DateInterval(start: periodStart.addingTimeInterval(3 * 86_400), duration: 7200)
        let source = FakeHistory(stored: buckets, gapList: [gap])
        let quota = try Quota(spec: "tor-guard1 1TB-SI month 1 00:00 max tor:guard1 tz=UTC", defaultZone: zone)
        let tor = QuotaStatus.TorInputs(config: TorHibernationConfig(accountingMax: 1_000_000_000_000, timeZone: zone),
                                        state: TorAccountingState(),
                                        fingerprint: try TorFingerprint(hex: String(repeating: "AB", count: 20)))
        let status = try QuotaStatus.evaluate(quota, source: source, now: now, tor: tor)
        let chart = try QuotaChart.build(status, source: source, id: "q")
        let svg = chart.svg()
        #expect(chart.usedCurve.count == 10 * 24 + 1)
        #expect(svg.contains("class=\"limit\"") && svg.contains("class=\"projection-range\"") && svg.contains("class=\"used\""))
        #expect(svg.contains("projected exhaustion"), "\(chart.markers)")
        #expect(svg.contains("data-reason=\"lower bound\""))
        let labels = chart.markers.map(\.label)
        #expect(labels.contains("Tor hard limit") || labels.contains("Tor soft limit"), "\(labels)")
    }
}
