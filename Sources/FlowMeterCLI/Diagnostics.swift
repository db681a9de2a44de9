import ArgumentParser
import FlowMeterAgent
import FlowMeterStore
import FlowMeterConfig
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Messages for a person on standard error, in the agent's one log format
/// (`FlowMeterLogHandler`), so commands and the agent read the same.
enum Diagnostics {
    static func warn(_ message: String) { write(FlowMeterLogHandler.line(.warning, message, journald: FlowMeterLogHandler.underJournald)) }
    static func error(_ message: String) { write(FlowMeterLogHandler.line(.error, message, journald: FlowMeterLogHandler.underJournald)) }
    static func write(_ text: String) { FlowMeterLogHandler.write(text) }
    static var stderrIsTerminal: Bool { isatty(2) == 1 }

    /// Why a file operation failed, in the system's words ("permission
    /// denied", "no such file or directory"), not Foundation's sentence.
    static func reason(_ error: any Error) -> String {
        let ns = error as NSError
        let posix = ns.domain == NSPOSIXErrorDomain ? ns.code
            : (ns.userInfo[NSUnderlyingErrorKey] as? NSError).flatMap { $0.domain == NSPOSIXErrorDomain ? $0.code : nil }
        if let code = posix { return String(cString: strerror(Int32(code))).lowercased() }
        if let c = error as? CocoaError {
            switch c.code {
            case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file or directory"
            case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
            case .fileWriteOutOfSpace: return "no space left on device"
            case .fileWriteVolumeReadOnly: return "read-only file system"
            default: break
            }
        }
        return "\(error)"
    }
}

/// How a command fails: one message (`flowmeter: error: …`) and one exit
/// status from the table every command shares (docs/agent.md, "Exit status";
/// the manual pages' EXIT STATUS). Usage errors (64) are argument-parser's,
/// restyled by `FlowMeterCommand.fail`; `check` keeps the monitoring
/// plugins' 0–3.
enum CommandFailure: Error, CustomStringConvertible {
    /// 1: the command ran and failed (a capture, the agent's listener, a file it writes).
    case runtime(String)
    /// 2: the configuration (config file, torrc, quota spec) is wrong or missing.
    case configuration(String)
    /// 3: the accounting store cannot be used (missing, permission denied, damaged, another version).
    case data(String)

    var code: Int32 {
        switch self {
        case .runtime: return 1
        case .configuration: return 2
        case .data: return 3
        }
    }

    var description: String {
        switch self {
        case .runtime(let m), .data(let m): return m
        case .configuration(let m): return "configuration: \(m)"
        }
    }

    /// The usage errors' status (sysexits' EX_USAGE, argument-parser's own).
    static let usage: Int32 = 64

    /// A store that cannot be used (`StoreError` names its path already).
    static func store(_ error: any Error, path: String) -> CommandFailure {
        if let e = error as? StoreError { return .data(e.description) }
        return .data("\(path): \(Diagnostics.reason(error))")
    }
}

/// Opens the store for a command, saying "permission denied" (and who
/// may read it) where it exists but this user cannot read it, rather than
/// "no such file".
enum StoreAccess {
    static func reader(_ path: String) throws -> AccountingReader {
        if let problem = problem(path) { throw CommandFailure.data("\(path): \(problem)") }
        do { return try AccountingReader(path: path) } catch let e as StoreError { throw CommandFailure.data(e.description) }
    }

    /// nil when the file can be read (or is missing: the reader says so).
    static func problem(_ path: String) -> String? {
        guard access(path, R_OK) != 0, errno == EACCES else { return nil }
        let user = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "uid \(geteuid())"
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var dir = ""
        for part in absolute.split(separator: "/").dropLast() {
            dir += "/" + part
            if access(dir, X_OK) != 0 {
                return "permission denied: \(user) cannot enter \(dir) (\(owner(dir))); run as root or as the store's user"
            }
        }
        return "permission denied: \(user) cannot read it (\(owner(absolute))); run as root or as the store's user"
    }

    /// "owner flowmeter, mode 0700".
    private static func owner(_ path: String) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "owner unknown" }
        let name = getpwuid(st.st_uid).map { String(cString: $0.pointee.pw_name) } ?? "uid \(st.st_uid)"
        return "owner \(name), mode " + String(format: "%04o", st.st_mode & 0o7777)
    }
}
