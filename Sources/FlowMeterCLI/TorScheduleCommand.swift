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
            print(report.text(config: config, now: at, fingerprint: inputs.fingerprint, source: choice.source,
                              dataDirectory: inputs.dataDirectory))
        }
    }

    private func bytes(_ v: String, _ flag: String) throws -> UInt64 {
        do { return try ByteQuantity.parseTor(v).bytes } catch { throw ValidationError("\(flag): \(error)") }
    }
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
