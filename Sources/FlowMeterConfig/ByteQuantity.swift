import FlowMeterCore
import FlowMeterFormat
import Foundation

/// A number of bytes written with a unit, as a quota limit or a torrc MEMUNIT.
///
/// Two grammars, because the same letters mean different things to Tor and to
/// a hosting provider (docs/quotas.md, "Units"):
/// - `parseTor` is Tor's own `config_parse_units` with `memory_units[]`: every
///   unit is a power of two and "GB" means 2^30 (docs/tor-facts.md §1.1).
/// - `parseLimit` (quota limits from `--quota` and the config file) accepts only
///   spellings that cannot be misread: IEC binary (`GiB`), Tor's long words
///   (`GBytes`, `gigabytes`, `GBits`, which exist only in Tor's vocabulary) and
///   explicit SI (`GB-SI` = 10^9). The bare symbols `KB MB GB TB` (and Tor's `m`)
///   are refused with an error naming both readings.
public struct ByteQuantity: Sendable, Hashable, CustomStringConvertible {
    public var bytes: UInt64
    public init(bytes: UInt64) { self.bytes = bytes }

    /// Tor's `memory_units[]` (src/lib/confmgt/unitparse.c), lower case; Tor
    /// compares with strcasecmp.
    static let torUnits: [String: UInt64] = [
        "": 1, "b": 1, "byte": 1, "bytes": 1,
        "kb": 1 << 10, "kbyte": 1 << 10, "kbytes": 1 << 10, "kilobyte": 1 << 10, "kilobytes": 1 << 10,
        "kilobits": 1 << 7, "kilobit": 1 << 7, "kbits": 1 << 7, "kbit": 1 << 7,
        "m": 1 << 20, "mb": 1 << 20, "mbyte": 1 << 20, "mbytes": 1 << 20, "megabyte": 1 << 20, "megabytes": 1 << 20,
        "megabits": 1 << 17, "megabit": 1 << 17, "mbits": 1 << 17, "mbit": 1 << 17,
        "gb": 1 << 30, "gbyte": 1 << 30, "gbytes": 1 << 30, "gigabyte": 1 << 30, "gigabytes": 1 << 30,
        "gigabits": 1 << 27, "gigabit": 1 << 27, "gbits": 1 << 27, "gbit": 1 << 27,
        "tb": 1 << 40, "tbyte": 1 << 40, "tbytes": 1 << 40, "terabyte": 1 << 40, "terabytes": 1 << 40,
        "terabits": 1 << 37, "terabit": 1 << 37, "tbits": 1 << 37, "tbit": 1 << 37,
    ]

    /// Symbols that Tor reads as powers of two but a provider's contract usually
    /// means as powers of ten.
    static let ambiguousSymbols: Set<String> = ["kb", "mb", "gb", "tb", "m"]

    static let iecUnits: [String: UInt64] = [
        "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
    ]

    static let siUnits: [String: UInt64] = [
        "kb-si": 1_000, "mb-si": 1_000_000, "gb-si": 1_000_000_000,
        "tb-si": 1_000_000_000_000, "pb-si": 1_000_000_000_000_000,
    ]

    /// Parses a torrc memory value exactly as Tor does: an integer or decimal
    /// number, optional blanks, then a unit from `memory_units[]`, any case.
    public static func parseTor(_ text: String) throws -> ByteQuantity {
        let (number, unit) = try split(text)
        guard let multiplier = torUnits[unit.lowercased()] else {
            throw ByteQuantityError("Unknown unit '\(unit)' in '\(text)'; Tor knows bytes, KBytes, MBytes, GBytes, TBytes and KBits…TBits")
        }
        return try ByteQuantity(number: number, multiplier: multiplier, text: text)
    }

    /// Parses a quota limit: IEC (`10 TiB`), Tor's long words (`10 TBytes`),
    /// explicit SI (`10 TB-SI`) or plain bytes. Never guesses between 2^n and 10^n.
    public static func parseLimit(_ text: String) throws -> ByteQuantity {
        let (number, unit) = try split(text)
        let key = unit.lowercased()
        if ambiguousSymbols.contains(key) {
            throw ByteQuantityError("'\(text)' is ambiguous: Tor reads \(unit) as a power of two, providers usually as a power of ten; write \(number) \(unit.uppercased().prefix(1))iB (or \(unit.uppercased().prefix(1))Bytes, as Tor) for 2^n, or \(number) \(unit.uppercased())-SI for 10^n")
        }
        if let m = iecUnits[key] ?? siUnits[key] ?? torUnits[key] {
            return try ByteQuantity(number: number, multiplier: m, text: text)
        }
        throw ByteQuantityError("Unknown unit '\(unit)' in '\(text)'; use B, KiB…PiB, kB-SI…PB-SI, or Tor's KBytes…TBytes / KBits…TBits")
    }

    /// Whether a limit `parseLimit` accepts is written in SI units (`1TB-SI`):
    /// such a quota is shown in SI units, as its contract reads.
    public static func isSI(_ text: String) -> Bool {
        guard let (_, unit) = try? split(text) else { return false }
        return siUnits[unit.lowercased()] != nil
    }

    private init(number: String, multiplier: UInt64, text: String) throws {
        if let whole = UInt64(number) {
            let (v, overflow) = whole.multipliedReportingOverflow(by: multiplier)
            guard !overflow else { throw ByteQuantityError("'\(text)' does not fit in 64 bits") }
            bytes = v
        } else if let d = Double(number), d.isFinite, d >= 0 {
            // Tor multiplies as a double and truncates (config_parse_units).
            let v = d * Double(multiplier)
            guard v < 18_446_744_073_709_551_615.0 else { throw ByteQuantityError("'\(text)' does not fit in 64 bits") }
            bytes = UInt64(v)
        } else {
            throw ByteQuantityError("'\(text)' is not a number of bytes")
        }
    }

    /// Splits "10.5 GBytes" / "10GiB" into the number and the unit text.
    private static func split(_ text: String) throws -> (String, String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        let digits = t.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        guard !digits.isEmpty else { throw ByteQuantityError("'\(text)' does not start with a number") }
        let unit = t.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        return (String(digits), unit)
    }

    /// Binary rendering (`Format.bytes`) with the exact count, e.g. "1.00 GiB (1073741824 B)".
    public var description: String { "\(Format.bytes(bytes)) (\(bytes) B)" }
}

/// A byte quantity that could not be parsed; the message says what to write instead.
public struct ByteQuantityError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
