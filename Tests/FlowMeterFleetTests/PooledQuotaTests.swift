import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCore
import Foundation
import Testing
@testable import FlowMeterFleet
@testable import FlowMeterTestSupport

/// The `pools:` grammar: a quota spec plus `hosts=`, declared once in the
/// config file, with errors that name the line.
struct PooledQuotaTests {
    let utc = TimeZone(identifier: "UTC")!

    @Test func aPoolIsAQuotaSpecWithItsMembersInOneHostsToken() throws {
        let p = try PooledQuota(spec: "account 100TB-SI month 14 00:00 sum provider hosts=relay-a,relay-b.example,relay-c tz=UTC",
                                defaultZone: .current)
        #expect(p.name == "account")
        #expect(p.hosts == ["relay-a", "relay-b.example", "relay-c"])
        #expect(p.quota.limit == 100_000_000_000_000)
        #expect(p.quota.rule == .sum)
        #expect(p.quota.scope == .provider)
        #expect(p.quota.timeZone.secondsFromGMT(for: Date()) == 0)
        let family = try PooledQuota(spec: "family hosts=a,b 2 TiB week 1 00:00 max tor:exit", defaultZone: utc)
        #expect(family.quota.scope.relay == "exit")
        #expect(family.hosts == ["a", "b"])
    }

    @Test func aPoolWithoutMembersOrWithAMemberTwiceIsRefusedSayingWhatToWrite() {
        for (spec, words) in [
            ("p 1TiB day 00:00 sum", "has no hosts="),
            ("p 1TiB day 00:00 sum hosts=a hosts=b", "names hosts= twice"),
            ("p 1TiB day 00:00 sum hosts=a,,b", "an empty host name"),
            ("p 1TiB day 00:00 sum hosts=a,b,a", "'a' is listed twice"),
            ("p 1TB day 00:00 sum hosts=a", "ambiguous"),
        ] {
            #expect(throws: (any Error).self) { try PooledQuota(spec: spec, defaultZone: utc) }
            do { _ = try PooledQuota(spec: spec, defaultZone: utc) } catch {
                #expect("\(error)".contains(words), "\(spec): \(error)")
            }
        }
    }

    @Test func theConfigFilesPoolsListIsReadAndAnErrorNamesItsLine() throws {
        let dir = makeTemporaryDirectory("pools")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let good = dir + "/good.yaml"
        try """
        quotas:
          - 'own 10TiB month 1 00:00 sum provider'
        pools:
          - 'account 100TB-SI month 1 00:00 sum provider hosts=a,b tz=UTC'
          - 'family 40TiB month 1 00:00 max wire:relay hosts=b,c'
        """.write(toFile: good, atomically: true, encoding: .utf8)
        let pools = try PooledQuota.load(try ConfigFile.load(good), defaultZone: utc)
        #expect(pools.map(\.name) == ["account", "family"])
        #expect(pools[1].quota.scope.categories == Set(["or_inbound", "or_outbound", "dir", "exit"]))

        let bad = dir + "/bad.yaml"
        try "pools:\n  - 'a 1TiB day 00:00 sum hosts=x'\n  - 'a 2TiB day 00:00 sum hosts=y'\n"
            .write(toFile: bad, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try PooledQuota.load(try ConfigFile.load(bad), defaultZone: utc) }
        do { _ = try PooledQuota.load(try ConfigFile.load(bad), defaultZone: utc) } catch {
            #expect("\(error)".contains("bad.yaml:3"), "\(error)")
            #expect("\(error)".contains("declared twice"))
        }
    }

    @Test func labelMatchersEscapeRegexAndStringCharacters() {
        #expect(PromQL.alternation(["relay-a.example", "b+c"]) == #"relay-a\.example|b\+c"#)
        #expect(PromQL.string(#"a"b\c"#) == #""a\"b\\c""#)
        #expect(PromQL.selector(hosts: ["a.b"], categories: ["exit", "dir"], relay: "r1")
                == #"{host=~"a\\.b",category=~"dir|exit",relay="r1"}"#)
    }
}

/// How counter readings become exact increments: differences, resets summed
/// again from raw samples, and a counter's first reading counted only when
/// its agent started since the read before.
struct CounterReadingsTests {
    func t(_ s: Double) -> Date { Date(timeIntervalSince1970: s) }

