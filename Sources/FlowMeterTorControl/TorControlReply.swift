/// One reply of tor's control protocol (control-spec.txt §2.3, §4):
/// `DDD-text` and `DDD+text` lines continue it, `DDD text` ends it, and a
/// `+` line is followed by data lines up to a lone `.`. Whatever answers on
/// the control port may be an impostor, so every field read from a reply is
/// checked as outside data.
public struct TorControlReply: Sendable, Equatable {
    public struct Line: Sendable, Equatable {
        public var status: Int
        public var text: String
        /// The data lines after a `DDD+` line (dot-unstuffed), nil for other lines.
        public var data: [String]?
    }

    public var lines: [Line]
    /// The status of the final line: 250 is success.
    public var status: Int { lines.last?.status ?? 0 }
    public var isSuccess: Bool { status == 250 }
    /// The final line's status and text, for errors.
    public var summary: String { lines.last.map { "\($0.status) \($0.text)" } ?? "" }

    /// `NAME=value` (unquoted, up to a space) in any line's text.
    public func field(_ name: String) -> String? {
        for line in lines { if let v = Self.field(name, in: line.text) { return v } }
        return nil
    }

    static func field(_ name: String, in text: String) -> String? {
        for token in text.split(separator: " ") where token.hasPrefix(name + "=") {
            return String(token.dropFirst(name.count + 1))
        }
        return nil
    }

    /// `NAME="value"` with the control-spec's QuotedString escapes (`\\`,
    /// `\"`; any other escaped character stands for itself); nil when absent
    /// or unterminated.
    public static func quotedField(_ name: String, in text: String) -> String? {
        var searchFrom = text.startIndex
        while let r = text.range(of: name + "=\"", range: searchFrom..<text.endIndex) {
            // Only at a word start: `XCOOKIEFILE="…"` is not `COOKIEFILE`.
            guard r.lowerBound == text.startIndex || text[text.index(before: r.lowerBound)] == " " else {
                searchFrom = r.upperBound
                continue
            }
            var out = ""
            var escaped = false
            for ch in text[r.upperBound...] {
                if escaped {
                    out.append(ch); escaped = false
                } else if ch == "\\" {
                    escaped = true
                } else if ch == "\"" {
                    return out
                } else {
                    out.append(ch)
                }
            }
            return nil
        }
        return nil
    }

    /// The `key=value` pairs of a GETINFO answer; a `+` line's value is its
    /// data lines joined with newlines. Lines that are not `key=value` are skipped.
    public var keyValues: [String: String] {
        var values: [String: String] = [:]
        for line in lines where line.status == 250 {
            guard let eq = line.text.firstIndex(of: "=") else { continue }
            let key = String(line.text[..<eq])
            values[key] = line.data.map { $0.joined(separator: "\n") } ?? String(line.text[line.text.index(after: eq)...])
        }
        return values
    }
}

/// Splits the bytes of a control connection into replies, in bounded memory:
/// one reply may hold at most `maxReplyBytes` (lines and data together).
/// Pure, so the fuzzer drives it exactly as the connection does.
public struct TorControlReplyReader: Sendable {
    public static let defaultMaxReplyBytes = 64 << 10

    public let maxReplyBytes: Int
    private var buffer: [UInt8] = []
    /// Bytes of `buffer` already searched for a newline: each byte is looked at once.
    private var scanned = 0
    private var lines: [TorControlReply.Line] = []
    private var replyBytes = 0
    /// Inside a `+` line's data: its index in `lines`.
    private var dataOf: Int? = nil

    public init(maxReplyBytes: Int = TorControlReplyReader.defaultMaxReplyBytes) { self.maxReplyBytes = maxReplyBytes }

    /// Bytes as they arrived from the socket.
    public mutating func append<S: Sequence>(_ bytes: S) where S.Element == UInt8 { buffer.append(contentsOf: bytes) }

    /// The next complete reply, nil while more bytes are needed; throws on a
    /// reply that breaks the grammar or the size bound.
    public mutating func nextReply() throws(TorControlError) -> TorControlReply? {
        var start = 0
        defer {
            buffer.removeFirst(start)
            scanned -= start
        }
        while let newline = buffer[max(start, scanned)...].firstIndex(of: UInt8(ascii: "\n")) {
            var line = Array(buffer[start..<newline])
            start = newline + 1
            scanned = start
            replyBytes += line.count + 1
            try checkBound(unterminated: 0)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if let reply = try take(line) { return reply }
        }
        scanned = buffer.count
        // An unterminated line counts against the bound too.
        try checkBound(unterminated: buffer.count - start)
        return nil
    }

    private func checkBound(unterminated: Int) throws(TorControlError) {
        guard replyBytes + unterminated <= maxReplyBytes else {
            throw .protocolError("a reply longer than \(maxReplyBytes) bytes")
        }
    }

    private mutating func take(_ line: [UInt8]) throws(TorControlError) -> TorControlReply? {
        if let i = dataOf {
            if line == [UInt8(ascii: ".")] { dataOf = nil; return nil }
            let unstuffed = line.first == UInt8(ascii: ".") ? Array(line.dropFirst()) : line
            lines[i].data?.append(String(decoding: unstuffed, as: UTF8.self))
            return nil
        }
        guard line.count >= 4, let status = Self.status(line[0..<3]) else {
            throw .protocolError("not a control-protocol reply line")
        }
        let text = String(decoding: line[4...], as: UTF8.self)
        switch line[3] {
        case UInt8(ascii: "-"):
            lines.append(.init(status: status, text: text, data: nil))
        case UInt8(ascii: "+"):
            lines.append(.init(status: status, text: text, data: []))
            dataOf = lines.count - 1
        case UInt8(ascii: " "):
            lines.append(.init(status: status, text: text, data: nil))
            let reply = TorControlReply(lines: lines)
            lines = []
            replyBytes = 0
            return reply
        default:
            throw .protocolError("not a control-protocol reply line")
        }
        return nil
    }

    /// Three ASCII digits, 100…699 (control-spec §4: the first digit is 2–6).
    private static func status(_ digits: ArraySlice<UInt8>) -> Int? {
        var v = 0
        for d in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(d) else { return nil }
            v = v * 10 + Int(d - UInt8(ascii: "0"))
        }
        return (100...699).contains(v) ? v : nil
    }
}
