import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterFormat
import Foundation

extension TorScheduleReport {
    /// Where the current interval came from, in words.
    fileprivate func describe(_ source: TorIntervalSource, dataDirectory: String?) -> String {
        switch source {
        case .torControl: return "interval and bytes from tor's control port"
        case .torStateFile: return "interval and bytes from tor's state file (\(dataDirectory ?? "?")/state)"
        case .computed:
            return "interval computed from AccountingStart (no control port answered; "
                + (dataDirectory.map { "no usable state file in \($0)" } ?? "no DataDirectory known") + ")"
        }
    }

    /// `flowmeter tor-schedule`'s text: the configuration, where the interval
    /// came from, then the current and next interval side by side.
    public func text(config: TorHibernationConfig, now: Date, fingerprint: TorFingerprint?,
                     source: TorIntervalSource, dataDirectory: String?) -> String {
        let r = self
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
        let table = TextTable(header: ["", "current", "next"], rows: rows.map { [$0.0, $0.1(r.current), $0.1(r.next)] },
                              rightAlignedFrom: 3, trimsTrailingSpaces: true)
        lines.append(String(table.render().dropLast()))
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

    fileprivate func describe(_ c: IntervalContinuity) -> String {
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
public func localTime(_ d: Date, _ zone: TimeZone) -> String {
    TorTime.format(d.addingTimeInterval(TimeInterval(zone.secondsFromGMT(for: d)))) + " " + (zone.abbreviation(for: d) ?? zone.identifier)
}

