import FlowMeterAccounting
import FlowMeterStore
import Foundation
import FuzzSupport
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// vnstat's database with rows of arbitrary values: an import or an
/// ImportError, never a trap, never a hang, and what is imported is what the
/// store can hold exactly.
///
/// An input that starts with SQLite's header is the database file itself.
/// Any other input is lines: the interface's name, its `updated`, then
/// (date, rx, tx) per month row; a value line starts with its type — `i`
/// integer, `r` real, `t` text, `b` blob, `n` NULL — and a line without one is
/// text. So the fuzzer reaches every column with every SQLite type.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzVnstatDB(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    let path = "/tmp/flowmeter-fuzz-\(getpid())-vnstat.db"
    for suffix in ["", "-wal", "-shm", "-journal"] { unlink(path + suffix) }
    if bytes.starts(with: Array("SQLite format 3\0".utf8)) {
        guard FuzzInput.file(data, size, name: "vnstat.db") == path else { return 0 }
    } else {
        guard (try? VnstatRows.write(bytes, to: path)) != nil else { return 0 }
    }
    if let seed = try? UsageImporter.vnstatDatabase(path: path, interface: "eth0", relay: "host",
                                                    now: Date(timeIntervalSince1970: 1_772_409_600),
                                                    timeLimit: QueryTimeLimit(seconds: 2)) {
        precondition(seed.read <= UsageImporter.largestCount && seed.written <= UsageImporter.largestCount,
                     "a count the store cannot hold: \(seed)")
        precondition(seed.start <= seed.end, "a seed that ends before it starts: \(seed)")
    }
    return 0
}

enum VnstatRows {
    static func value(_ line: Data) -> DatabaseValue {
        guard let kind = line.first else { return "".databaseValue }
        let rest = line.dropFirst()
        let text = String(decoding: rest, as: UTF8.self)
        switch kind {
        case UInt8(ascii: "i"): return (Int64(text) ?? rest.reduce(Int64(0)) { $0 << 8 | Int64($1) }).databaseValue
        case UInt8(ascii: "r"): return (Double(text) ?? Double(rest.count)).databaseValue
        case UInt8(ascii: "t"): return text.databaseValue
        case UInt8(ascii: "b"): return Data(rest).databaseValue
        case UInt8(ascii: "n"): return .null
        default: return String(decoding: line, as: UTF8.self).databaseValue
        }
    }

    /// vnstat 2.x's two tables as far as the import reads them, filled from `input`.
    static func write(_ input: Data, to path: String) throws {
        let lines = input.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { Data($0) }
        // A throwaway file: no fsync, no journal (thousands of inputs a minute).
        var config = Configuration()
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = OFF; PRAGMA journal_mode = OFF") }
        let q = try DatabaseQueue(path: path, configuration: config)
        defer { try? q.close() }
        try q.write { db in
            try db.execute(sql: """
                CREATE TABLE interface(id INTEGER PRIMARY KEY, name TEXT NOT NULL, updated DATE);
                CREATE TABLE month(id INTEGER PRIMARY KEY, interface INTEGER, date DATE, rx INTEGER, tx INTEGER);
                """)
            let name = lines.first.map { String(decoding: $0, as: UTF8.self) } ?? "eth0"
            try db.execute(sql: "INSERT INTO interface(id, name, updated) VALUES (1, ?, ?)",
                           arguments: [name.isEmpty ? "eth0" : name, lines.count > 1 ? value(lines[1]) : .null])
            var i = 2
            while i < lines.count && i < 2 + 3 * 16 {
                let row = (i..<(i + 3)).map { $0 < lines.count ? value(lines[$0]) : .null }
                try db.execute(sql: "INSERT INTO month(interface, date, rx, tx) VALUES (1, ?, ?, ?)",
                               arguments: StatementArguments(row))
                i += 3
            }
        }
    }
}
