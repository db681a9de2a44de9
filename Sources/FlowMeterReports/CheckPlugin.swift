import FlowMeterFormat
import FlowMeterCore
import FlowMeterConfig
import FlowMeterAccounting
import Foundation

/// `flowmeter check` as a monitoring plugin (Monitoring Plugins development
/// guidelines): one status line `FLOWMETER STATE - text | perfdata` and the
/// exit code 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Pure: every input,
/// "now" included, is given, so each branch is testable without a store.
public enum CheckPlugin {
    public enum Status: Int32, Sendable, Comparable {
        case ok = 0, warning = 1, critical = 2, unknown = 3
        public var word: String { ["OK", "WARNING", "CRITICAL", "UNKNOWN"][Int(rawValue)] }
        public static func < (a: Status, b: Status) -> Bool { a.rawValue < b.rawValue }
    }

    public struct Result: Sendable, Equatable {
        public var status: Status
        /// The whole line, perfdata included, without a newline.
        public var line: String
    }

    /// A guideline threshold range `[@][start:][end]` whose ends are a percent
    /// of the limit (`80`, `80%`) or a byte quantity (`1.5TiB`); `~` is minus
    /// infinity. `80` alerts above 80 % (outside 0…80), `@a:b` inside a…b.
    public struct Threshold: Sendable, Equatable {
        public enum Bound: Sendable, Equatable {
            case percent(Double), bytes(UInt64), infinite
            func resolve(limit: UInt64, infinity: Double) -> Double {
                switch self {
                case .percent(let p): return p / 100 * Double(limit)
                case .bytes(let b): return Double(b)
                case .infinite: return infinity
                }
            }
        }
        public var start: Bound
        public var end: Bound
        public var inside: Bool
        public let text: String

        public init(parsing text: String) throws(CheckError) {
            self.text = text
            var t = Substring(text.trimmingCharacters(in: .whitespaces))
            inside = t.hasPrefix("@")
            if inside { t = t.dropFirst() }
            let parts = t.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            func bound(_ s: Substring, empty: Bound) throws(CheckError) -> Bound {
                if s.isEmpty { return empty }
                if s == "~" { return .infinite }
                let plain = s.hasSuffix("%") ? s.dropLast() : s
                if let v = Double(plain), v.isFinite {
                    guard abs(v) <= Self.largestPercent else {
                        throw CheckError("threshold '\(text)': \(s) is beyond ±\(Int(Self.largestPercent)) % of the limit")
                    }
                    return .percent(v)
                }
                do { return .bytes(try ByteQuantity.parseLimit(String(s)).bytes) } catch {
                    throw CheckError("threshold '\(text)': '\(s)' is neither a percent of the limit (80, 80%) nor a byte quantity (1.5TiB)")
                }
            }
            if parts.count == 1 {
                start = .percent(0)
                end = try bound(parts[0], empty: .infinite)
                if parts[0].isEmpty { throw CheckError("threshold '\(text)' is empty") }
            } else {
                start = try bound(parts[0], empty: .percent(0))
                end = try bound(parts[1], empty: .infinite)
            }
            if case .infinite = end {} else if Self.order(start) > Self.order(end) && Self.sameKind(start, end) {
                throw CheckError("threshold '\(text)': start is above end")
            }
        }

        /// A percent beyond this many times the limit is a typo, not a threshold.
        static let largestPercent = 1_000_000.0

        private static func order(_ b: Bound) -> Double {
            switch b { case .percent(let p): return p; case .bytes(let v): return Double(v); case .infinite: return -.infinity }
        }
        private static func sameKind(_ a: Bound, _ b: Bound) -> Bool {
            switch (a, b) { case (.percent, .percent), (.bytes, .bytes): return true; default: return false }
        }

        /// Whether `used` bytes of a quota with `limit` raise this alert.
        public func alerts(used: UInt64, limit: UInt64) -> Bool {
            let lo = start.resolve(limit: limit, infinity: -.infinity), hi = end.resolve(limit: limit, infinity: .infinity)
            let within = Double(used) >= lo && Double(used) <= hi
            return inside ? within : !within
        }

        /// The same range in bytes of `limit`, for perfdata (same UOM as the value).
        public func perfdata(limit: UInt64) -> String {
            func render(_ b: Bound, isStart: Bool) -> String {
                if case .infinite = b { return isStart ? "~" : "" }
                return String(CheckPlugin.clampedUInt64(b.resolve(limit: limit, infinity: 0)))
            }
            let lo: String
            if case .percent(let p) = start, p == 0 { lo = "" } else { lo = render(start, isStart: true) }
            let hi = render(end, isStart: false)
            return (inside ? "@" : "") + (lo.isEmpty ? hi : "\(lo):\(hi)")
        }
    }

