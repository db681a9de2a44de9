#if canImport(Glibc)
import Glibc
#endif

/// Messages for a person on standard error.
enum Diagnostics {
    static func warn(_ message: String) { write("flowmeter: warning: \(message)\n") }
    static func error(_ message: String) { write("flowmeter: error: \(message)\n") }
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        // write(2) on fd 2: unbuffered, and no shared C `stderr` FILE* to race on.
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
    static var stderrIsTerminal: Bool { isatty(2) == 1 }
}
