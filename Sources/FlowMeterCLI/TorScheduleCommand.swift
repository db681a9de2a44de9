import FlowMeterFormat
import ArgumentParser
import Foundation
import FlowMeterAgent
import FlowMeterExport
import FlowMeterReports
import FlowMeterStore
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCapture
import FlowMeterCore

/// `flowmeter tor-schedule`: what Tor will do with its AccountingMax — E, the
/// soft limit, the wake-up and the expected exhaustion — for the current and
/// the next interval, from the torrc and the relay's DataDirectory, so it can
/// be checked against tor's own log and `GETINFO accounting/*`.
struct TorScheduleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tor-schedule",
        abstract: "Tor's hibernation schedule (E, soft limit, wake-up, exhaustion) for the current and next accounting interval.",
        discussion: """
            Reads AccountingMax/AccountingStart/AccountingRule (and RelayBandwidthRate, BandwidthRate) from the \
            torrc, and `fingerprint` and `state` from the DataDirectory. The counters (--last-*) are those of the \
            interval named by AccountingIntervalStart (--interval-start); when that interval has ended at --now, \
            Tor derives the new interval's E from them, as it does at its next start.
            """)

    @Option(help: "The relay's torrc.") var torrc: String
    @Option(help: "The relay's DataDirectory (default: DataDirectory from the torrc).") var dataDirectory: String?
    @Option(help: "Relay fingerprint, 40 hex digits (default: DataDirectory/fingerprint).") var fingerprint: String?
    @Option(help: "AccountingIntervalStart, 'YYYY-MM-DD HH:MM:SS' UTC.") var intervalStart: String?
    @Option(help: "AccountingBytesReadInInterval (bytes or a Tor unit).") var lastRead: String?
    @Option(help: "AccountingBytesWrittenInInterval.") var lastWritten: String?
    @Option(help: "AccountingSecondsActive.") var lastActiveSeconds: UInt64?
    @Option(help: "AccountingSoftLimitHitAt, UTC.") var softLimitHitAt: String?
    @Option(help: "AccountingBytesAtSoftLimit.") var bytesAtSoftLimit: String?
    @Option(help: "AccountingExpectedUsage (E of the stored interval, bytes/min).") var expectedUsage: String?
    @Option(help: "The instant to evaluate at, UTC (default: now).") var now: String?
    @Option(help: "Zone tor runs in; its interval edges are local time (default: this host's).") var timeZone: String?
    @Option(help: "Accounting bytes/s for the soft/hard predictions (default: Tor's E).") var rate: Double?
    @Flag(help: "Print JSON.") var json = false
    /// Tests point this at a temporary tree (Debian's tor layout defaults).
    @Option(name: .customLong("system-root"), help: .hidden) var systemRoot: String = ConfigOptions.defaultSystemRoot

    /// Flags that describe a what-if state: then tor is not asked.
    private var simulates: Bool {
        intervalStart != nil || lastRead != nil || lastWritten != nil || lastActiveSeconds != nil || softLimitHitAt != nil
            || bytesAtSoftLimit != nil || expectedUsage != nil || now != nil
    }

    func validate() throws {
        if let t = timeZone, TimeZone(identifier: t) == nil { throw ValidationError("unknown time zone '\(t)'") }
        for (name, v) in [("--interval-start", intervalStart), ("--soft-limit-hit-at", softLimitHitAt), ("--now", now)] {
            if let v, TorTime.parse(v) == nil { throw ValidationError("\(name): expected 'YYYY-MM-DD HH:MM:SS' (UTC), got '\(v)'") }
        }
    }

    func run() throws {
        let relay: TorInstance
        do {
            // A path of Debian's layout gets its defaults (the main instance's
            // DataDirectory is /var/lib/tor), as every other command reads it.
            guard let read = try ConfigLoader.torInstances([torrc], layout: DebianTorLayout(root: systemRoot)).0.first else {
                throw ConfigError(file: torrc, "no relay in it")
            }
            relay = read
        } catch {
            throw CommandFailure.configuration("\(error)")
        }
        guard let settings = relay.accounting else { throw CommandFailure.configuration("\(torrc): AccountingMax is not set, so Tor does no accounting") }
        let zone = timeZone.flatMap(TimeZone.init(identifier:)) ?? .current
        let config = try TorHibernationConfig(settings: settings, timeZone: zone)

        var inputs = QuotaStatus.TorInputs.read(config: config, dataDirectory: dataDirectory ?? relay.dataDirectory)
        if let v = intervalStart { inputs.state.intervalStart = TorTime.parse(v) }
        if let v = lastRead { inputs.state.bytesRead = try bytes(v, "--last-read") }
        if let v = lastWritten { inputs.state.bytesWritten = try bytes(v, "--last-written") }
        if let v = lastActiveSeconds { inputs.state.secondsActive = v }
        if let v = softLimitHitAt { inputs.state.softLimitHitAt = TorTime.parse(v) }
        if let v = bytesAtSoftLimit { inputs.state.bytesAtSoftLimit = try bytes(v, "--bytes-at-soft-limit") }
        if let v = expectedUsage { inputs.state.expectedUsage = try bytes(v, "--expected-usage") }
        if let f = fingerprint { inputs.fingerprint = try TorFingerprint(hex: f) }

        let at = now.flatMap(TorTime.parse) ?? Date()
        let quota = try Quota.fromTorrc(relay: relay.name, settings: settings, zone: zone)
        let control = simulates || quota == nil ? nil
            : QuotaEvaluation.readings(for: [(quota!, inputs)], torInstances: [relay])[relay.name]?.figures
        let choice = TorIntervalChoice.choose(relay: relay.name, config: config, state: inputs.state, stateSavedAt: inputs.stateSavedAt,
                                              control: control, now: at)
        let report = TorSchedule.report(config: config, state: choice.scheduleState, fingerprint: inputs.fingerprint, now: at,
                                        rate: rate, knownInterval: choice.interval)
        if json {
            var j = TorScheduleJSON(config: config, report: report, now: at)
            j.interval_source = choice.source.rawValue
            print(try JSONStyle.string(j))
        } else {
            print(render(config: config, report: report, now: at, fingerprint: inputs.fingerprint, source: choice.source,
                         dataDirectory: inputs.dataDirectory))
        }
    }

    /// Where the current interval came from, in words.
    private func describe(_ source: TorIntervalSource, dataDirectory: String?) -> String {
        switch source {
        case .torControl: return "interval and bytes from tor's control port"
        case .torStateFile: return "interval and bytes from tor's state file (\(dataDirectory ?? "?")/state)"
        case .computed:
            return "interval computed from AccountingStart (no control port answered; "
                + (dataDirectory.map { "no usable state file in \($0)" } ?? "no DataDirectory known") + ")"
        }
    }

    private func bytes(_ v: String, _ flag: String) throws -> UInt64 {
        do { return try ByteQuantity.parseTor(v).bytes } catch { throw ValidationError("\(flag): \(error)") }
    }

    private func render(config: TorHibernationConfig, report r: TorScheduleReport, now: Date, fingerprint: TorFingerprint?,
                        source: TorIntervalSource, dataDirectory: String?) -> String {
        let z = config.timeZone
        func when(_ d: Date?) -> String {
            guard let d else { return "—" }
            return z.secondsFromGMT(for: d) == 0 ? Format.iso8601(d) : "\(Format.iso8601(d)) (\(localTime(d, z)))"
        }
        var lines = [
            "AccountingMax \(ByteQuantity(bytes: config.accountingMax)), AccountingRule \(config.rule.rawValue), AccountingStart \(config.period), zone \(z.identifier)",
            "fingerprint \(fingerprint?.description ?? "unknown: wake-up cannot be predicted (tor would draw random bytes)")",
            "now \(Format.iso8601(now)); \(describe(r.continuity))",
            "source: \(describe(source, dataDirectory: dataDirectory)) [\(source.rawValue)]",
            "",
        ]
        let rows: [(String, (TorIntervalSchedule) -> String)] = [
            ("interval start", { when($0.interval.start) }),
            ("interval end", { when($0.interval.end) }),
            ("E (bytes/min)", { "\($0.expectedUsage.bytesPerMinute) [\($0.expectedUsage.basis.rawValue)\($0.expectedUsage.capped ? ", capped" : "")\($0.expectedUsage.usesDivideBy60Quirk ? ", Tor's ÷60 quirk" : "")]" }),
            ("soft limit", { "\($0.softLimit) B (\(Format.bytes($0.softLimit)))" }),
            ("wake-up", { when($0.wakeup?.wake) }),
            ("time to exhaust", { $0.wakeup?.timeToExhaustSeconds.map { "\($0) s" } ?? "— (E = 0)" }),
            ("Tor expects exhaustion", { when($0.wakeup?.expectedExhaustion) }),
            ("used so far", { "\($0.usedBytes) B" }),
            ("predicted soft limit", { when($0.predictedSoftHibernation) }),
            ("predicted hard limit", { when($0.predictedHardHibernation) }),
        ]
        let w = 24
        lines.append("".padding(toLength: w, withPad: " ", startingAt: 0) + "current".padding(toLength: 52, withPad: " ", startingAt: 0) + "next")
        for (label, f) in rows {
            lines.append(label.padding(toLength: w, withPad: " ", startingAt: 0)
                         + f(r.current).padding(toLength: 52, withPad: " ", startingAt: 0) + f(r.next))
        }
        lines.append("")
        lines.append("predictions use \(String(format: "%.0f", r.rate)) B/s (\(r.rateSource)); Tor stays dormant until the wake-up.")
        if r.current.expectedUsage.usesDivideBy60Quirk || r.next.expectedUsage.usesDivideBy60Quirk {
            let intended = [r.current, r.next].compactMap(\.expectedUsage.intendedBytesPerMinute).first ?? 0
            lines.append("note: E comes from the previous interval's soft limit, where Tor divides bytes/s by 60 instead of multiplying (hibernate.c, update_expected_bandwidth); the intended E is \(intended) B/min. Tor therefore wakes at the interval start, and its soft limit sits only E × 180 below AccountingMax.")
        }
        if [r.current, r.next].contains(where: { $0.expectedUsage.basis == .none }) {
            lines.append("note: E = 0 means no estimate (under 30 min active): Tor starts awake and hibernates when the quota is used up.")
        }
        return lines.joined(separator: "\n")
    }

    private func describe(_ c: IntervalContinuity) -> String {
        switch c {
        case .noStoredInterval: return "no stored interval: Tor starts a new one"
        case .continued: return "the stored interval continues"
        case .moved(let f): return String(format: "the interval moved by %.2f%%; Tor keeps its counters", 100 * f)
        case .elapsed: return "the stored interval has ended: Tor starts a new one with E from its counters"
        case .mismatched(let f): return String(format: "mismatched accounting interval (moved by %.2f%%): Tor starts a fresh one", 100 * f)
        }
    }
}

/// "YYYY-MM-DD HH:MM:SS" in `zone`, as Tor's local-time log lines print it.
func localTime(_ d: Date, _ zone: TimeZone) -> String {
    TorTime.format(d.addingTimeInterval(TimeInterval(zone.secondsFromGMT(for: d)))) + " " + (zone.abbreviation(for: d) ?? zone.identifier)
}

func readText(_ path: String, what: String) throws -> String {
    do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
        throw CLIError("cannot read \(what) '\(path)': \(Diagnostics.reason(error))")
    }
}

/// A failure while running (not a usage mistake): printed without the usage
/// text, exit 1 (`CommandFailure.runtime`, which `FlowMeterCommand.fail` makes of it).
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
