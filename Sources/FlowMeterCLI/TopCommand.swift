import ArgumentParser
import FlowMeterExport
import FlowMeterFormat
import FlowMeterReports
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `flowmeter top`: a running agent at a glance, refreshed every second and
/// fitted to the terminal (80×24 and up): today's and this period's traffic,
/// each quota's verdict and Tor's state first, then per relay and category
/// the rates in and out (over the last 10 s) and connections. It reads
/// `/api/v1/status` like any other client (the access policy and token
/// apply); when standard output is not a terminal it prints plain blocks of
/// lines instead of redrawing. Whatever answers there is not trusted: each
/// refresh has one deadline and a size bound (`AgentStatusClient`), and every
/// string shown is made printable (`TopScreen`, `TopView`, `Format.printable`).
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "Live view of a running agent: today's and this period's traffic, quota verdicts, Tor's state, rates per relay and category.",
        discussion: "Keys: h or ? help, s sort the rates, r one relay at a time, q quits. Symbols: n/a not measured yet, ≥ at least (a lower bound), ▼ the sort column, … cut to fit. Rates are averaged over the last 10 s. Exit status: 0 on q or after --count refreshes; 1 when the agent cannot be read (no complete answer within 5 s, an answer over 4 MiB, or not a status document); 64 for a usage error.")

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
                throw CommandFailure.runtime("\(tokenFile): \(Diagnostics.reason(error))")
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
        var screen = TopScreen(agent: Format.printable(agent))
        var refreshes = 0
        while true {
            do { screen.observe(try Self.fetch(client)) } catch {
                keys?.restore()
                if interactive { Self.write("\u{1B}[?25h\u{1B}[?1049l") }
                throw CommandFailure.runtime(Format.printable("\(agent): \(error)"))
            }
            Self.draw(&screen, interactive: interactive)
            refreshes += 1
            if let count, refreshes >= count { return }
            guard let keys else { usleep(UInt32(interval * 1_000_000)); continue }
            // Keys redraw at once; the next reading comes when the interval is over.
            let deadline = Date().addingTimeInterval(interval)
            while let key = keys.waitForKey(until: deadline) {
                if screen.press(key) { return }
                Self.draw(&screen, interactive: interactive)
            }
        }
    }
}

extension TopCommand {
    /// Wider than any line top draws: nothing is cut.
    static let wholeLineWidth = 1_000

    /// The screen at the terminal's size (80×24 when it says nothing), or
    /// every line whole when standard output is not a terminal (a script
    /// reading `top --count 1` gets no `…` in place of what it looks for).
    static func draw(_ screen: inout TopScreen, interactive: Bool) {
        var size = winsize()
        let known = interactive && ioctl(1, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 && size.ws_row > 0
        screen.width = known ? Int(size.ws_col) : interactive ? 80 : TopCommand.wholeLineWidth
        screen.height = interactive ? (known ? Int(size.ws_row) : 24) : Int.max
        let lines = screen.lines()
        write(interactive ? "\u{1B}[H\u{1B}[2J" + lines.joined(separator: "\r\n") : lines.joined(separator: "\n") + "\n\n")
    }

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

    /// The next key pressed before `deadline`, nil when none was; the end
    /// of input reads as q.
    func waitForKey(until deadline: Date) -> UInt8? {
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return nil }
            var fd = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let n = poll(&fd, 1, Int32(left * 1000) + 1)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            var byte: UInt8 = 0
            let got = read(0, &byte, 1)
            if got == 0 { return UInt8(ascii: "q") }
            if got == 1 { return byte }
        }
    }
}
