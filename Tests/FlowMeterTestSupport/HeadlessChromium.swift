import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Debian's headless Chromium driven over the DevTools protocol on a pipe
/// (`--remote-debugging-pipe`: commands in on fd 3, answers out on fd 4,
/// each a JSON text ending in NUL), so a test can load a page at a given
/// viewport and measure its layout. The page itself runs no script (its CSP
/// allows none): `Runtime.evaluate` is the debugger's, not the page's.
/// Every wait is bounded; `close` ends the browser, by SIGKILL if need be.
final class HeadlessChromium {
    private let pid: pid_t
    private let toBrowser: Int32
    private let fromBrowser: Int32
    private var buffer: [UInt8] = []
    private var nextID = 1
    private var session: String?

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Starts Chromium inside `namespace` (nil: this one) with its own profile in `profile`.
    init(namespace: String?, profile: String, log: String) throws {
        guard let chromium = LiveHarness.tool("chromium"), let ip = LiveHarness.tool("ip") else { throw Failure(description: "no chromium") }
        var toPipe: [Int32] = [0, 0], fromPipe: [Int32] = [0, 0]
        guard pipe(&toPipe) == 0, pipe(&fromPipe) == 0 else { throw Failure(description: "pipe: \(errno)") }
        // Our ends far from 3 and 4, close-on-exec; the child's ends become exactly 3 and 4.
        func high(_ fd: Int32) -> Int32 { let h = fcntl(fd, F_DUPFD_CLOEXEC, 100); Glibc.close(fd); return h }
        let childIn = high(toPipe[0]), childOut = high(fromPipe[1])
        toBrowser = high(toPipe[1]); fromBrowser = high(fromPipe[0])
        let argv = (namespace.map { [ip, "netns", "exec", $0] } ?? []) + [chromium, "--headless", "--disable-gpu", "--no-sandbox",
            "--no-first-run", "--hide-scrollbars", "--user-data-dir=\(profile)", "--remote-debugging-pipe", "about:blank"]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, childIn, 3)
        posix_spawn_file_actions_adddup2(&actions, childOut, 4)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { for a in cArgs { free(a) } }
        var child: pid_t = 0
        let spawned = posix_spawn(&child, argv[0], &actions, nil, cArgs, environ)
        Glibc.close(childIn); Glibc.close(childOut)
        guard spawned == 0 else { throw Failure(description: "posix_spawn: \(spawned)") }
        pid = child
    }

    /// Sends one command (to the attached page once `open` attached one) and returns its `result`.
    @discardableResult
    func send(_ method: String, _ params: [String: Any] = [:], toPage: Bool = true, timeout: Double = 20) throws -> [String: Any] {
        let id = nextID
        nextID += 1
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if toPage, let session { message["sessionId"] = session }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        var offset = 0
        while offset < bytes.count {
            // Safe: the pointer and count stay inside `bytes` for the call.
            let n = bytes.withUnsafeBytes { write(toBrowser, $0.baseAddress! + offset, $0.count - offset) }
            guard n > 0 else { throw Failure(description: "\(method): the browser's pipe closed") }
            offset += n
        }
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let answer = try readMessage(until: deadline, method: method)
            guard answer["id"] as? Int == id else { continue }  // an event, or an older answer
            if let error = answer["error"] { throw Failure(description: "\(method): \(error)") }
            return answer["result"] as? [String: Any] ?? [:]
        }
    }

    private func readMessage(until deadline: Date, method: String) throws -> [String: Any] {
        while true {
            if let end = buffer.firstIndex(of: 0) {
                let data = Data(buffer[..<end])
                buffer.removeSubrange(...end)
                return (try JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw Failure(description: "\(method): no answer in time") }
            var fd = pollfd(fd: fromBrowser, events: Int16(POLLIN), revents: 0)
            guard poll(&fd, 1, Int32(left * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let n = chunk.withUnsafeMutableBytes { read(fromBrowser, $0.baseAddress, $0.count) }
            guard n > 0 else { throw Failure(description: "\(method): the browser closed its pipe") }
            buffer += chunk[..<n]
        }
    }

    /// Attaches to the browser's page, sets the viewport (a phone's when
    /// `mobile`) and loads `url`, waiting until the document is complete.
    func open(_ url: String, width: Int, height: Int, mobile: Bool) throws {
        if session == nil {
            let targets = try send("Target.getTargets", toPage: false)["targetInfos"] as? [[String: Any]] ?? []
            guard let page = targets.first(where: { $0["type"] as? String == "page" })?["targetId"] as? String else {
                throw Failure(description: "no page target in \(targets)")
            }
            session = try send("Target.attachToTarget", ["targetId": page, "flatten": true], toPage: false)["sessionId"] as? String
        }
        try send("Emulation.setDeviceMetricsOverride", ["width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile])
        try send("Page.navigate", ["url": url])
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if try evaluate("document.readyState + (location.href === '\(url)' ? '' : ' elsewhere')") as? String == "complete" { return }
            usleep(100_000)
        }
        throw Failure(description: "\(url) did not load in 20 s")
    }

    /// The value of a JavaScript expression in the page (by value).
    func evaluate(_ expression: String) throws -> Any? {
        let result = try send("Runtime.evaluate", ["expression": expression, "returnByValue": true])
        if let exception = result["exceptionDetails"] { throw Failure(description: "\(expression): \(exception)") }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Closes the browser and waits for it; SIGKILL after `timeout`.
    func close(timeout: Double = 10) {
        _ = try? send("Browser.close", toPage: false, timeout: 5)
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline { kill(pid, SIGKILL); waitpid(pid, &status, 0); break }
            usleep(50_000)
        }
        Glibc.close(toBrowser); Glibc.close(fromBrowser)
    }
}
