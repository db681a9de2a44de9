import Foundation

/// The one place FlowMeter turns instants and byte counts into text: every
/// report, document, log line and metric help text goes through these.
public enum Format {
    /// ISO-8601 UTC with whole seconds and a `Z`: `2026-11-27T12:00:00Z`.
    /// Fractions are cut (floor), so an instant and its second agree. Works
    /// for any instant a pcap can hold (1901–2106) without a formatter.
    public static func iso8601(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        return iso8601(seconds: t.isFinite ? Int64(max(-9e15, min(9e15, t.rounded(.down)))) : 0)
    }

    /// `iso8601(_:)` of a count of nanoseconds since 1970 (floored to the second).
    public static func iso8601(nanos: Int64) -> String {
        iso8601(seconds: nanos / 1_000_000_000 - (nanos % 1_000_000_000 < 0 ? 1 : 0))
    }

    /// `iso8601(_:)` of whole seconds since 1970.
    public static func iso8601(seconds t: Int64) -> String {
        let days = t >= 0 ? t / 86_400 : (t - 86_399) / 86_400
        let s = t - days * 86_400
        let (y, m, d) = civil(fromDayNumber: days)
        return String(format: "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ", y, m, d, s / 3600, s % 3600 / 60, s % 60)
    }

    /// ISO-8601 UTC with milliseconds: `2026-11-27T12:00:00.250Z`, for the
    /// agent's own clock readings where sub-second order matters.
    public static func iso8601Milliseconds(seconds: Double) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date(timeIntervalSince1970: seconds))
    }

    /// Parses what `iso8601(_:)` writes, and the same with fractional seconds
    /// or an offset (`+01:00`); nil for anything else.
    public static func parseISO8601(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text)
    }

    /// Binary units, as Tor uses for AccountingMax (`1.50 GiB`, `512 B`), or
    /// SI units for a quota written in them (`1.00 TB`): docs/quotas.md, "Units".
    public static func bytes(_ v: UInt64, units: ByteUnits = .binary) -> String {
        var value = Double(v)
        var i = 0
        while value >= units.base && i < units.symbols.count - 1 { value /= units.base; i += 1 }
        return i == 0 ? "\(v) B" : String(format: "%.2f %@", value, units.symbols[i])
    }

    /// A byte count that may be fractional or projected (clamped to
    /// 0…2^63), in `units`; with `perSecond` a rate (`1.20 MiB/s`).
    public static func bytes(_ v: Double, units: ByteUnits = .binary, perSecond: Bool = false) -> String {
        bytes(exactBytes(v), units: units) + (perSecond ? "/s" : "")
    }

    /// The whole number of bytes a program reads for a fractional or
    /// projected count: rounded, 0 for a negative or non-finite value,
    /// capped at 2^63 so every JSON reader holds it.
    public static func exactBytes(_ v: Double) -> UInt64 {
        guard v.isFinite, v > 0 else { return 0 }
        return v >= 9.223372036854775807e18 ? UInt64(Int64.max) : UInt64(v.rounded())
    }

    /// A span a person reads: "45 s", "9 minutes", "2.5 hours", "6.0 days".
    public static func duration(_ seconds: Double) -> String {
        let s = max(0, seconds)
        if s < 90 { return "\(Int(s.rounded())) s" }
        if s < 5400 { let m = Int((s / 60).rounded()); return m == 1 ? "1 minute" : "\(m) minutes" }
        if s < 2 * 86_400 { return String(format: "%.1f hours", s / 3600) }
        return String(format: "%.1f days", s / 86_400)
    }

    /// Digits in groups of three: `1,234,567`.
    public static func grouped(_ v: UInt64) -> String {
        var out = ""
        for (i, ch) in String(v).reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return String(out.reversed())
    }

    /// `text` safe to put on a terminal or in a log line: every control
    /// character (C0 with ESC, BEL, tab and newline; DEL; C1), every format
    /// character (bidirectional overrides, zero-width marks) and line and
    /// paragraph separators are dropped; printable UTF-8 stays. With `limit`,
    /// at most that many characters are kept, the last one then `…`.
    /// Text from outside FlowMeter (an agent's answer, a control port's) goes
    /// through this before it is shown: an `ESC]52;…` must not write a
    /// clipboard, nor an `ESC[2J` clear a screen.
    public static func printable(_ text: String, limit: Int? = nil) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars where isPrintable(scalar) { out.append(scalar) }
        let clean = String(out)
        guard let limit, clean.count > limit else { return clean }
        return String(clean.prefix(max(0, limit - 1))) + "…"
    }

    /// Whether `printable(text)` keeps `text` as it is; without a copy, and
    /// in one pass over the bytes when they are ASCII (the store's readers
    /// check every text value they read with it).
    public static func isPrintable(_ text: String) -> Bool {
        var ascii = true
        for b in text.utf8 {
            if b >= 0x80 { ascii = false; break }
            if b < 0x20 || b == 0x7F { return false }
        }
        return ascii || text.unicodeScalars.allSatisfy(isPrintable)
    }

    /// The rule of `printable`: no control character (C0, DEL, C1), format
    /// character, line or paragraph separator.
    static func isPrintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate: return false
        default: return true
        }
    }

    /// Year, month, day of a day number (days since 1970-01-01), proleptic
    /// Gregorian (Howard Hinnant's `civil_from_days`).
    public static func civil(fromDayNumber z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

/// The one choice of byte units (docs/quotas.md, "Units"): IEC binary
/// everywhere, as Tor counts AccountingMax; SI only for a quota whose limit
/// was written in SI (`1TB-SI`), so a provider's 1 TB reads 1 TB, not 931 GiB.
public enum ByteUnits: String, Sendable, Codable, CaseIterable {
    case binary, si

    /// 1024 or 1000.
    public var base: Double { self == .binary ? 1024 : 1000 }
    /// The symbols from bytes up, one per power of `base`.
    public var symbols: [String] {
        self == .binary ? ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"] : ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    }
}

extension Format {
    /// One fixed-width cell of a terminal line: made printable and cut to
    /// `width` (a cut ends in `…`), then padded, numbers on the right.
    public static func cell(_ text: String, _ width: Int, right: Bool = false) -> String {
        let t = printable(text, limit: width)
        let space = String(repeating: " ", count: max(0, width - t.count))
        return right ? space + t : t + space
    }
}

/// A plain-text table: a header, a rule, rows; columns padded to their widest
/// cell, those from `rightAlignedFrom` on right-aligned (numbers). Rows given
/// in `footer` follow a second rule.
public struct TextTable {
    public var header: [String]
    public var rows: [[String]]
    public var footer: [[String]] = []
    public var rightAlignedFrom: Int
    /// Whether trailing spaces are cut from each line (a last column left-aligned).
    public var trimsTrailingSpaces = false

    public init(header: [String], rows: [[String]], footer: [[String]] = [], rightAlignedFrom: Int,
                trimsTrailingSpaces: Bool = false) {
        self.header = header; self.rows = rows; self.footer = footer
        self.rightAlignedFrom = rightAlignedFrom; self.trimsTrailingSpaces = trimsTrailingSpaces
    }

    /// Columns are padded to at most this many characters: a longer cell
    /// (a 50 KB relay name) overflows its own line instead of widening every
    /// line of the table, which made the output rows × the longest cell.
    public static let maxColumnWidth = 64

    public func render() -> String {
        let all = [header] + rows + footer
        let lengths = all.map { $0.map(\.count) }
        var widths = [Int](repeating: 0, count: all.map(\.count).max() ?? 0)
        for l in lengths { for (i, c) in l.enumerated() { widths[i] = max(widths[i], min(c, Self.maxColumnWidth)) } }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        func line(_ k: Int) -> String {
            var text = all[k].enumerated().map { i, c in
                let pad = String(repeating: " ", count: max(0, widths[i] - lengths[k][i]))
                return i >= rightAlignedFrom ? pad + c : c + pad
            }.joined(separator: "  ")
            if trimsTrailingSpaces { while text.utf8.last == UInt8(ascii: " ") { text.removeLast() } }
            return text + "\n"
        }
        var out = line(0) + rule
        for k in 1..<(rows.count + 1) { out += line(k) }
        if !footer.isEmpty {
            out += rule
            for k in (rows.count + 1)..<all.count { out += line(k) }
        }
        return out
    }
}

/// The one JSON style of every FlowMeter document: snake_case keys, sorted,
/// pretty-printed, slashes unescaped, instants as ISO-8601 strings.
public enum JSONStyle {
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.keyEncodingStrategy = .convertToSnakeCase
        e.dateEncodingStrategy = .iso8601
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        d.dateDecodingStrategy = .iso8601
        return d
    }

    /// `value` as a document (a trailing newline is the caller's choice).
    public static func string<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder().encode(value), as: UTF8.self)
    }
}
