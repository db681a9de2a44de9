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

    @Test func onelinePrintsOneSemicolonLinePerQuotaLikeVnstat() throws {
        let r = try run(["report", "--db", Self.store, "--oneline",
                         "--quota", "provider 4TiB month 1 00:00 sum provider tz=UTC",
                         "--quota", "inbound 2TiB month 1 00:00 in provider tz=UTC"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n")
        #expect(lines.count == 2, "\(r.stdout)")
        // 1440 steps × 150 MiB = 210.94 GiB of 4 TiB.
        #expect(lines.first?.hasPrefix("1;provider;2026-03-01T00:00:00Z;2026-04-01T00:00:00Z;210.94 GiB;4.00 TiB;5.15 %;") == true, "\(r.stdout)")
        #expect(lines.last?.hasPrefix("1;inbound;") == true)
        let none = try run(["report", "--db", Self.store, "--oneline"])
        #expect(none.status == 2 && none.stderr.contains("--oneline needs a quota"))
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
    }
}
