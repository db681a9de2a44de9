import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAccounting

/// Six months of generated hourly history (Jan–Jun 2026), a monthly sum
/// quota, forecasts at every day boundary of every complete month.
@Suite struct BacktestTests {
    static let quota = Quota(name: "p", limit: 200 << 40, period: .torDefault, rule: .sum,
                             timeZone: TimeZone(identifier: "UTC")!, scope: .provider)
    static let start = utc("2026-01-01 00:00:00")
    /// Forecasts at every third day boundary keep the suite short; `flowmeter
    /// backtest --synthetic all` scores every day (docs/quotas.md has its table).
    static func run(_ shape: SyntheticHistory.Shape, seed: UInt64) throws -> BacktestResult {
        let h = SyntheticHistory.generate(shape, start: start, days: 181, seed: seed)
        return try Backtest.run(quota: quota, source: h, from: start, to: start.addingTimeInterval(181 * 86_400), everyDays: 3)
    }
    /// Computed once (each run replays ~175 forecasts) and shared by the tests.
    static let results: [SyntheticHistory.Shape: BacktestResult] = {
        var out: [SyntheticHistory.Shape: BacktestResult] = [:]
        for shape in SyntheticHistory.Shape.allCases { out[shape] = try? run(shape, seed: 1) }
        return out
    }()

    @Test(arguments: SyntheticHistory.Shape.allCases)
    func flowMetersProjectionBeatsVnstatsOnEveryShape(shape: SyntheticHistory.Shape) throws {
        let r = try #require(Self.results[shape])
        print("backtest \(shape.rawValue): periods \(r.periods.count) points \(r.pointCount) MAPE flowmeter \(String(format: "%.2f", r.flowMeterMAPE)) % vnstat \(String(format: "%.2f", r.vnstatMAPE)) % coverage \(String(format: "%.1f", 100 * r.coverage)) % width \(String(format: "%.1f", r.meanRangeWidth)) %")
        #expect(r.periods.count == 6)
        #expect(r.flowMeterMAPE < r.vnstatMAPE)
    }

    @Test func theRangeHoldsItsStatedShareOfActualTotalsWithinFivePoints() throws {
        let all = BacktestResult(periods: SyntheticHistory.Shape.allCases.flatMap { Self.results[$0]?.periods ?? [] }, method: "")
        #expect(abs(all.coverage - QuotaForecaster.rangeCoverage) <= 0.05, "coverage \(all.coverage)")
        #expect(all.meanRangeWidth > 0)
    }

    @Test(arguments: [SyntheticHistory.Shape.weekly, .trend])
    func onWeeklyAndTrendHistoriesFlowMetersErrorIsAtMostHalfOfVnstats(shape: SyntheticHistory.Shape) throws {
        let r = try #require(Self.results[shape])
        #expect(r.flowMeterMAPE <= 0.5 * r.vnstatMAPE)
    }

    /// The shapes where relays change, on a second noise draw.
    @Test(arguments: [SyntheticHistory.Shape.trend, .step, .ramp, .flood])
    func theInequalitiesHoldForAnotherNoiseDrawToo(shape: SyntheticHistory.Shape) throws {
        let r = try Self.run(shape, seed: 3000)
        #expect(r.flowMeterMAPE < r.vnstatMAPE)
        if shape == .weekly || shape == .trend { #expect(r.flowMeterMAPE <= 0.5 * r.vnstatMAPE) }
    }

    @Test func aHistoryFileRoundTripsAndItsMissingRowsAreGaps() throws {
        let text = """
            start_utc,seconds,bytes_in,bytes_out
            2026-01-01T00:00:00Z,3600,10,20
            2026-01-01T01:00:00Z,3600,30,40
            # capture stopped for an hour
            1767236400,3600,50,60
            """
        let h = try HistoryFile(text: text)
        #expect(h.rows.count == 3)
        #expect(try HistoryFile(text: h.render()).rows == h.rows)
        let gaps = try h.gaps(from: utc("2026-01-01 00:00:00"), to: utc("2026-01-02 00:00:00"))
        #expect(gaps == [DateInterval(start: utc("2026-01-01 02:00:00"), end: utc("2026-01-01 03:00:00"))])
        #expect(throws: HistoryFileError.self) { try HistoryFile(text: "2026-01-01T00:00:00Z,3600,10") }
    }
}
