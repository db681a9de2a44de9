import Foundation
import Testing
@testable import FlowMeterReports
@testable import FlowMeterFormat

/// `CheckPlugin`, the monitoring-plugin logic of `flowmeter check`, branch by branch.
@Suite struct CheckPluginTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    var periodEnd: Date { now.addingTimeInterval(10 * 86_400) }
    let tib: UInt64 = 1 << 40

    func quota(_ used: UInt64, limit: UInt64? = nil, exhaustion: Date? = nil, relay: String? = nil) -> CheckPlugin.QuotaInput {
        CheckPlugin.QuotaInput(name: "provider", used: used, limit: limit ?? tib, periodEnd: periodEnd, exhaustion: exhaustion, relay: relay)
    }

    func options(_ w: String = "80", _ c: String = "95", wh: Double? = nil, ch: Double? = nil, maxAge: Double? = 120) throws -> CheckPlugin.Options {
        CheckPlugin.Options(warning: try .init(parsing: w), critical: try .init(parsing: c), warningHours: wh, criticalHours: ch, maxAge: maxAge)
    }

    func check(_ quotas: [CheckPlugin.QuotaInput], _ o: CheckPlugin.Options, newest: Date? = nil,
               relays: [String] = ["host", "guardA"]) -> CheckPlugin.Result {
        CheckPlugin.evaluate(quotas, options: o, now: now, newestData: newest ?? now.addingTimeInterval(-30), knownRelays: relays)
    }

    @Test func belowTheWarningRangeIsOKWithFilledPerfdata() throws {
        let r = check([quota(tib / 2)], try options())
        #expect(r.status == .ok)
        #expect(r.line.hasPrefix("FLOWMETER OK - provider 50.0 % used"))
        let perf = try #require(r.line.split(separator: "|").last).trimmingCharacters(in: .whitespaces)
        #expect(perf == "'data_age'=30s;;120;0; 'provider'=\(tib / 2)B;\(UInt64((0.8 * Double(tib)).rounded()));\(UInt64((0.95 * Double(tib)).rounded()));0;\(tib)")
        #expect(!r.line.contains("\n"))
    }

    @Test func aboveWarningIsWarningAndAboveCriticalIsCritical() throws {
        #expect(check([quota(tib * 85 / 100)], try options()).status == .warning)
        #expect(check([quota(tib * 96 / 100)], try options("80%", "95%")).status == .critical)
    }

    @Test func byteQuantityThresholdsWork() throws {
        let o = try options("512GiB", "1000GiB")
        #expect(check([quota(tib / 4)], o).status == .ok)
        #expect(check([quota(tib * 3 / 4)], o).status == .warning)
        #expect(check([quota(tib * 3 / 4)], o).line.contains("B;549755813888;1073741824000;0;"))
    }

    @Test func rangeSyntaxFollowsTheGuidelines() throws {
        // 10:  alerts below 10 %; @20:30 alerts inside; ~:50 alerts above 50 only.
        #expect(try CheckPlugin.Threshold(parsing: "10:").alerts(used: 5, limit: 100))
        #expect(!(try CheckPlugin.Threshold(parsing: "10:").alerts(used: 50, limit: 100)))
        #expect(try CheckPlugin.Threshold(parsing: "@20:30").alerts(used: 25, limit: 100))
        #expect(!(try CheckPlugin.Threshold(parsing: "@20:30").alerts(used: 35, limit: 100)))
        #expect(try CheckPlugin.Threshold(parsing: "~:50").alerts(used: 60, limit: 100))
        #expect(try CheckPlugin.Threshold(parsing: "@20:30").perfdata(limit: 100) == "@20:30")
        #expect(try CheckPlugin.Threshold(parsing: "80").perfdata(limit: 100) == "80")
        for bad in ["", "abc", "90:10", "10XB"] {
            #expect(throws: CheckPlugin.CheckError.self) { try CheckPlugin.Threshold(parsing: bad) }
        }
    }

    @Test func overTheLimitIsCriticalSayingWhenAndHowFarOver() throws {
        let at = now.addingTimeInterval(-7200)
        let r = check([quota(tib + tib / 10, exhaustion: at)], try options())
        #expect(r.status == .critical)
        #expect(r.line.contains("provider exhausted at \(Format.iso8601(at)), 10.0 % over"))
        #expect(!r.line.contains("-"  + "0.") && !r.line.contains("in -"))
    }

    @Test func projectedExhaustionCloserThanTheHoursAlerts() throws {
        let soon = now.addingTimeInterval(5 * 3600)
        #expect(check([quota(tib / 2, exhaustion: soon)], try options(wh: 24, ch: 2)).status == .warning)
        let r = check([quota(tib / 2, exhaustion: soon)], try options(wh: 24, ch: 6))
        #expect(r.status == .critical)
        #expect(r.line.contains("'provider exhaustion'=18000s;86400:;21600:;0;"))
        #expect(check([quota(tib / 2, exhaustion: soon)], try options()).status == .ok)
    }

    @Test func staleDataIsCriticalNoDataSince() throws {
        let old = now.addingTimeInterval(-2 * 365 * 86_400)
        let r = check([quota(0)], try options(), newest: old)
        #expect(r.status == .critical)
        #expect(r.line.contains("no data since \(Format.iso8601(old))"))
        #expect(check([quota(0)], try options(maxAge: nil), newest: old).status == .ok, "--max-age 0 turns it off")
        let none = CheckPlugin.evaluate([quota(0)], options: try options(), now: now, newestData: nil, knownRelays: ["host"])
        #expect(none.status == .critical && none.line.contains("no data in the store"))
    }

    @Test func limitZeroIsAConfigurationError() throws {
        let r = check([quota(10, limit: 0)], try options())
        #expect(r.status == .unknown)
        #expect(r.line == "FLOWMETER UNKNOWN - quota provider has limit 0: a configuration error")
    }

    @Test func anUnknownRelayIsUnknownListingTheKnownOnes() throws {
        let r = check([quota(10, relay: "gaurdA")], try options())
        #expect(r.status == .unknown)
        #expect(r.line.contains("'gaurdA'") && r.line.contains("known relays: host, guardA"))
    }

    @Test func noQuotaIsUnknownAndMessagesStayOnOneLine() {
        #expect(CheckPlugin.evaluate([], options: try! options(), now: now, newestData: now, knownRelays: []).status == .unknown)
        #expect(CheckPlugin.unknown("a\nb | c").line == "FLOWMETER UNKNOWN - a b / c")
    }

    @Test func theWorstQuotaDecides() throws {
        let r = check([quota(tib / 2), CheckPlugin.QuotaInput(name: "tor-guardA", used: 99, limit: 100, periodEnd: periodEnd,
                                                                exhaustion: nil, relay: "guardA")], try options())
        #expect(r.status == .critical)
        #expect(r.line.contains("'provider'=") && r.line.contains("'tor-guardA'="))
    }

    @Test func durationsParse() throws {
        #expect(try CheckPlugin.parseDuration("120") == 120)
        #expect(try CheckPlugin.parseDuration("5m") == 300)
        #expect(try CheckPlugin.parseDuration("2h") == 7200)
        #expect(try CheckPlugin.parseDuration("1d") == 86_400)
        #expect(throws: CheckPlugin.CheckError.self) { try CheckPlugin.parseDuration("soon") }
        #expect(try CheckPlugin.parseDuration("36500d") == 36_500 * 86_400)
        #expect(throws: CheckPlugin.CheckError.self) { try CheckPlugin.parseDuration("99999999999999999999") }
    }

    @Test func everyOptionIsCheckedAgainstItsRangeBeforeAnythingRuns() throws {
        typealias Args = (w: String, c: String, wh: Double?, ch: Double?, age: String?)
        func options(_ a: Args) throws(CheckPlugin.CheckError) -> CheckPlugin.Options {
            try CheckPlugin.Options(warning: a.w, critical: a.c, warningHours: a.wh, criticalHours: a.ch, maxAge: a.age, defaultMaxAge: 600)
        }
        #expect(try options(("1000000", "@-1000000%:1000000%", 876_600, 0, "36524d")).maxAge == 36_524 * 86_400)
        let bad: [Args] = [("1e300", "95", nil, nil, nil), ("80", "@1e307:1e308", nil, nil, nil), ("80", "95", 1e300, nil, nil),
                           ("80", "95", nil, -1, nil), ("80", "95", .nan, nil, nil), ("80", "95", nil, nil, "1e300d"),
                           ("80", "95", nil, nil, "99999999999999999999")]
        for a in bad {
            #expect(throws: CheckPlugin.CheckError.self, "\(a)") { _ = try options(a) }
        }
    }

    @Test func figuresAtTheEdgesOfTheirRangesMakeAStatusLineNotATrap() throws {
        let o = try CheckPlugin.Options(warning: "1000000", critical: "@-1000000:1000000", warningHours: 876_600, criticalHours: 876_600,
                                        maxAge: "36524d", defaultMaxAge: 600)
        let edge = CheckPlugin.QuotaInput(name: "edge", used: 0, limit: .max, periodEnd: now.addingTimeInterval(4e9),
                                          exhaustion: now.addingTimeInterval(3.9e9), relay: nil)
        for newest in [now, Date.distantPast, now.addingTimeInterval(-4e9)] {
            let r = CheckPlugin.evaluate([edge, quota(.max, limit: 1)], options: o, now: now, newestData: newest, knownRelays: [])
            #expect(r.line.hasPrefix("FLOWMETER ") && !r.line.contains("\n"), "\(r.line)")
        }
    }
}
