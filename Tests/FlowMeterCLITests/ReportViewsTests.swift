import Foundation
import Testing
@testable import FlowMeterTestSupport

/// `report --by hour|week`, `--oneline` and `--svg` through the real binary,
/// on a store with a known history: ten days, 100 MiB in and 50 MiB out of
/// guard1's OR traffic every ten minutes.
@Suite struct ReportViewsTests {
    static let start = Date(timeIntervalSince1970: 1_772_323_200)  // 2026-03-01T00:00:00Z, a Sunday
    static let store: String = {
        let db = makeTemporaryDirectory("report-views") + "/acct.db"
        let layout = CounterLayout(relayCount: 2)
        let acc = try! BucketAccumulator(path: db, relayLabels: ["host", "guard1"])
        var s = CounterSnapshot(layout: layout)
        for step in 1...(10 * 144) {
            s.values[layout.index(CounterSlot(relay: 1, category: .orInbound, direction: .inbound), .bytes)] += 100 << 20
            s.values[layout.index(CounterSlot(relay: 1, category: .orInbound, direction: .outbound), .bytes)] += 50 << 20
            s.values[layout.index(CounterSlot(relay: 1, category: .orInbound, direction: .inbound), .packets)] += 1000
            acc.observe(s, at: start.addingTimeInterval(Double(step * 600) - 1))
        }
        try! acc.close()
        return db
    }()

    func run(_ args: [String]) throws -> ProcessResult { try runProcess(Repo.flowmeterBinary, args, timeout: 60) }

