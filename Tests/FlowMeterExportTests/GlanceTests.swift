import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterExport

/// Stored buckets with one gap list, for the traffic answer.
private struct Stored: UsageHistorySource {
    var stored: [UsageBucket]
    var gapList: [DateInterval] = []
    var first: Date? = nil
    func buckets(from: Date, to: Date) throws -> [UsageBucket] { stored.filter { $0.start >= from && $0.start < to } }
    func gaps(from: Date, to: Date) throws -> [DateInterval] { gapList.filter { $0.end > from && $0.start < to } }
    func observationStart() throws -> Date? { first }
}

/// The three answers every first screen opens with: each is a claim, so
/// each has a case where it must say the other thing.
struct GlanceTests {
    static let utc = TimeZone(identifier: "UTC")!
    static let monthStart = Date(timeIntervalSince1970: 1_772_323_200)  // 2026-03-01T00:00:00Z

    static func bucket(_ relay: String, _ category: FlowMeterCore.Category, _ d: Direction, hour: Int, bytes: UInt64) -> UsageBucket {
        UsageBucket(start: monthStart.addingTimeInterval(Double(hour * 3600)), durationSeconds: 3600,
                    cell: Cell(relay: relay, category: category, direction: d, CellCounts(packets: 1, bytes: bytes, payloadBytes: bytes, torPayloadBytes: 0)))
    }

    @Test func theHostTotalSumsEveryLabelAndCategoryAndTodayIsOnlyTodaysBuckets() throws {
        // Day 1 and day 3 (today) of guard1's OR and the host's dns and ssh.
        let source = Stored(stored: [
            Self.bucket("guard1", .orInbound, .inbound, hour: 5, bytes: 1000),
            Self.bucket("guard1", .orInbound, .inbound, hour: 50, bytes: 300),
            Self.bucket("guard1", .exit, .outbound, hour: 51, bytes: 70),
            Self.bucket("host", .dns, .outbound, hour: 52, bytes: 5),
            Self.bucket("host", .other, .inbound, hour: 2, bytes: 20),
        ], first: Self.monthStart)
        let now = Self.monthStart.addingTimeInterval(53 * 3600)
        let day = Glance.day(containing: now, zone: Self.utc)
        let period = Glance.period(quotas: [], now: now, zone: Self.utc)
        #expect(period.1 == "month" && period.0.start == Self.monthStart)
        let glance = Glance(now: now, zone: Self.utc, day: day, period: period,
                            traffic: try Glance.traffic(from: source, day: day, period: period.0, now: now),
                            quotas: [], torControl: [])
        #expect(glance.traffic.map(\.relay) == ["all", "guard1", "host"], "the total first, the host's own traffic last")
        let all = glance.traffic[0], guard1 = glance.traffic[1]
        #expect((all.todayInBytes, all.todayOutBytes, all.periodInBytes, all.periodOutBytes) == (300, 75, 1320, 75))
        #expect((guard1.todayInBytes, guard1.periodInBytes) == (300, 1300))
        #expect(!all.lowerBound)
        #expect(glance.tor.isEmpty && glance.textLines().contains("Tor: no relay with accounting (AccountingMax) known: nothing will hibernate"))
        // A gap today makes every figure a lower bound, and the views say so.
        var gapped = source
        gapped.gapList = [DateInterval(start: now.addingTimeInterval(-600), duration: 300)]
        let partial = try Glance.traffic(from: gapped, day: day, period: period.0, now: now)
        #expect(partial.allSatisfy { $0.lowerBound })
        let lines = Glance(now: now, zone: Self.utc, day: day, period: period, traffic: partial, quotas: [], torControl: []).trafficLines()
        #expect(lines.contains { $0.hasPrefix("all") && $0.contains("≥300 B") }, "\(lines)")
    }

    @Test func eachQuotaGetsAVerdictAndTheVerdictFollowsTheProjectionNotTheHopes() throws {
        let (base, _) = try ChartReadingTests.quota("tor 500GiB month 1 00:00 max tor:guard1 tz=UTC", perHour: 1 << 28)
        let limit = Double(base.quota.limit)
        func verdict(_ change: (inout QuotaStatus) -> Void) -> Glance.QuotaVerdict {
            var s = base
            change(&s)
            return Glance.QuotaVerdict(s)
        }
        let lasts = verdict { _ in }
        #expect(lasts.verdict == .lasts && lasts.verdictPhrase == "lasts", "\(lasts)")
        #expect(lasts.history == base.forecast.historyDescription && lasts.basisPhrase.contains(base.forecast.historyDescription))
        let may = verdict { $0.forecast.projection!.high = limit * 1.1 }
        #expect(may.verdict == .mayRunOut && may.verdictPhrase == "may run out")
        let exhaustion = Self.monthStart.addingTimeInterval(25 * 86_400)
        let runs = verdict {
            $0.forecast.projection!.endTotal = limit * 1.2; $0.forecast.projection!.high = limit * 1.4
            $0.forecast.projection!.exhaustion = exhaustion
        }
        #expect(runs.verdict == .runsOut && runs.verdictPhrase == "runs out on 2026-03-26 00:00 UTC" && runs.runsOutAt == "2026-03-26T00:00:00Z")
        let over = verdict { $0.forecast.usage.used = $0.quota.limit; $0.forecast.projection!.exhaustion = exhaustion }
        #expect(over.verdict == .over && over.verdictPhrase == "over the limit since 2026-03-26 00:00 UTC")
        let unknown = verdict { $0.forecast.projection = nil }
        #expect(unknown.verdict == .unknown && unknown.projectedHighBytes == nil)
        #expect(unknown.basisPhrase.hasSuffix("(a projection needs 30 minutes)"))
    }

