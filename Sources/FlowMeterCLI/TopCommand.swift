import ArgumentParser
import FlowMeterExport
import FlowMeterFormat
import FlowMeterReports
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `flowmeter top`: a running agent at a glance, refreshed every second, in
/// 80 columns — per relay and category the rates in and out, connections,
/// each quota with its projection, and Tor's schedule. It reads
/// `/api/v1/status` like any other client (the access policy and token
/// apply); when standard output is not a terminal it prints plain blocks of
/// lines instead of redrawing. Whatever answers there is not trusted: each
/// refresh has one deadline and a size bound (`AgentStatusClient`), and every
/// string shown is made printable (`TopView`, `Format.printable`).
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Live view of a running agent: rates per relay and category, connections, quotas, Tor's schedule.",
        discussion: "Keys: q quits. Exit status: 0 on q or after --count refreshes; 1 when the agent cannot be read (no complete answer within 5 s, an answer over 4 MiB, or not a status document).")

    @Option(help: ArgumentHelp("The agent's listener (agent.listen).", valueName: "HOST:PORT"))
    var agent: String = "127.0.0.1:9477"

    @Option(help: ArgumentHelp("A file holding the agent's bearer token (agent.bearer_token_file).", valueName: "FILE"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Seconds between refreshes.", valueName: "S"))
    var interval: Double = 1

    @Option(help: ArgumentHelp("Stop after N refreshes (default: until q).", valueName: "N"))
    var count: Int?

    func validate() throws {
        if !(0.1...3600).contains(interval) { throw ValidationError("--interval must be 0.1…3600 seconds") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if AgentStatusClient(agent: agent, token: nil) == nil { throw ValidationError("--agent '\(agent)' is not HOST:PORT") }
    }

    func run() throws {
        var token: String? = nil
        if let tokenFile {
            do { token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
                Diagnostics.error("\(tokenFile): \(error.localizedDescription)")
                throw ExitCode(1)
            }
        }
        let client = AgentStatusClient(agent: agent, token: token)!
        let interactive = isatty(1) == 1
        let keys = interactive && isatty(0) == 1 ? RawKeyboard() : nil
        if interactive { Self.write("\u{1B}[?1049h\u{1B}[?25l") }
        defer {
            keys?.restore()
            if interactive { Self.write("\u{1B}[?25h\u{1B}[?1049l") }
        }
        var previous: TopView.Status? = nil
        var refreshes = 0
        while true {
            let status: TopView.Status
            do { status = try Self.fetch(client) } catch {
                keys?.restore()
                if interactive { Self.write("\u{1B}[?25h\u{1B}[?1049l") }
                Diagnostics.error(Format.printable("\(agent): \(error)"))
                throw ExitCode(1)
            }
            let lines = TopView.lines(status, previous: previous, agent: agent, width: 80)
            Self.write(interactive ? "\u{1B}[H\u{1B}[2J" + lines.joined(separator: "\r\n") : lines.joined(separator: "\n") + "\n\n")
            previous = status
            refreshes += 1
            if let count, refreshes >= count { return }
            if let keys {
                if keys.waitForQuit(seconds: interval) { return }
            } else {
                usleep(UInt32(interval * 1_000_000))
            }
        }
    }
}

extension TopCommand {
    /// One refresh: GET /api/v1/status within the client's deadline and
    /// size bound, decoded; any failure says what went wrong, in printable text.
    static func fetch(_ client: AgentStatusClient) throws -> TopView.Status {
        let (code, body) = try client.get("/api/v1/status")
        guard code == 200 else {
            let text = code == 401 ? "a valid token is required (--token-file)"
                : "HTTP \(code): " + Format.printable(String(decoding: body.prefix(200), as: UTF8.self), limit: 120)
            throw AgentStatusClient.Failure(text)
        }
        do { return try TopView.Status.decode(Data(body)) } catch {
            throw AgentStatusClient.Failure("the status document could not be read: " + Format.printable("\(error)", limit: 200))
        }
    }

    /// Straight to fd 1 with write(2): each screen goes out whole, at once,
    /// with no C `stdout` buffer in between.
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            // Safe: offset < count (the loop's condition), so the pointer and length stay inside the buffer.
            let n = bytes.withUnsafeMutableBytes { Glibc.write(1, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            offset += n
        }
    }
}

/// Standard input in raw mode (no echo, no line buffering, Ctrl-C read as a
/// key) until `restore`, so one key press is seen at once.
final class RawKeyboard {
    private var saved = termios()
    private var active = false

    init?() {
        guard tcgetattr(0, &saved) == 0 else { return nil }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG)
        raw.c_cc.6 = 0  // VMIN: return without a byte
        raw.c_cc.5 = 0  // VTIME
        guard tcsetattr(0, TCSANOW, &raw) == 0 else { return nil }
        active = true
    }

    func restore() {
        if active { _ = tcsetattr(0, TCSANOW, &saved); active = false }
    }

    /// Waits up to `seconds` for a key; true for q, Q, Ctrl-C or end of input.
    func waitForQuit(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return false }
            var fd = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let n = poll(&fd, 1, Int32(left * 1000) + 1)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            var byte: UInt8 = 0
            let got = read(0, &byte, 1)
            if got == 0 { return true }
            if got == 1 && (byte == UInt8(ascii: "q") || byte == UInt8(ascii: "Q") || byte == 3) { return true }
        }
    }
}