    @Test func reportGroupsByHourAndByIsoWeek() throws {
        let hours = try run(["report", "--db", Self.store, "--by", "hour", "--csv"])
        #expect(hours.status == 0, "\(hours.stderr)")
        // Six ten-minute steps of 100 MiB in each whole hour.
        #expect(hours.stdout.contains("2026-03-01T05,2026-03-01T05:00:00Z,2026-03-01T06:00:00Z,guard1,or_inbound,in,6000,\(600 << 20)"),
                "\(hours.stdout.prefix(600))")
        let weeks = try run(["report", "--db", Self.store, "--by", "week", "--csv"])
        #expect(weeks.status == 0, "\(weeks.stderr)")
        // Sunday 1 March is in ISO week 9; Monday 2 March starts week 10.
        #expect(weeks.stdout.contains("2026-W09,2026-02-23T00:00:00Z,2026-03-02T00:00:00Z,guard1,or_inbound,in,"), "\(weeks.stdout)")
        #expect(weeks.stdout.contains("2026-W10,2026-03-02T00:00:00Z,2026-03-09T00:00:00Z,guard1,or_inbound,in,"), "\(weeks.stdout)")
    }

    @Test func onelinePrintsEachRelaysTodayAndPeriodThenOneLinePerQuotaLikeVnstat() throws {
        let r = try run(["report", "--db", Self.store, "--oneline",
                         "--quota", "provider 4TiB month 1 00:00 sum provider tz=UTC",
                         "--quota", "inbound 2TiB month 1 00:00 in provider tz=UTC"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(r.stdout)")
        // The store's data end at 2026-03-11T00:00Z: today is empty, the period holds 1440 steps of 100 + 50 MiB.
        #expect(lines[0] == "2;all;2026-03-11;0 B;0 B;0 B;0 B/s;2026-03-01T00:00:00Z;2026-04-01T00:00:00Z;140.62 GiB;70.31 GiB;210.94 GiB;256.00 KiB/s;quota provider;exact", "\(r.stdout)")
        #expect(lines[1].hasPrefix("2;guard1;2026-03-11;"), "\(r.stdout)")
        #expect(lines.allSatisfy { $0.split(separator: ";", omittingEmptySubsequences: false).count == ($0.hasPrefix("2;") ? 15 : 9) })
        // The quota lines are as they always were: 1440 steps × 150 MiB = 210.94 GiB of 4 TiB.
        #expect(lines[2].hasPrefix("1;provider;2026-03-01T00:00:00Z;2026-04-01T00:00:00Z;210.94 GiB;4.00 TiB;5.15 %;"), "\(r.stdout)")
        #expect(lines[3].hasPrefix("1;inbound;"))
        // Without a quota the period is the calendar month, and there are no quota lines.
        let none = try run(["report", "--db", Self.store, "--oneline"])
        #expect(none.status == 0, "\(none.stderr)")
        #expect(none.stdout.split(separator: "\n").map { $0.hasPrefix("2;") && $0.hasSuffix(";month;exact") } == [true, true], "\(none.stdout)")
    }

    @Test func theTableOpensWithTheThreeAnswersAndShowsQuotasInTheirOwnUnits() throws {
        let r = try run(["report", "--db", Self.store, "--by", "month",
                         "--quota", "pro 1TB-SI month 1 00:00 sum provider tz=UTC"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first?.hasPrefix("Traffic, wire bytes in every category: today (2026-03-11, UTC)") == true, "\(r.stdout)")
        #expect(lines.contains { $0.hasPrefix("all ") && $0.hasSuffix("140.62 GiB   70.31 GiB") }, "\(r.stdout)")
        // A quota written in SI is shown in SI: 226.49 GB of 1.00 TB, never 931.32 GiB.
        #expect(lines.contains("  pro: lasts; 226.49 GB of 1.00 TB used (22.6 %)"), "\(r.stdout)")
        #expect(lines.contains("Tor: no relay with accounting (AccountingMax) known: nothing will hibernate"))
        #expect(!r.stdout.contains("GiB of 1.00 TB") && !r.stdout.contains("931.32"))
        // The quota table is in units too; --csv keeps exact bytes.
        #expect(lines.contains { $0.hasPrefix("pro ") && $0.contains("226.49 GB") && $0.contains("1.00 TB") && $0.hasSuffix("22.65 %") }, "\(r.stdout)")
        let csv = try run(["report", "--db", Self.store, "--by", "month", "--csv", "--quota", "pro 1TB-SI month 1 00:00 sum provider tz=UTC"])
        #expect(csv.stdout.contains("quota,period_start,period_end,used_bytes,limit_bytes,used,lower_bound\npro,2026-03-01T00:00:00Z,2026-04-01T00:00:00Z,226492416000,1000000000000,22.65%,false"), "\(csv.stdout)")
        #expect(!csv.stdout.contains("Traffic,"))
    }

    @Test func svgWritesTheDashboardsChartsToAFile() throws {
        let out = makeTemporaryDirectory("report-svg") + "/charts.svg"
        let r = try run(["report", "--db", Self.store, "--svg", out, "--quota", "provider 4TiB month 1 00:00 sum provider tz=UTC"])
        #expect(r.status == 0, "\(r.stderr)")
        let svg = try String(contentsOfFile: out, encoding: .utf8)
        #expect(svg.hasPrefix("<?xml") && svg.hasSuffix("</svg>\n"))
        #expect(svg.contains("guard1: hourly rates") && svg.contains("Quota provider"))
        #expect(svg.contains("class=\"limit\"") && svg.contains("class=\"used\""))
        #expect(svg.components(separatedBy: "<svg").count == svg.components(separatedBy: "</svg>").count)
        let charts = ChartTicks.charts(in: svg)
        #expect(charts.count == 2)
        for chart in charts { #expect(ChartTicks.problems(chart).isEmpty, "\(ChartTicks.problems(chart))") }
    }

    /// Three hours at 50 KiB/s, then 150 MiB in the first ten minutes of
    /// the fourth (256 KiB/s): `--svg` draws that hour at its rate so far.
    @Test func svgDrawsTheHourInProgressAtItsRealRate() throws {
        let db = makeTemporaryDirectory("report-partial") + "/acct.db"
        let layout = CounterLayout(relayCount: 2)
        let acc = try BucketAccumulator(path: db, relayLabels: ["host", "guard1"])
        var s = CounterSnapshot(layout: layout)
        let index = layout.index(CounterSlot(relay: 1, category: .orInbound, direction: .inbound), .bytes)
        acc.observe(s, at: Self.start)
        for step in 1...18 {
            s.values[index] += 50 * 1024 * 600
            acc.observe(s, at: Self.start.addingTimeInterval(Double(step * 600) - 1))
        }
        s.values[index] += 150 << 20
        let end = Self.start.addingTimeInterval(3 * 3600 + 600)
        acc.observe(s, at: end)
        acc.setState(String(Int64(end.timeIntervalSince1970 * 1e9)), for: AccountingStore.lastObservationKey)
        try acc.close()
        let out = makeTemporaryDirectory("report-partial-svg") + "/charts.svg"
        let r = try run(["report", "--db", db, "--svg", out])
        #expect(r.status == 0, "\(r.stderr)")
        let svg = try String(contentsOfFile: out, encoding: .utf8)
        #expect(ChartTicks.charts(in: svg).first?.labels.first == "300 KiB/s", "\(ChartTicks.charts(in: svg))")
        #expect(svg.contains("class=\"now-label\""))
    }
}
