import FlowMeterFormat
import FlowMeterCore
import FlowMeterConfig
import Foundation

/// When a quota's period starts: Tor's `AccountingStart` (`day HH:MM`,
/// `week D HH:MM` with 1 = Monday, `month D HH:MM` with D in 1…28), always in
/// local time of a configured zone.
///
/// Invariant: `day` is 0 for `.day`, 1…7 for `.week`, 1…28 for `.month`;
/// `hour` 0…23, `minute` 0…59.
public struct AccountingPeriod: Sendable, Hashable, CustomStringConvertible {
    public enum Unit: String, Sendable, Hashable { case day, week, month }
    public var unit: Unit
    public var day: Int
    public var hour: Int
    public var minute: Int

    /// Tor's default when AccountingStart is unset: `month 1 0:00`.
    public static let torDefault = AccountingPeriod(unchecked: .month, day: 1, hour: 0, minute: 0)

    init(unchecked unit: Unit, day: Int, hour: Int, minute: Int) {
        self.unit = unit; self.day = day; self.hour = hour; self.minute = minute
    }

    /// Parses `AccountingStart` text with Tor's checks, in Tor's order and with
    /// Tor's wording (`accounting_parse_options()`), so a torrc Tor rejects is
    /// rejected here with the same reason.
    public init(parsing text: String) throws {
        let items = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        try self.init(tokens: items)
    }

    /// Parses from already split tokens (the `--quota` grammar consumes a
    /// period by its keyword's arity).
    public init(tokens items: [String]) throws {
        guard items.count >= 2 else { throw AccountingPeriodError("Too few arguments to AccountingStart") }
        let keyword = items[0]
        let unit: Unit
        switch keyword.lowercased() {
        case "month": unit = .month
        case "week": unit = .week
        case "day": unit = .day
        default:
            throw AccountingPeriodError("Unrecognized accounting unit '\(keyword)': only 'month', 'week', and 'day' are supported.")
        }
        var d = 0
        switch unit {
        case .week:
            guard let v = Int(items[1]), (1...7).contains(v) else {
                throw AccountingPeriodError("Weekly accounting must begin on a day between 1 (Monday) and 7 (Sunday)")
            }
            d = v
        case .month:
            guard let v = Int(items[1]), (1...28).contains(v) else {
                throw AccountingPeriodError("Monthly accounting must begin on a day between 1 and 28")
            }
            d = v
        case .day:
            d = 0
        }
        let idx = unit == .day ? 1 : 2
        guard items.count == idx + 1 else {
            throw AccountingPeriodError("Accounting unit '\(keyword)' requires \(idx) argument\(idx > 1 ? "s" : "").")
        }
        let hm = items[idx]
        let hourText = hm.prefix { $0.isASCII && $0.isNumber }
        guard let h = Int(hourText), (0...23).contains(h) else {
            throw AccountingPeriodError("Accounting start time not parseable: bad hour.")
        }
        let rest = hm.dropFirst(hourText.count)
        guard rest.first == ":" else {
            throw AccountingPeriodError("Accounting start time not parseable: not in HH:MM format")
        }
        let minuteText = rest.dropFirst().prefix { $0.isASCII && $0.isNumber }
        guard let m = Int(minuteText), (0...59).contains(m) else {
            throw AccountingPeriodError("Accounting start time not parseable: bad minute")
        }
        guard rest.dropFirst().count == minuteText.count else {
            throw AccountingPeriodError("Accounting start time not parseable: not in HH:MM format")
        }
        self.init(unchecked: unit, day: d, hour: h, minute: m)
    }

    /// How many whitespace-separated tokens a period starting with `keyword` has.
    static func tokenCount(keyword: String) -> Int? {
        switch keyword.lowercased() {
        case "day": return 2
        case "week", "month": return 3
        default: return nil
        }
    }