    @Test func consecutiveReadingsGiveTheirDifferenceAndASuspiciousSpanIsRefined() throws {
        let grid = [t(0), t(3600), t(7200), t(10800)]
        var refined: [(Date, Date)] = []
        let steps = try CounterReadings.steps(
            [(t(0), 100), (t(3600), 400), (t(7200), 50), (t(10800), 60)], grid: grid,
            suspicious: { a, _ in a == t(7200) },
            refine: { a, b in refined.append((a, b)); return a == t(3600) ? 999 : 77 },
            startedAt: { _ in nil })
        #expect(steps == [
            .init(from: t(0), to: t(3600), bytes: 300),
            .init(from: t(3600), to: t(7200), bytes: 999),   // the value fell: a restart
            .init(from: t(7200), to: t(10800), bytes: 77),   // flagged by resets()
        ])
        #expect(refined.count == 2)
    }

    @Test func aFirstReadingCountsFromZeroOnlyWhenItsAgentStartedSinceTheReadBefore() throws {
        let grid = [t(0), t(3600), t(7200)]
        let fresh = try CounterReadings.steps([(t(3600), 500), (t(7200), 800)], grid: grid, suspicious: { _, _ in false },
                                              refine: { _, _ in 0 }, startedAt: { _ in t(1000) })
        #expect(fresh == [.init(from: t(1000), to: t(3600), bytes: 500), .init(from: t(3600), to: t(7200), bytes: 300)])
        let older = try CounterReadings.steps([(t(3600), 500), (t(7200), 800)], grid: grid, suspicious: { _, _ in false },
                                              refine: { _, _ in 0 }, startedAt: { _ in t(-50) })
        #expect(older == [.init(from: t(3600), to: t(7200), bytes: 300)])
        let atWindowStart = try CounterReadings.steps([(t(0), 500), (t(3600), 800)], grid: grid, suspicious: { _, _ in false },
                                                      refine: { _, _ in 0 }, startedAt: { _ in t(-10) })
        #expect(atWindowStart == [.init(from: t(0), to: t(3600), bytes: 300)])
    }

    @Test func anIncreaseAcrossAHoleInTheSamplesIsSpreadOverTheReadInstantsItSpansAndAddsUpExactly() throws {
        let grid = [t(0), t(3600), t(7200), t(10800)]
        let steps = try CounterReadings.steps([(t(0), 0), (t(10800), 1001)], grid: grid, suspicious: { _, _ in false },
                                              refine: { _, _ in 0 }, startedAt: { _ in nil })
        #expect(steps == [.init(from: t(0), to: t(3600), bytes: 333), .init(from: t(3600), to: t(7200), bytes: 334),
                          .init(from: t(7200), to: t(10800), bytes: 334)])
    }

    @Test func rawSamplesSumTheirDifferencesAndCountFromZeroAfterAReset() {
        let s = [PromSample(90, 1000), PromSample(100, 1100), PromSample(160, 1500), PromSample(220, 30), PromSample(280, 90)]
        #expect(CounterReadings.increase(s, after: 100, base: 1100) == 400 + 30 + 60)
        #expect(CounterReadings.increase([PromSample(150, 20), PromSample(200, 70)], after: 100, base: nil) == 70)
    }

    @Test func aStepBecomesABucketFiledUnderItsHostWithTheBytesInTheScopesLayer() {
        let key = CounterReadings.Key(host: "relay-a", category: .exit, direction: .outbound)
        let b = CounterReadings.bucket(key, .init(from: t(0), to: t(1800), bytes: 42), layer: .tor)
        #expect(b.relay == "relay-a" && b.category == .exit && b.direction == .outbound)
        #expect(b.torPayloadBytes == 42 && b.bytes == 0 && b.durationSeconds == 1800)
    }

    @Test func theGridHoldsHourBoundariesTheEdgesInsideAndNow() {
        let g = FleetHistoryLoader.grid(from: t(5000), now: t(12_000), edges: [t(9000), t(100)])
        #expect(g == [t(3600), t(7200), t(9000), t(10800), t(12_000)])
    }
}
