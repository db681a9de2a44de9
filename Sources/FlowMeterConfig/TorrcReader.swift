import FlowMeterCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads torrc text into entries the way tor 0.4.x does (confline.c,
/// conffile.c), bounded in total work so a hostile include graph cannot make
/// FlowMeter read for ever:
///
/// - A line ends at `\n`; a `\r` before it is trailing whitespace, so CRLF
///   files read as tor reads them. `\` directly before `\n` continues a line.
/// - A UTF-8 byte order mark is refused, as tor refuses it ("Unknown option").
/// - `%include PATH`: `*` and `?` globs (expanded by glob(3), sorted); a
///   directory includes its regular, non-hidden files in lexical order, not
///   its subdirectories; an empty file is skipped; a path that does not exist
///   is an error. Relative paths are taken from the including file's directory
///   (tor takes them from its working directory, `/` under systemd).
/// - Nesting stops at tor's `MAX_INCLUDE_RECURSION_LEVEL` (31 files deep,
///   counting the top one); the files and bytes read in all are budgeted.
public struct TorrcReader {
    /// tor's MAX_INCLUDE_RECURSION_LEVEL.
    public static let maxNesting = 31
    public var maxFiles = 10_000
    public var maxBytes = 64 << 20
    public private(set) var filesRead = 0
    public private(set) var bytesRead = 0

    public init() {}

    /// All entries of `path`, includes expanded in place. `replacing` is
    /// applied to the text of `path` itself (not of what it includes), as
    /// Debian's tor@.service applies `sed s/@@NAME@@/NAME/g` to its defaults.
    public mutating func entries(of path: String, replacing: [(String, String)] = []) throws(ConfigError) -> [TorrcEntry] {
        try entries(of: path, level: 1, replacing: replacing)
    }

    private mutating func entries(of path: String, level: Int, replacing: [(String, String)] = []) throws(ConfigError) -> [TorrcEntry] {
        var text = try read(path)
        for (pattern, value) in replacing { text = text.replacingOccurrences(of: pattern, with: value) }
        var out: [TorrcEntry] = []
        for line in Self.logicalLines(text) {
            let (keyword, value) = line.split
            if keyword.isEmpty { continue }
            guard keyword.lowercased() == "%include" else {
                out.append(TorrcEntry(keyword: keyword, value: value, file: path, line: line.number))
                continue
            }
            guard !value.isEmpty else { throw ConfigError(file: path, line: line.number, "%include needs a path") }
            guard level < Self.maxNesting else {
                throw ConfigError(file: path, line: line.number,
                                  "%include nested more than \(Self.maxNesting) files deep (tor's limit); is there a loop?")
            }
            for file in try includedFiles(value, from: path, line: line.number) {
                out += try entries(of: file, level: level + 1)
            }
        }
        return out
    }

    /// Reads one file within the budget; the error names the path tried.
    private mutating func read(_ path: String) throws(ConfigError) -> String {
        filesRead += 1
        guard filesRead <= maxFiles else {
            throw ConfigError(file: path, "%include reads more than \(maxFiles) files in all; refusing to read further")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            throw ConfigError(file: path, !exists ? "no such file" : isDirectory.boolValue ? "is a directory, not a torrc" : "cannot be read (\(String(cString: strerror(errno))))")
        }
        bytesRead += data.count
        guard bytesRead <= maxBytes else {
            throw ConfigError(file: path, "%include reads more than \(maxBytes >> 20) MiB in all; refusing to read further")
        }
        if data.starts(with: [0xEF, 0xBB, 0xBF]) {
            throw ConfigError(file: path, line: 1, "starts with a UTF-8 byte order mark, which tor refuses (\"Unknown option\"); save it without one")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ConfigError(file: path, "is not UTF-8 text") }
        return text
    }

    /// What one `%include` names, in the order tor reads it.
    private func includedFiles(_ value: String, from file: String, line: Int) throws(ConfigError) -> [String] {
        let directory = (file as NSString).deletingLastPathComponent
        let pattern = value.hasPrefix("/") || directory.isEmpty ? value : directory + "/" + value
        let matches = Self.hasGlob(pattern) ? Self.glob(pattern) : [pattern]
        var out: [String] = []
        for path in matches {
            var st = stat()
            guard stat(path, &st) == 0 else {
                throw ConfigError(file: file, line: line, "%include \(path): \(String(cString: strerror(errno)))")
            }
            switch st.st_mode & S_IFMT {
            case S_IFREG:
                if st.st_size > 0 { out.append(path) }
            case S_IFDIR:
                let names: [String]
                do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                    throw ConfigError(file: file, line: line, "%include \(path): the directory cannot be listed")
                }
                for name in names.sorted(by: Self.lexical) where !name.hasPrefix(".") {
                    var child = stat()
                    let full = path + "/" + name
                    if stat(full, &child) == 0, child.st_mode & S_IFMT == S_IFREG, child.st_size > 0 { out.append(full) }
                }
            default:
                throw ConfigError(file: file, line: line, "%include \(path): neither a file nor a directory")
            }
        }
        return out
    }

    /// tor sorts with strcmp: bytes, not locale.
    static func lexical(_ a: String, _ b: String) -> Bool { Array(a.utf8).lexicographicallyPrecedes(Array(b.utf8)) }

    /// tor's has_glob: an unescaped `*` or `?`.
    static func hasGlob(_ pattern: String) -> Bool {
        var escaped = false
        for c in pattern {
            if escaped { escaped = false; continue }
            if c == "\\" { escaped = true } else if c == "*" || c == "?" { return true }
        }
        return false
    }

    /// glob(3) matches, sorted; none is an empty list, as in tor_glob.
    static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        var out: [String] = []
        for i in 0..<Int(g.gl_pathc) {
            if let p = g.gl_pathv[i] { out.append(String(cString: p)) }
        }
        return out.sorted(by: lexical)
    }

    /// One logical line: continuations joined, comments cut, with the number
    /// of its first physical line.
    struct LogicalLine {
        var text: String
        var number: Int
        /// Keyword up to the first whitespace; the value with both ends trimmed.
        var split: (String, String) {
            let parts = text.split(maxSplits: 1, whereSeparator: Self.isSpace)
            guard let first = parts.first else { return ("", "") }
            let value = parts.count > 1 ? String(parts[1]).trimmingCharacters(in: .whitespacesAndNewlines) : ""
            return (String(first), value)
        }
        static func isSpace(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\r" || c == "\u{0B}" || c == "\u{0C}" }
    }

    static func logicalLines(_ text: String) -> [LogicalLine] {
        var out: [LogicalLine] = []
        var pending: String? = nil
        var pendingLine = 0
        // Split on "\n" as bytes: Swift treats "\r\n" as one Character.
        for (i, raw) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            var line = String(decoding: raw, as: UTF8.self)
            let continues = line.hasSuffix("\\")
            if continues { line.removeLast() }
            if pending == nil { pendingLine = i + 1 }
            // Inside a continuation, a line that starts with # is skipped (tor's rule).
            let trimmedStart = line.drop(while: LogicalLine.isSpace)
            if pending != nil && trimmedStart.hasPrefix("#") { continue }
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]) }
            if continues {
                pending = (pending ?? "") + line + " "
                continue
            }
            out.append(LogicalLine(text: (pending ?? "") + line, number: pendingLine))
            pending = nil
        }
        if let pending { out.append(LogicalLine(text: pending, number: pendingLine)) }
        return out
    }
}