    static func tor(_ quotas: [QuotaStatus], _ control: [TorControlStatus], now: Date) -> [Glance.TorState] {
        Glance(now: now, zone: utc, day: Glance.day(containing: now, zone: utc), period: Glance.period(quotas: quotas, now: now, zone: utc),
               traffic: [], quotas: quotas, torControl: control).tor
    }

    @Test func torsStateComesFromItsControlPortWhenItAnswersElseFromItsSchedule() throws {
        let now = Self.monthStart.addingTimeInterval(10 * 86_400)
        let end = Self.monthStart.addingTimeInterval(31 * 86_400)
        let figures = TorControlFigures(readAt: now, accountingEnabled: true, hibernating: .hard, bytesRead: 600, bytesWritten: 10,
                                        intervalStart: Self.monthStart, intervalEnd: end, intervalWake: nil)
        let prediction = TorLivePredictor.predict(samples: [(now, 600)], latest: figures, accountingMax: 600, now: now)
        let asleep = TorControlStatus(relay: "guard1", up: true, rule: .max, accountingMax: 600, figures: figures, prediction: prediction)
        var off = TorControlStatus(relay: "exit1", up: true, rule: .max, accountingMax: 0)
        off.figures = TorControlFigures(readAt: now, accountingEnabled: false)
        let states = Self.tor([], [asleep, off], now: now)
        #expect(states.map(\.state) == [Glance.TorState.State.hard, .accountingOff])
        #expect(states[0].phrase == "hibernating; next wake-up 2026-04-01 00:00 UTC" && states[0].sourcePhrase == "tor's control port")
        #expect(states[1].phrase == "accounting off: never hibernates")

        // Without a control port: Tor's own arithmetic on its schedule.
        let zone = Self.utc
        let quota = try Quota(spec: "tor-guard1 100GiB month 1 00:00 max tor:guard1 tz=UTC", defaultZone: zone)
        let tor = QuotaStatus.TorInputs(config: TorHibernationConfig(accountingMax: 100 << 30, timeZone: zone),
                                        state: TorAccountingState(intervalStart: Self.monthStart, bytesRead: 10 << 30, secondsActive: 86_400,
                                                                  expectedUsage: 1 << 20),
                                        fingerprint: try TorFingerprint(hex: String(repeating: "AB", count: 20)))
        let status = try QuotaStatus.evaluate(quota, source: Stored(stored: []), now: now, tor: tor)
        let state = Self.tor([status], [], now: now)
        #expect(state.count == 1 && state[0].source == "schedule")
        let wake = status.tor!.current.wakeup!.wake
        if now < wake {
            #expect(state[0].state == .hard && state[0].nextWakeup == Format.iso8601(wake), "dormant before its wake-up")
        } else {
            #expect(state[0].state == .awake, "\(state[0])")
        }
        // Tor's own word wins over the schedule for the same relay.
        #expect(Self.tor([status], [asleep], now: now).map(\.source) == ["tor_control"])
    }

    /// Every `…_bytes` value of a document, as JSON text: a fraction shows as a '.' or an exponent.
    static func fractionalBytes(_ json: String) -> [String] {
        let regex = try! NSRegularExpression(pattern: "\"([a-z_]*_bytes)\" ?: ?(-?[0-9][0-9.eE+-]*)")
        let text = json as NSString
        return regex.matches(in: json, range: NSRange(location: 0, length: text.length)).compactMap { m in
            let value = text.substring(with: m.range(at: 2))
            return value.contains(where: { ".eE".contains($0) }) ? "\(text.substring(with: m.range(at: 1))): \(value)" : nil
        }
    }

    @Test func everyByteCountAProgramReadsIsAWholeNumberInStatusAndForecastJSON() throws {
        // 0.3 GiB an hour makes every projection fractional before rounding.
        let (status, _) = try ChartReadingTests.quota("provider 1TB-SI month 1 00:00 sum provider tz=UTC", perHour: 322_122_547)
        #expect(status.forecast.projection.map { $0.endTotal != $0.endTotal.rounded() } == true, "the test needs a fractional projection")
        var r = AgentReading()
        r.quotas = [status]
        let now = status.forecast.now
        r.glance = Glance(now: now, zone: Self.utc, day: Glance.day(containing: now, zone: Self.utc),
                          period: Glance.period(quotas: [status], now: now, zone: Self.utc), traffic: [], quotas: [status], torControl: [])
        let doc = String(decoding: StatusDocument(r).json(), as: UTF8.self)
        #expect(doc.contains("\"projected_end_bytes\"") && doc.contains("\"projected_high_bytes\"") && doc.contains("\"glance\""))
        #expect(Self.fractionalBytes(doc).isEmpty, "\(Self.fractionalBytes(doc))")
        let forecast = try JSONStyle.string([status.json])
        #expect(forecast.contains("\"projected_end_bytes_high\"") && forecast.contains("\"daily_budget_bytes\""))
        #expect(Self.fractionalBytes(forecast).isEmpty, "\(Self.fractionalBytes(forecast))")
        // The status document still reads back, glance included.
        let back = try JSONStyle.decoder().decode(StatusDocument.self, from: StatusDocument(r).json())
        #expect(back.glance == r.glance && back.quotas?.first?.projectedEndBytes == Format.exactBytes(status.forecast.projection!.endTotal))
    }
}
