import FlowMeterConfig
import Foundation

// What tor writes and FlowMeter reads back: the `state` file's Accounting*
// keys, the DataDirectory `fingerprint` file, and tor's time and interval text.
// The schedule arithmetic that uses them is in TorSchedule.swift.

/// The Accounting* keys of a tor `state` file (docs/tor-facts.md §2.8). Byte
/// counts there are rounded up to 1 KiB by Tor.
public struct TorAccountingState: Sendable, Equatable {
    public var intervalStart: Date?
    public var bytesRead: UInt64 = 0
    public var bytesWritten: UInt64 = 0
    public var secondsActive: UInt64 = 0
    public var secondsToReachSoftLimit: UInt64 = 0
    public var softLimitHitAt: Date?
    public var bytesAtSoftLimit: UInt64 = 0
    /// E stored for the interval in progress (bytes per minute); nil when absent.
    public var expectedUsage: UInt64?
    /// When tor wrote the file (its `LastWritten` line), if it says.
    public var lastWritten: Date?

    public init(intervalStart: Date? = nil, bytesRead: UInt64 = 0, bytesWritten: UInt64 = 0, secondsActive: UInt64 = 0,
                secondsToReachSoftLimit: UInt64 = 0, softLimitHitAt: Date? = nil, bytesAtSoftLimit: UInt64 = 0,
                expectedUsage: UInt64? = nil) {
        self.intervalStart = intervalStart; self.bytesRead = bytesRead; self.bytesWritten = bytesWritten
        self.secondsActive = secondsActive; self.secondsToReachSoftLimit = secondsToReachSoftLimit
        self.softLimitHitAt = softLimitHitAt; self.bytesAtSoftLimit = bytesAtSoftLimit; self.expectedUsage = expectedUsage
    }

    /// Parses a state file's text; other keys are ignored, a malformed
    /// Accounting* value throws naming the line. Lines may end in LF or CRLF.
    /// One pass over the bytes: a 50 MB line costs what reading it costs, and
    /// no value longer than tor ever writes is parsed (or echoed).
    public init(stateFile text: String) throws {
        self.init()
        var n = 0
        for raw in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            n += 1
            let line = Self.trimmed(raw)
            if line.starts(with: "LastWritten ".utf8), line.count <= Self.longestValue {
                lastWritten = TorTime.parse(String(decoding: Self.trimmed(line.dropFirst("LastWritten ".utf8.count)), as: UTF8.self))
                continue
            }
            guard line.starts(with: "Accounting".utf8), let sp = line.firstIndex(where: Self.isBlank),
                  line.distance(from: line.startIndex, to: sp) <= Self.longestValue else { continue }
            let key = String(decoding: line[..<sp], as: UTF8.self)
            guard Self.keys.contains(key) else { continue }
            let valueBytes = Self.trimmed(line[sp...])
            guard valueBytes.count <= Self.longestValue else {
                throw TorStateError("state line \(n): \(key) holds a \(valueBytes.count)-byte value; tor never writes one that long")
            }
            try set(key, String(decoding: valueBytes, as: UTF8.self), line: n)
        }
    }

    /// The keys read; every other line is skipped unparsed.
    static let keys: Set<String> = ["AccountingIntervalStart", "AccountingSoftLimitHitAt", "AccountingBytesReadInInterval",
                                    "AccountingBytesWrittenInInterval", "AccountingBytesAtSoftLimit", "AccountingExpectedUsage",
                                    "AccountingSecondsActive", "AccountingSecondsToReachSoftLimit"]
    /// Longer than any value tor writes ("18446744073709551615", "2026-11-01 00:00:00", "10 hours").
    static let longestValue = 64

    static func isBlank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D }

    static func trimmed(_ s: Substring.UTF8View) -> Substring.UTF8View {
        var s = s
        while let f = s.first, isBlank(f) { s.removeFirst() }
        while let l = s.last, isBlank(l) { s.removeLast() }
        return s
    }

    private mutating func set(_ key: String, _ value: String, line n: Int) throws {
        func fail() -> TorStateError { TorStateError("state line \(n): cannot read \(key) '\(value)'") }
        switch key {
        case "AccountingIntervalStart": guard let d = TorTime.parse(value) else { throw fail() }; intervalStart = d
        case "AccountingSoftLimitHitAt": guard let d = TorTime.parse(value) else { throw fail() }; softLimitHitAt = d
        case "AccountingBytesReadInInterval": bytesRead = try memunit(value, fail)
        case "AccountingBytesWrittenInInterval": bytesWritten = try memunit(value, fail)
        case "AccountingBytesAtSoftLimit": bytesAtSoftLimit = try memunit(value, fail)
        case "AccountingExpectedUsage": expectedUsage = try memunit(value, fail)
        case "AccountingSecondsActive": guard let s = TorTime.parseInterval(value) else { throw fail() }; secondsActive = s
        case "AccountingSecondsToReachSoftLimit": guard let s = TorTime.parseInterval(value) else { throw fail() }; secondsToReachSoftLimit = s
        default: return
        }
    }

    private func memunit(_ v: String, _ fail: () -> TorStateError) throws -> UInt64 {
        do { return try ByteQuantity.parseTor(v).bytes } catch { throw fail() }
    }
}