    public struct CheckError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// One quota as evaluated from the store.
    public struct QuotaInput: Sendable {
        public var name: String
        public var used: UInt64
        public var limit: UInt64
        public var periodEnd: Date
        /// When the limit is (or was) reached this period, if projected.
        public var exhaustion: Date?
        /// The relay its scope names, if any (`tor:R`, `…@R`).
        public var relay: String?
        /// What the projection stands on ("from 9 minutes of this host's
        /// data") and, for a Tor quota, where its interval came from.
        public var basis: String?
        public init(name: String, used: UInt64, limit: UInt64, periodEnd: Date, exhaustion: Date?, relay: String?,
                    basis: String? = nil) {
            self.name = name; self.used = used; self.limit = limit
            self.periodEnd = periodEnd; self.exhaustion = exhaustion; self.relay = relay; self.basis = basis
        }
        public init(_ s: QuotaStatus) {
            let basis = [s.forecast.projection == nil ? nil : s.forecast.historyDescription,
                         s.intervalSource.map { "interval from \($0.phrase)" }].compactMap { $0 }
            self.init(name: s.quota.name, used: s.forecast.usage.used, limit: s.quota.limit,
                      periodEnd: s.forecast.usage.interval.end, exhaustion: s.forecast.projection?.exhaustion,
                      relay: s.quota.scope.relay, basis: basis.isEmpty ? nil : basis.joined(separator: ", "))
        }
    }

    public struct Options: Sendable {
        public var warning: Threshold
        public var critical: Threshold
        public var warningHours: Double?
        public var criticalHours: Double?
        /// Newest data older than this is CRITICAL; nil disables the check.
        public var maxAge: TimeInterval?
        public init(warning: Threshold, critical: Threshold, warningHours: Double? = nil, criticalHours: Double? = nil,
                    maxAge: TimeInterval?) {
            self.warning = warning; self.critical = critical
            self.warningHours = warningHours; self.criticalHours = criticalHours; self.maxAge = maxAge
        }

        /// The command line's values, every one checked against its range
        /// before anything runs: thresholds, hours 0…876,600 (100 years),
        /// `--max-age` as `parseDuration` takes it (nil: `defaultMaxAge`; 0 turns it off).
        public init(warning: String, critical: String, warningHours: Double?, criticalHours: Double?,
                    maxAge: String?, defaultMaxAge: TimeInterval) throws(CheckError) {
            let longest = CheckPlugin.longestDuration / 3600
            for (name, v) in [("--warning-hours", warningHours), ("--critical-hours", criticalHours)] {
                if let v, !(v >= 0 && v <= longest) {
                    throw CheckError("\(name) must be a number of hours from 0 to \(Int(longest)) (100 years)")
                }
            }
            let age: TimeInterval
            do { age = try maxAge.map(CheckPlugin.parseDuration) ?? defaultMaxAge } catch {
                throw CheckError("--max-age: \(error)")
            }
            self.init(warning: try Threshold(parsing: warning), critical: try Threshold(parsing: critical),
                      warningHours: warningHours, criticalHours: criticalHours, maxAge: age > 0 ? age : nil)
        }
    }

    /// The longest duration an option takes: 100 years, far below where a
    /// count of seconds stops fitting an Int.
    public static let longestDuration: TimeInterval = DurationText.longest

    /// `v` rounded into 0…UInt64.max, NaN as 0: figures from outside must not trap.
    static func clampedUInt64(_ v: Double) -> UInt64 {
        let r = v.rounded()
        guard r > 0 else { return 0 }
        return r < 18_446_744_073_709_549_568.0 ? UInt64(r) : .max
    }

    /// `v` rounded into Int's range, NaN as 0.
    static func clampedInt(_ v: Double) -> Int {
        let r = v.rounded()
        guard r.isFinite else { return r.isNaN ? 0 : (r > 0 ? .max : .min) }
        return r >= 9.2e18 ? .max : r <= -9.2e18 ? .min : Int(r)
    }

    /// UNKNOWN with `message`: usage, configuration and store errors, timeouts.
    public static func unknown(_ message: String) -> Result {
        Result(status: .unknown, line: "FLOWMETER UNKNOWN - \(oneLine(message))")
    }