    public var description: String {
        let hm = String(format: "%02d:%02d", hour, minute)
        return unit == .day ? "day \(hm)" : "\(unit.rawValue) \(day) \(hm)"
    }

    // MARK: Interval edges, as Tor computes them

    /// The accounting interval Tor would be in at `now`: start =
    /// `edge_of_accounting_period_containing(now, 0)`, end = the same function
    /// applied to the start with `get_end` (Tor's `reset_accounting()`).
    ///
    /// Edges are local times resolved like glibc `mktime` with `tm_isdst = -1`
    /// (see `LocalTime.resolve`): DST days make daily intervals 23 or 25 h
    /// long. Reproduced quirk: when HH:MM falls in the skipped or repeated
    /// hour, the result can start after `now` or end before it, for at most
    /// that hour once a year; Tor behaves the same (docs/quotas.md).
    /// `interval(containing:in:)` is the period that does contain `now`.
    public func torInterval(containing now: Date, in zone: TimeZone) -> DateInterval {
        let start = edge(containing: now, getEnd: false, in: zone)
        // Tor computes the end right after the start, so glibc's cached offset
        // is the start's: that decides a repeated hour at the end edge.
        let end = edge(containing: start, getEnd: true, in: zone,
                       previousOffset: zone.secondsFromGMT(for: start))
        return DateInterval(start: start, end: max(start, end))
    }

    /// The period containing `now`, between two of Tor's edges: Tor's own
    /// interval (`torInterval`) when it contains `now`. When it does not (HH:MM
    /// in the skipped or repeated hour, for at most that hour once a year),
    /// the period before Tor's start reaches up to it, or the period that
    /// Tor's end cut short reaches on to the next start Tor computes. So in
    /// Berlin's October fall-back hour `day 02:30` runs from 02:30 CEST on
    /// the Saturday to the second 02:30 (CET) on the Sunday, 25 h, and every
    /// instant of that repeated hour lies in it.
    public func interval(containing now: Date, in zone: TimeZone) -> DateInterval {
        let tor = torInterval(containing: now, in: zone)
        if tor.start <= now && now < tor.end { return tor }
        // An edge moves by at most the DST shift (≤ 1 h, 2 h in Antarctica/Troll):
        // 3 h away lies inside the neighbouring period.
        if now < tor.start {
            let before = torInterval(containing: now.addingTimeInterval(-3 * 3600), in: zone)
            if before.start <= now { return DateInterval(start: before.start, end: tor.start) }
        } else {
            let after = torInterval(containing: now.addingTimeInterval(3 * 3600), in: zone)
            if now < after.start { return DateInterval(start: tor.start, end: after.start) }
            if after.start <= now && now < after.end { return after }
        }
        // Not reached for any zone in tzdata; still never a period without `now`.
        return DateInterval(start: min(tor.start, now), end: max(tor.end, now.addingTimeInterval(1)))
    }

    /// The interval after `interval` (Tor: the next `reset_accounting()`).
    public func interval(after interval: DateInterval, in zone: TimeZone) -> DateInterval {
        self.interval(containing: interval.end, in: zone)
    }

    /// Tor's `length_of_accounting_period_containing(t)` in seconds.
    public func lengthOfPeriod(containing t: Date, in zone: TimeZone) -> TimeInterval {
        torInterval(containing: t, in: zone).duration
    }