public struct TorStateError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A relay's identity: the 20 bytes behind its hex fingerprint.
public struct TorFingerprint: Sendable, Equatable, CustomStringConvertible {
    public var nickname: String?
    public var bytes: [UInt8]

    public init(hex: String, nickname: String? = nil) throws {
        let h = hex.replacingOccurrences(of: " ", with: "")
        guard h.count == 40, h.allSatisfy(\.isHexDigit) else {
            throw TorStateError("a fingerprint is 40 hex digits, not '\(hex)'")
        }
        var out: [UInt8] = []
        var i = h.startIndex
        while i < h.endIndex {
            let j = h.index(i, offsetBy: 2)
            out.append(UInt8(h[i..<j], radix: 16)!)
            i = j
        }
        bytes = out; self.nickname = nickname
    }

    /// The DataDirectory `fingerprint` file: "Nickname HEXFINGERPRINT".
    public init(fingerprintFile text: String) throws {
        let parts = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard let hex = parts.last else { throw TorStateError("empty fingerprint file") }
        try self.init(hex: hex, nickname: parts.count > 1 ? parts[0] : nil)
    }

    public var description: String { bytes.map { String(format: "%02X", $0) }.joined() }
}

/// Tor's time text: `format_iso_time` ("YYYY-MM-DD HH:MM:SS", UTC) and the
/// INTERVAL config type.
public enum TorTime {
    public static func format(_ d: Date) -> String {
        let t = Int64(d.timeIntervalSince1970.rounded(.down))
        let days = Int(t >= 0 ? t / 86_400 : (t - 86_399) / 86_400)
        let s = Int(t - Int64(days) * 86_400)
        let (y, m, dd) = LocalTime.civil(fromDayNumber: days)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", y, m, dd, s / 3600, s % 3600 / 60, s % 60)
    }

    /// Also accepts ISO-8601 with a `T` and optional `Z`, for command-line use.
    public static func parse(_ text: String) -> Date? {
        var s = text.trimmingCharacters(in: .whitespaces)
        if s.hasSuffix("Z") { s.removeLast() }
        s = s.replacingOccurrences(of: "T", with: " ")
        let parts = s.split(whereSeparator: { $0 == "-" || $0 == " " || $0 == ":" }).map { Int($0) }
        guard parts.count == 6 || parts.count == 5, parts.allSatisfy({ $0 != nil }) else { return nil }
        let v = parts.map { $0! }
        // Years beyond four digits would overflow the day arithmetic below.
        guard (1...9999).contains(v[0]), (1...12).contains(v[1]), (1...31).contains(v[2]), (0...23).contains(v[3]),
              (0...59).contains(v[4]) else { return nil }
        let sec = v.count == 6 ? v[5] : 0
        guard (0...60).contains(sec) else { return nil }
        let days = LocalTime.dayNumber(year: v[0], month: v[1], day: v[2])
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + v[3] * 3600 + v[4] * 60 + sec))
    }

    /// "36000", "36000 seconds", "10 hours".
    public static func parseInterval(_ text: String) -> UInt64? {
        let units: [String: UInt64] = ["": 1, "second": 1, "seconds": 1, "minute": 60, "minutes": 60,
                                       "hour": 3600, "hours": 3600, "day": 86_400, "days": 86_400, "week": 604_800, "weeks": 604_800]
        let t = text.trimmingCharacters(in: .whitespaces)
        let digits = t.prefix { $0.isASCII && $0.isNumber }
        guard let n = UInt64(digits), let m = units[t.dropFirst(digits.count).trimmingCharacters(in: .whitespaces).lowercased()] else { return nil }
        let (seconds, overflow) = n.multipliedReportingOverflow(by: m)
        return overflow ? nil : seconds
    }
}
