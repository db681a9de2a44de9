import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterExport

/// History kept in memory for the charts.
private struct Buckets: UsageHistorySource {
    var stored: [UsageBucket]
    func buckets(from: Date, to: Date) throws -> [UsageBucket] { stored.filter { $0.start >= from && $0.start < to } }
    func gaps(from: Date, to: Date) throws -> [DateInterval] { [] }
}

/// Charts a person reads in seconds: value axes at 1–2–5 steps in the unit
/// shown, quota charts scaled to the limit in the quota's own units, a
/// labelled now line, every series in the legend, and the step in progress
/// at its real rate.
struct ChartReadingTests {
    static let periodStart = Date(timeIntervalSince1970: 1_772_323_200)  // 2026-03-01T00:00:00Z

    /// `days` of guard1's OR traffic at `perHour` bytes each way, and the quota's status ten days in.
    static func quota(_ spec: String, perHour: UInt64, days: Int = 10) throws -> (QuotaStatus, any UsageHistorySource) {
        var buckets: [UsageBucket] = []
        for h in 0..<(days * 24) {
            for d in [Direction.inbound, .outbound] {
                let counts = CellCounts(packets: 1, bytes: perHour, payloadBytes: perHour, torPayloadBytes: perHour)
                buckets.append(UsageBucket(start: periodStart.addingTimeInterval(Double(h * 3600)), durationSeconds: 3600,
                                           cell: Cell(relay: "guard1", category: .orInbound, direction: d, counts)))
            }
        }
        let source = Buckets(stored: buckets)
        let quota = try Quota(spec: spec, defaultZone: TimeZone(identifier: "UTC")!)
        let now = periodStart.addingTimeInterval(Double(days * 86_400) + 1800)
        return (try QuotaStatus.evaluate(quota, source: source, now: now), source)
    }