    /// `edge_of_accounting_period_containing(now, get_end)` from hibernate.c.
    /// `previousOffset` is the UTC offset glibc's `mktime` cached from its
    /// previous call (0 in a fresh process); it only matters for a repeated hour.
    public func edge(containing now: Date, getEnd: Bool, in zone: TimeZone, previousOffset: Int = 0) -> Date {
        let local = LocalTime(now, in: zone)
        let before = local.hour < hour || (local.hour == hour && local.minute < minute)
        var year = local.year, month = local.month, dayNumber = local.dayNumber
        switch unit {
        case .month:
            if local.day < day || (local.day == day && before) { month -= 1 }
            if getEnd { month += 1 }
            (year, month) = LocalTime.normalise(year: year, month: month)
            dayNumber = LocalTime.dayNumber(year: year, month: month, day: day)
        case .week:
            let target = day % 7 // Tor says Sunday = 7, struct tm says 0
            var delta = (7 + local.weekday - target) % 7
            if delta == 0 && before { delta = 7 }
            dayNumber -= delta
            if getEnd { dayNumber += 7 }
        case .day:
            if before { dayNumber -= 1 }
            if getEnd { dayNumber += 1 }
        }
        let wall = Int64(dayNumber) * 86_400 + Int64(hour * 3600 + minute * 60)
        return LocalTime.resolve(wallSeconds: wall, in: zone, previousOffset: Int64(previousOffset))
    }
}

/// An AccountingStart that Tor would reject; the text is Tor's log message.
public struct AccountingPeriodError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Broken-down local time (what `localtime_r` gives), computed from the zone's
/// UTC offset with proleptic Gregorian arithmetic so that month and day
/// arithmetic normalise exactly as `mktime` does.
struct LocalTime {
    var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
    /// Days since 1970-01-01 of the local date.
    var dayNumber: Int
    /// 0 = Sunday … 6 = Saturday, like `tm_wday`.
    var weekday: Int

    init(_ date: Date, in zone: TimeZone) {
        let t = Int64(date.timeIntervalSince1970.rounded(.down)) + Int64(zone.secondsFromGMT(for: date))
        let days = Int(t >= 0 ? t / 86_400 : (t - 86_399) / 86_400)
        let secs = Int(t - Int64(days) * 86_400)
        dayNumber = days
        (year, month, day) = LocalTime.civil(fromDayNumber: days)
        hour = secs / 3600; minute = secs % 3600 / 60; second = secs % 60
        weekday = ((days % 7) + 7 + 4) % 7 // 1970-01-01 was a Thursday
    }

    /// (year, month) with month possibly outside 1…12, normalised.
    static func normalise(year: Int, month: Int) -> (Int, Int) {
        let m0 = month - 1
        let carry = m0 >= 0 ? m0 / 12 : (m0 - 11) / 12
        return (year + carry, m0 - carry * 12 + 1)
    }

    /// Howard Hinnant's days_from_civil.
    static func dayNumber(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDayNumber z: Int) -> (Int, Int, Int) {
        let (y, m, d) = Format.civil(fromDayNumber: Int64(z))
        return (Int(y), Int(m), Int(d))
    }

    /// The instant of a local wall-clock time, as glibc's `mktime` with
    /// `tm_isdst = -1` finds it: start from the wall time minus the offset
    /// cached by the previous `mktime` call and iterate `t = wall - offset(t)`
    /// until the offset agrees.
    /// - Repeated hour (DST ends): the occurrence reached from that guess. In a
    ///   fresh process (guess 0) that is the later one east of Greenwich and the
    ///   earlier one west of it. A long-running Tor's cache may differ, so on
    ///   that one hour a year Tor may pick the other occurrence (docs/quotas.md).
    /// - Skipped hour (DST starts): no instant has that wall time; glibc uses
    ///   the offset in force before the jump, i.e. 02:30 becomes 03:30.
    /// Both verified against glibc 2.36 running Tor's edge code (tests).
    static func resolve(wallSeconds wall: Int64, in zone: TimeZone, previousOffset: Int64 = 0) -> Date {
        func offset(_ t: Int64) -> Int64 { Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(t)))) }
        var t = wall - previousOffset
        for _ in 0..<4 {
            let o = offset(t)
            let candidate = wall - o
            if offset(candidate) == o { return Date(timeIntervalSince1970: TimeInterval(candidate)) }
            t = candidate
        }
        // In a gap: the offset before the transition.
        let before = offset(wall - 36 * 3600)
        return Date(timeIntervalSince1970: TimeInterval(wall - before))
    }
}
