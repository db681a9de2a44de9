import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterReports

/// `flowmeter top` on a terminal: the three answers first, rates that do
/// not read zero between bursts, a screen that fits 80×24 (columns go
/// before rows), keys for help, sorting and one relay, a legend for every symbol.
struct TopScreenTests {
    /// A status document at `second` with one cell per (relay, category) in
    /// and out, bytes from `bytes`, and a glance with one quota.
    static func document(second: Int, cells: [(String, String)], bytes: (String, String, Int) -> UInt64, glance: Bool = true,
                         lowerBoundReason: String? = nil) throws -> TopView.Status {
        var categories: [[String: Any]] = []
        for (relay, category) in cells {
            for d in ["in", "out"] {
                categories.append(["relay": relay, "category": category, "direction": d, "bytes": bytes(relay, category, second) + (d == "out" ? 7 : 0)])
            }
        }
        var document: [String: Any] = ["schema": 2, "read_at": Format.iso8601(seconds: 1_796_600_000 + Int64(second)), "categories": categories,
                                       "interfaces": [["name": "eth0", "up": true]]]
        if glance {
            let quota = try Quota(spec: "provider 1TB-SI month 1 00:00 sum provider tz=UTC", defaultZone: TimeZone(identifier: "UTC")!)
            _ = quota
            document["glance"] = [
                "read_at": "2026-12-06T18:13:20Z", "time_zone": "UTC", "day_start": "2026-12-06T00:00:00Z",
                "period_start": "2026-12-01T00:00:00Z", "period_end": "2027-01-01T00:00:00Z", "period": "quota provider",
                "traffic": ([["relay": "all", "today_in_bytes": 3 << 30, "today_out_bytes": 1 << 30, "period_in_bytes": 90 << 30,
                              "period_out_bytes": 44 << 30, "lower_bound": false]] + Set(cells.map(\.0)).sorted().map {
                    ["relay": $0, "today_in_bytes": 1 << 30, "today_out_bytes": 1 << 29, "period_in_bytes": 30 << 30,
                     "period_out_bytes": 14 << 30, "lower_bound": false] as [String: Any]
                }).map { row in
                    var row = row
                    if let lowerBoundReason { row["lower_bound"] = true; row["lower_bound_reason"] = lowerBoundReason }
                    return row
                },
                "quotas": [["name": "provider", "verdict": "runs_out", "runs_out_at": "2026-12-25T06:42:00Z", "used_bytes": 512_000_000_000,
                            "limit_bytes": 1_000_000_000_000, "projected_low_bytes": 1_100_000_000_000, "projected_high_bytes": 1_300_000_000_000,
                            "period_start": "2026-12-01T00:00:00Z", "period_end": "2027-01-01T00:00:00Z",
                            "history": "from 6.0 days of this host's data", "history_seconds": 518_400, "units": "si"]],
                "tor": [["relay": cells.first?.0 ?? "guard1", "state": "soft", "source": "tor_control", "next_wakeup": "2027-01-01T03:12:00Z"]],
            ]
        }
        return try TopView.Status.decode(JSONSerialization.data(withJSONObject: document))
    }

    static let twoRelays = [("guard1", "or_inbound"), ("guard1", "or_outbound"), ("guard1", "dir"), ("host", "dns"), ("host", "other")]

