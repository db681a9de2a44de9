import FlowMeterCore
import Foundation

/// Where a Tor quota's interval (and the bytes used in it) comes from.
public enum TorIntervalSource: String, Sendable, Codable, CaseIterable {
    /// tor said so on its control port: its own interval and exact bytes.
    case torControl = "tor_control"
    /// tor's `state` file in its DataDirectory: the interval tor keeps, and
    /// its bytes as of the file's last save (FlowMeter's packets after it).
    case torStateFile = "tor_state_file"
    /// Neither was readable (or the stored interval has ended): the
    /// interval computed from AccountingStart, FlowMeter's packets in it.
    case computed
}

/// One relay's accounting interval as every view shows it: `run` (metrics,
/// status, dashboard), `top`, `report`, `forecast`, `check` and
/// `tor-schedule` all ask this one function, with what they can read, and
/// name the source it chose. Order of trust: tor's control port when it
/// answers, else tor's state file, else the computed schedule.
public struct TorIntervalChoice: Sendable, Equatable {
    public var interval: DateInterval
    public var source: TorIntervalSource
    /// tor's own counts for the start of the interval: exact up to the
    /// control port's reading, or as the state file last saved them.
    public var seed: ImportedUsage?
    /// What tor's schedule starts from (its interval start and counters).
    public var scheduleState: TorAccountingState

    /// - Parameters:
    ///   - state: tor's state file, when readable; `stateSavedAt` when it
    ///     was written (its `LastWritten` line, else the file's mtime).
    ///   - control: tor's answer on its control port, when it answered.
    public static func choose(relay: String, config: TorHibernationConfig, state: TorAccountingState?, stateSavedAt: Date?,
                              control: TorControlFigures?, now: Date) -> TorIntervalChoice {
        if let c = control, c.accountingEnabled, let start = c.intervalStart, let end = c.intervalEnd,
           start < end, now < end, c.readAt >= start {
            var counters = TorAccountingState(intervalStart: start, bytesRead: c.bytesRead, bytesWritten: c.bytesWritten)
            // The rest of tor's counters (active seconds, E) are in the state
            // file when it describes the same interval.
            if let s = state, s.intervalStart == start {
                counters.secondsActive = s.secondsActive
                counters.secondsToReachSoftLimit = s.secondsToReachSoftLimit
                counters.softLimitHitAt = s.softLimitHitAt
                counters.bytesAtSoftLimit = s.bytesAtSoftLimit
                counters.expectedUsage = s.expectedUsage
            }
            let seed = ImportedUsage(relay: relay, start: start, end: max(c.readAt, start.addingTimeInterval(1)),
                                     read: c.bytesRead, written: c.bytesWritten, source: .torControl, imported: c.readAt)
            return TorIntervalChoice(interval: DateInterval(start: start, end: end), source: .torControl, seed: seed,
                                     scheduleState: counters)
        }
        let stored = state ?? TorAccountingState()
        let (continuity, interval) = IntervalContinuity.decide(storedStart: stored.intervalStart, now: now,
                                                                period: config.period, zone: config.timeZone)
        guard continuity.keepsCounters, let start = stored.intervalStart else {
            return TorIntervalChoice(interval: interval, source: .computed, seed: nil, scheduleState: stored)
        }
        var seed: ImportedUsage? = nil
        if let saved = stateSavedAt, saved > start {
            seed = ImportedUsage(relay: relay, start: start, end: min(saved, max(now, start.addingTimeInterval(1))),
                                 read: stored.bytesRead, written: stored.bytesWritten, source: .torState, imported: saved)
        }
        return TorIntervalChoice(interval: DateInterval(start: min(start, interval.start), end: interval.end),
                                 source: .torStateFile, seed: seed, scheduleState: stored)
    }
}
