import Foundation
import GRDB
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A database file named on a command line is input like any capture: it may
/// be a FIFO, a device, or an SQLite file built to make queries run for ever.
/// Every file the store opens, FlowMeter's own or vnstat's, passes here.
enum DatabaseFile {
    /// What is at `path`, without opening it: opening a FIFO blocks until
    /// someone writes to it, and reading a device never ends.
    enum Kind: Equatable {
        case missing
        case regular
        /// Anything else, named for the error ("a FIFO (named pipe)").
        case other(String)
    }

    static func kind(_ path: String) -> Kind {
        var st = stat()
        guard stat(path, &st) == 0 else { return errno == ENOENT ? .missing : .other("unreadable (\(String(cString: strerror(errno))))") }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFIFO: return .other("a FIFO (named pipe)")
        case S_IFCHR: return .other("a character device")
        case S_IFBLK: return .other("a block device")
        case S_IFDIR: return .other("a directory")
        case S_IFSOCK: return .other("a socket")
        default: return .other("not a regular file")
        }
    }

    /// Throws unless `path` is a regular file (or missing, when `mayBeMissing`).
    static func requireRegular(_ path: String, mayBeMissing: Bool) throws(StoreError) {
        switch kind(path) {
        case .regular: return
        case .missing:
            if mayBeMissing { return }
            throw StoreError.cannotOpen(path: path, reason: "no such file")
        case .other(let what):
            throw StoreError.notAFile(path: path, what: what)
        }
    }
}

/// A bound on the time one access to a database may take. SQLite checks
/// `sqlite3_interrupt` between the steps of every statement, so a query over
/// an endless recursive view, a huge join or a slow disk ends with
/// `StoreError.readFailed` once `seconds` have passed, whatever the file holds.
public struct QueryTimeLimit: Sendable, Equatable {
    public var seconds: Double
    public init(seconds: Double) { self.seconds = seconds }

    /// For `report`, `forecast`, `check` and the other one-shot commands: far
    /// beyond any real store's query (milliseconds to a few seconds), short
    /// enough that a hostile file ends with an error, not a hang.
    public static let command = QueryTimeLimit(seconds: 60)
    /// For the agent's quota and dashboard reads, which run while it serves.
    public static let agent = QueryTimeLimit(seconds: 20)

    /// For the writer's flushes, whose statements are a few hundred upserts
    /// (milliseconds): short, because the agent's stop waits for one.
    public static let write = QueryTimeLimit(seconds: 20)

    /// Runs `body`; if it is still running after `seconds`, interrupts the
    /// statement in progress and throws `QueryTimedOut`.
    func run<T>(_ queue: DatabaseQueue, _ body: () throws -> T) throws -> T {
        let fired = Fired()
        let timer = DispatchWorkItem { [queue] in
            fired.value.store(true, ordering: .sequentiallyConsistent)
            // A no-op when no statement runs (SQLite's documented contract).
            queue.interrupt()
        }
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds, execute: timer)
        defer { timer.cancel() }
        do {
            return try body()
        } catch let e as DatabaseError where e.resultCode == .SQLITE_INTERRUPT && fired.value.load(ordering: .sequentiallyConsistent) {
            throw QueryTimedOut(seconds: seconds)
        }
    }

    /// Why a bounded access ended (`StoreError.reason` words it).
    struct QueryTimedOut: Error, CustomStringConvertible {
        var seconds: Double
        var description: String {
            "a query ran for more than \(QueryTimeLimit.describe(seconds)) and was stopped: the database is damaged, hostile or far larger than FlowMeter writes"
        }
    }

    private final class Fired: Sendable { let value = Atomic<Bool>(false) }

    static func describe(_ s: Double) -> String {
        s >= 1 && s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
    }
}