    @Test func theThreeAnswersOpenTheScreenBeforeTheRates() throws {
        var screen = TopScreen(agent: "127.0.0.1:9477")
        screen.height = 24
        screen.observe(try Self.document(second: 0, cells: Self.twoRelays) { _, _, _ in 1000 })
        let lines = screen.lines()
        #expect(lines[0].hasPrefix("flowmeter top  127.0.0.1:9477  "))
        let answers = ["today 2026-12-06 UTC · period: quota provider since 2026-12-01 00:00", "total  ",
                       "quota provider: runs out on 2026-12-25 06:42 UTC, 51.2 % used",
                       "  512.00 GB of 1.00 TB; projected 1.10–1.30 TB by the period's end",
                       "  from 6.0 days of this host's data",
                       "Tor guard1: soft limit: no new connections; next wake-up 2027-01-01 03:12 UTC"]
        let rates = try #require(lines.firstIndex { $0.hasPrefix("relay        category") })
        for answer in answers {
            let at = lines.firstIndex { $0.hasPrefix(answer) }
            #expect(at.map { $0 < rates } == true, "'\(answer)' not before the rates:\n\(lines.joined(separator: "\n"))")
            #expect(lines.allSatisfy { $0.count <= 80 })
        }
        // The first reading has no rate yet, and the screen says what n/a means; totals since the start are there.
        #expect(lines.contains { $0.hasPrefix("guard1       or_inbound") && $0.contains(" n/a ") && $0.hasSuffix("1000 B       1007 B") },
                "\(lines.joined(separator: "\n"))")
        #expect(lines.last?.contains("n/a not measured yet") == true, "\(lines.last ?? "")")
    }

    @Test func aBurstyCategoryReadsItsAverageRateNotZeroBetweenBursts() throws {
        var screen = TopScreen(agent: "a:1")
        // 40 KiB every 4 s, read once a second: between bursts the total stands still.
        func bursts(_ r: String, _ c: String, _ second: Int) -> UInt64 { UInt64(second / 4) * 40 * 1024 }
        var rates: [String] = []
        for second in 0..<30 {
            screen.observe(try Self.document(second: second, cells: [("guard1", "dir")], bytes: bursts))
            let row = screen.lines().first { $0.hasPrefix("guard1       dir") } ?? ""
            rates.append(String(row.dropFirst(24).prefix(12)).trimmingCharacters(in: .whitespaces))
        }
        // From the first burst on, never 0 B/s while the total grows; once ten
        // seconds are measured, every reading is within a burst of 10 KiB/s.
        #expect(rates.dropFirst(4).allSatisfy { $0.hasSuffix("KiB/s") }, "\(rates)")
        #expect(rates.dropFirst(12).allSatisfy { ["8.00 KiB/s", "12.00 KiB/s"].contains($0) }, "\(rates)")
    }

    @Test func at80x24EveryLineFitsTheTitleStaysAndRateRowsGoLastWithANote() throws {
        let many = (0..<40).map { ("relay\($0 / 4)", ["or_inbound", "or_outbound", "dir", "exit"][$0 % 4]) }
        var screen = TopScreen(agent: "127.0.0.1:9477")
        screen.width = 80; screen.height = 24
        screen.observe(try Self.document(second: 0, cells: many) { _, _, s in UInt64(s) * 1000 })
        screen.observe(try Self.document(second: 1, cells: many) { _, _, s in UInt64(s) * 1000 })
        let lines = screen.lines()
        #expect(lines.count == 24 && lines.allSatisfy { $0.count <= 80 }, "\(lines.count) lines:\n\(lines.joined(separator: "\n"))")
        #expect(lines[0].hasPrefix("flowmeter top") && lines[23].hasPrefix("h help"))
        #expect(lines.contains { $0.hasPrefix("quota provider: runs out") })
        #expect(lines.contains { $0.hasPrefix("… ") && $0.contains("more rows: r shows one relay") }, "\(lines.joined(separator: "\n"))")
        // Narrow: the totals go, every rate row that fitted at 80 still fits.
        var narrow = screen
        narrow.width = 52
        let few = narrow.lines()
        #expect(few.allSatisfy { $0.count <= 52 } && !few.joined().contains("in total"), "\(few.filter { $0.count > 52 })")
        #expect(few.filter { $0.hasPrefix("relay") && $0.contains("B/s") }.count == lines.filter { $0.hasPrefix("relay") && $0.contains("B/s") }.count)
    }

    @Test func keysShowHelpSortByAColumnAndShowOneRelayAtATime() throws {
        var screen = TopScreen(agent: "a:1")
        screen.height = 24
        func bytes(_ r: String, _ c: String, _ s: Int) -> UInt64 { UInt64(s) * (c == "dns" ? 9000 : c == "dir" ? 5000 : 1000) }
        screen.observe(try Self.document(second: 0, cells: Self.twoRelays, bytes: bytes))
        screen.observe(try Self.document(second: 2, cells: Self.twoRelays, bytes: bytes))
        func press(_ key: Character) -> Bool { screen.press(key.asciiValue!) }
        for key: Character in ["h", "?"] {
            var quit = press(key)
            let help = screen.lines()
            #expect(!quit && help[0] == "flowmeter top: keys and symbols" && help.count <= 24)
            // Every symbol the screen can show is explained.
            for symbol in ["n/a", "≥", "▼", "…", "in/s", "today", "KiB"] {
                #expect(help.contains { $0.hasPrefix("  \(symbol)") }, "\(symbol)")
            }
            quit = press("x")
            #expect(!quit && screen.lines()[0].hasPrefix("flowmeter top  a:1"), "any key returns")
        }
        _ = press("s")
        let sorted = screen.lines()
        let rows = sorted.filter { $0.contains("B/s") && !$0.hasPrefix("relay") }
        #expect(rows.first?.hasPrefix("host         dns") == true && sorted.contains { $0.contains("in/s▼") }, "\(sorted.joined(separator: "\n"))")
        #expect(sorted.last?.contains("sort: in/s") == true)
        _ = press("r")
        let guard1 = screen.lines()
        #expect(guard1.last?.contains("relay: guard1") == true && !guard1.contains { $0.hasPrefix("host         ") })
        _ = press("r")
        #expect(screen.lines().contains { $0.hasPrefix("host         dns") })
        _ = press("r")
        #expect(screen.lines().last?.contains("relay: all") == true)
        let q = press("q"), ctrlC = screen.press(3)
        #expect(q && ctrlC)
    }

    @Test func aLowerBoundIsMarkedAndItsReasonSaidAsReportAndTheDashboardSayIt() throws {
        let reason = "the store's counts begin at 2026-12-06 09:00 UTC"
        var screen = TopScreen(agent: "a:1")
        screen.width = 80; screen.height = 24
        screen.observe(try Self.document(second: 0, cells: Self.twoRelays, bytes: { _, _, s in UInt64(s) * 1000 },
                                         lowerBoundReason: reason))
        let lines = screen.lines()
        #expect(lines.contains { $0.hasPrefix("total") && $0.contains("≥") }, "\(lines.joined(separator: "\n"))")
        #expect(lines.contains("  ≥ a lower bound: " + reason), "\(lines.joined(separator: "\n"))")
        var plain = TopScreen(agent: "a:1")
        plain.width = 80; plain.height = 24
        plain.observe(try Self.document(second: 0, cells: Self.twoRelays, bytes: { _, _, s in UInt64(s) * 1000 }))
        #expect(!plain.lines().contains { $0.contains("≥") })
    }

    @Test func anAgentWithoutAGlanceStillShowsItsQuotaLines() throws {
        let status = try TopView.Status.decode(Data(StatusDocuments.status().utf8))
        let lines = TopView.lines(status, previous: status, agent: "a:1", width: 80)
        #expect(lines.contains { $0.hasPrefix("quota guard1: ") }, "\(lines)")
        // A malformed glance is ignored, not a failed screen.
        let broken = StatusDocuments.status().replacingOccurrences(of: "\"categories\"", with: "\"glance\":{\"traffic\":7},\"categories\"")
        let status2 = try TopView.Status.decode(Data(broken.utf8))
        #expect(TopView.lines(status2, previous: nil, agent: "a:1", width: 80).contains { $0.hasPrefix("quota guard1: ") })
    }
}