    @Test func everyValueAxisOfEveryChartOnThePageStepsByOneTwoOrFiveInTheUnitShown() throws {
        var charts: [QuotaChart] = []
        for (i, (spec, perHour)) in [("tor 500GiB month 1 00:00 max tor:guard1 tz=UTC", UInt64(1) << 30),
                                     ("provider 1TB-SI month 1 00:00 sum provider tz=UTC", 1_000_000_000),
                                     ("small 10MiB day 00:00 sum provider tz=UTC", 50_000)].enumerated() {
            let (status, source) = try Self.quota(spec, perHour: perHour)
            charts.append(try QuotaChart.build(status, source: source, id: "quota-\(i)"))
        }
        var reading = AgentReading()
        reading.nowSeconds = Self.periodStart.timeIntervalSince1970 + 10 * 86_400
        let layout = CounterLayout(relayCount: 6)
        var snapshot = CounterSnapshot(layout: layout)
        for r in 0..<6 { snapshot.values[layout.index(CounterSlot(relay: r, category: .orInbound, direction: .inbound), .bytes)] = 1000 }
        reading.generations = [((0..<6).map { "r\($0)" }, snapshot)]
        var series: [TrafficSeries] = []
        // Rates from a few bytes to gigabytes a second, one relay each.
        for (i, perStep) in [7.0, 1500, 123_456, 2_000_000, 987_654_321, 5e11].enumerated() {
            var s = TrafficSeries(relay: "r\(i)", start: Self.periodStart, stepSeconds: 60, steps: 60)
            for step in 0..<60 { s.add(category: "or_inbound", direction: "in", step: step, bytes: perStep * Double(step % 7 + 1)) }
            s.add(category: "dns", direction: "out", step: 3, bytes: perStep / 3)
            series.append(s)
        }
        var page = DashboardPage(reading: reading, live: (series, []), history: (series, []), quotas: charts, rates: [:])
        page.glance = nil
        let found = ChartTicks.charts(in: page.html())
        #expect(found.count == 3 + 2 * series.count, "\(found.map(\.id))")
        for chart in found { #expect(ChartTicks.problems(chart).isEmpty, "\(ChartTicks.problems(chart))") }
    }

    @Test func axesOfEveryMagnitudeStepByOneTwoOrFiveInOneUnitAndHoldTheirValue() {
        var values: [Double] = [0, 1, 2, 3, 7, 999, 1000, 1023, 1024, 1025, 1536, 4095, 1e6, 1_048_576, 999_999_999, 1e12, 1_099_511_627_776, 5e17]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 { values.append(pow(10, Double.random(in: 0...18, using: &generator))) }
        for v in values {
            for units in ByteUnits.allCases {
                for maxSteps in [3, 6] {
                    let axis = ByteAxis.covering(v, units: units, perSecond: maxSteps == 3, maxSteps: maxSteps)
                    #expect(axis.top >= v, "\(v) \(units): top \(axis.top)")
                    #expect(axis.count <= maxSteps, "\(v) \(units): \(axis.count) steps")
                    let chart = ChartTicks.Chart(id: "\(v) \(units)", labels: axis.ticks.map(axis.label))
                    #expect(ChartTicks.problems(chart).isEmpty, "\(ChartTicks.problems(chart))")
                }
            }
        }
    }

    @Test func aQuotaChartRunsToItsLimitWithHeadroomInItsOwnUnitsWithNowLabelledAndEverySeriesNamed() throws {
        let (tor, torSource) = try Self.quota("tor 500GiB month 1 00:00 max tor:guard1 tz=UTC", perHour: 1 << 29)
        let torSVG = try QuotaChart.build(tor, source: torSource, id: "t").svg()
        // 500 GiB with a tenth above: 600 GiB in 100 GiB steps, not 931 GiB in decimal steps.
        #expect(ChartTicks.charts(in: torSVG).first?.labels == ["0", "100 GiB", "200 GiB", "300 GiB", "400 GiB", "500 GiB", "600 GiB"])
        let (si, siSource) = try Self.quota("provider 1TB-SI month 1 00:00 sum provider tz=UTC", perHour: 500_000_000)
        let siSVG = try QuotaChart.build(si, source: siSource, id: "s").svg()
        #expect(siSVG.contains("limit 1.00 TB") && !siSVG.contains("GiB") && !siSVG.contains("931"), "\(siSVG)")
        #expect(ChartTicks.charts(in: siSVG).first?.labels.last == "1.2 TB")
        for svg in [torSVG, siSVG] {
            #expect(svg.contains("class=\"now\"") && svg.contains("class=\"now-label\""))
            let legend = svg.components(separatedBy: "class=\"legend-name\"").dropFirst().map { String($0.drop { $0 != ">" }.dropFirst().prefix { $0 != "<" }) }
            for name in ["used", "projection", "80 % range", "limit", "now"] { #expect(legend.contains(name), "\(legend)") }
        }
    }

    @Test func theHourInProgressIsDrawnAtItsRealRateNotSpreadOverTheWholeHour() {
        let start = Self.periodStart
        var s = TrafficSeries(relay: "guard1", start: start, stepSeconds: 3600, steps: 4)
        // Three whole hours at 50 KiB/s, then 150 MiB in the ten minutes of the hour in progress (256 KiB/s).
        for h in 0..<3 { s.add(category: "or_inbound", direction: "in", step: h, bytes: 50 * 1024 * 3600) }
        s.add(category: "or_inbound", direction: "in", step: 3, bytes: 150 * 1024 * 1024)
        let diluted = TrafficChart(title: "t", series: s, id: "d").svg()
        s.dataEnd = start.addingTimeInterval(3 * 3600 + 600)
        #expect(s.coveredSeconds(step: 3) == 600 && s.coveredSeconds(step: 2) == 3600)
        let real = TrafficChart(title: "t", series: s, id: "r").svg()
        // Over the whole hour the 256 KiB/s would read as 42.7 KiB/s, under the earlier hours' 50.
        #expect(ChartTicks.charts(in: diluted).first?.labels.first == "60 KiB/s")
        #expect(ChartTicks.charts(in: real).first?.labels.first == "300 KiB/s")
        #expect(real.contains("class=\"now\"") && real.contains("now (last step so far, at its rate)"))
    }
}
