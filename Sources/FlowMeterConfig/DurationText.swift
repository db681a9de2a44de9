import Foundation

/// The one grammar for a length of time a person writes — `--max-age`,
/// `--ages`, `fleet --step`, `store.bucket`, `store.retention`: a number of
/// seconds, or a number followed by `s`, `m` or `min`, `h`, or `d`, any case,
/// blanks around it allowed (`120`, `90s`, `5m`, `2h`, `1.5d`). Tor's own
/// interval units in a torrc are Tor's grammar, not this one.
public enum DurationText {
    /// Longer than anything an operator means (100 years): refused, so no
    /// later arithmetic on instants can overflow.
    public static let longest: Double = 100 * 365.25 * 86_400

    static let units: [(suffix: String, seconds: Double)] = [("min", 60), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]

    /// Seconds, or nil when `text` is not a duration in this grammar, is
    /// negative, or is longer than `longest`.
    public static func seconds(_ text: String) -> Double? { try? parse(text) }

    /// Seconds, or an error that says what was wrong and what to write.
    public static func parse(_ text: String) throws(DurationTextError) -> Double {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        var value: Double? = Double(t)
        for unit in units where value == nil && t.hasSuffix(unit.suffix) {
            value = Double(t.dropLast(unit.suffix.count).trimmingCharacters(in: .whitespaces)).map { $0 * unit.seconds }
        }
        guard let value, value.isFinite, value >= 0 else {
            throw DurationTextError("'\(text)' is not a duration (e.g. \(examples))")
        }
        guard value <= longest else { throw DurationTextError("'\(text)' is longer than 100 years") }
        return value
    }

    /// Whole seconds, for settings kept as integers; nil for a fraction of a second.
    public static func wholeSeconds(_ text: String) -> Int? {
        guard let s = seconds(text), s == s.rounded() else { return nil }
        return Int(s)
    }

    /// What a person is told to write.
    public static let examples = "120, 120s, 5m, 2h, 1d"
}

/// A duration `DurationText` cannot read; the message names the text.
public struct DurationTextError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