    /// The verdict over every quota: the worst decides; limit 0 or an unknown
    /// relay is a configuration error (UNKNOWN), stale data is CRITICAL.
    /// - Parameters:
    ///   - now: the wall clock (staleness is measured against it).
    ///   - newestData: the last instant the agent observed, if the store says.
    ///   - knownRelays: relay labels the store or configuration knows.
    public static func evaluate(_ quotas: [QuotaInput], options o: Options, now: Date, newestData: Date?,
                                knownRelays: [String]) -> Result {
        guard !quotas.isEmpty else { return unknown("no quota: give --quota, a config file with quotas:, or a --torrc with AccountingMax") }
        for q in quotas where q.limit == 0 {
            return unknown("quota \(q.name) has limit 0: a configuration error")
        }
        for q in quotas {
            if let r = q.relay, !knownRelays.contains(r) {
                return unknown("quota \(q.name) names relay '\(r)', which is not known; known relays: \(knownRelays.isEmpty ? "none" : knownRelays.joined(separator: ", "))")
            }
        }
        var worst = Status.ok
        var texts: [String] = []
        var perf: [String] = []
        if let maxAge = o.maxAge {
            let age = newestData.map { now.timeIntervalSince($0) } ?? .infinity
            if age > maxAge {
                worst = .critical
                texts.append(newestData.map { "no data since \(iso($0)) (\(duration(age)) ago, more than \(duration(maxAge)))" }
                             ?? "no data in the store")
            }
            if age.isFinite { perf.append("'data_age'=\(clampedInt(age))s;;\(clampedInt(maxAge));0;") }
        }
        for q in quotas {
            let (level, text) = verdict(q, o, now: now)
            worst = max(worst, level)
            texts.append(text)
            perf.append(perfdata(q, o, now: now))
        }
        return Result(status: worst, line: "FLOWMETER \(worst.word) - \(texts.joined(separator: "; ")) | \(perf.joined(separator: " "))")
    }

    private static func verdict(_ q: QuotaInput, _ o: Options, now: Date) -> (Status, String) {
        let percent = Double(q.used) / Double(q.limit) * 100
        let amounts = "\(Format.bytes(q.used)) of \(Format.bytes(q.limit)), period ends \(iso(q.periodEnd))"
            + (q.basis.map { "; \($0)" } ?? "")
        if q.used > q.limit {
            let at = q.exhaustion.map { " at \(iso($0))" } ?? ""
            return (.critical, "\(q.name) exhausted\(at), \(String(format: "%.1f", percent - 100)) % over (\(amounts))")
        }
        var level: Status = o.critical.alerts(used: q.used, limit: q.limit) ? .critical
            : o.warning.alerts(used: q.used, limit: q.limit) ? .warning : .ok
        var text = "\(q.name) \(String(format: "%.1f", percent)) % used"
        if let exhaustion = q.exhaustion, exhaustion < q.periodEnd {
            let hours = max(0, exhaustion.timeIntervalSince(now) / 3600)
            text += ", projected exhausted in \(String(format: "%.1f", hours)) h (\(iso(exhaustion)))"
            if let c = o.criticalHours, hours < c { level = max(level, .critical) }
            if let w = o.warningHours, hours < w { level = max(level, .warning) }
        }
        return (level, "\(text) (\(amounts))")
    }

    /// `'NAME'=USEDB;WARN;CRIT;0;LIMIT` and, with a projection, the seconds
    /// to exhaustion with `N:` thresholds (alert below N).
    private static func perfdata(_ q: QuotaInput, _ o: Options, now: Date) -> String {
        var out = "\(label(q.name))=\(q.used)B;\(o.warning.perfdata(limit: q.limit));\(o.critical.perfdata(limit: q.limit));0;\(q.limit)"
        if let exhaustion = q.exhaustion, exhaustion < q.periodEnd {
            let seconds = max(0, clampedInt(exhaustion.timeIntervalSince(now)))
            let w = o.warningHours.map { "\(clampedInt($0 * 3600)):" } ?? ""
            let c = o.criticalHours.map { "\(clampedInt($0 * 3600)):" } ?? ""
            out += " \(label(q.name + " exhaustion"))=\(seconds)s;\(w);\(c);0;"
        }
        return out
    }

    /// A quoted perfdata label: a single quote is doubled, `=` cannot appear.
    static func label(_ name: String) -> String {
        "'" + name.replacingOccurrences(of: "'", with: "''").replacingOccurrences(of: "=", with: "_") + "'"
    }

    static func oneLine(_ s: String) -> String {
        // The status line is one line and has no perfdata: no newline, no `|`.
        s.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            .replacingOccurrences(of: "|", with: "/")
    }

    static func iso(_ d: Date) -> String { Format.iso8601(d) }

    static func duration(_ s: TimeInterval) -> String {
        if s >= 86_400 * 2 { return "\(clampedInt((s / 86_400).rounded(.down))) d" }
        if s >= 7200 { return "\(Int(s / 3600)) h" }
        if s >= 120 { return "\(Int(s / 60)) min" }
        return "\(clampedInt(s.rounded(.towardZero))) s"
    }

    /// `--max-age`: a duration (`DurationText`); 0 disables.
    public static func parseDuration(_ text: String) throws(CheckError) -> TimeInterval {
        do { return try DurationText.parse(text) } catch { throw CheckError(error.description) }
    }
}
