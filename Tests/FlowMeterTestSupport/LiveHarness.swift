import Foundation
import Synchronization

/// Real parts for the live tests: network namespaces joined by a veth pair,
/// the built `flowmeter` binary, tcpreplay, curl and Prometheus, each started
/// by PID and stopped by PID. Traffic only crosses the veth pair the test made
/// (or a namespace's own loopback); every sender is bounded in packets and
/// seconds.
enum LiveHarness {
    static var isRoot: Bool { geteuid() == 0 }
    static func tool(_ name: String) -> String? {
        for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        return nil
    }
    /// The full tier: live capture, the oracle, tor, Prometheus, Chromium, the
    /// package. `scripts/test.sh` (what CI and the README run) sets
    /// FLOWMETER_TESTS=full; a plain `swift test` runs the unit tier in minutes.
    static var fullTier: Bool { ProcessInfo.processInfo.environment["FLOWMETER_TESTS"] == "full" }
    /// `tool(name)` for a suite's gate: nil outside the full tier, so the suite is skipped.
    static func suiteTool(_ name: String) -> String? { fullTier ? tool(name) : nil }
    static var canRun: Bool { fullTier && isRoot && tool("ip") != nil && tool("tcpreplay") != nil && tool("curl") != nil }
    /// For `.enabled(if:_:)` as `Comment(rawValue: LiveHarness.skipReason)`: support code does not import Testing,
    /// so `swift build -c release` builds it.
    static let skipReason = "live tests run in the full tier (scripts/test.sh) and need root, iproute2 (ip netns), tcpreplay and curl"

    /// The `flowmeter` binary next to the test bundle (same build folder).
    static var flowmeter: String { Repo.flowmeterBinary }

    typealias Output = ProcessResult

    /// Runs a command to completion (bounded by `timeout` seconds), looking
    /// the tool up in the system directories first.
    @discardableResult
    static func run(_ argv: [String], timeout: Double = 30) throws -> Output {
        let exe = argv[0].hasPrefix("/") ? argv[0] : (tool(argv[0]) ?? argv[0])
        return try runProcess(exe, Array(argv.dropFirst()), timeout: timeout)
    }

    /// Polls `condition` every 100 ms until it holds or `timeout` passes.
    static func waitUntil(timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }

    static func temporaryDirectory() throws -> String { makeTemporaryDirectory("live") }
}

/// Two namespaces, `sender` and `meter`, joined by a veth pair. IPv6 is off
/// in both so the kernel sends nothing of its own (no router or neighbour
/// solicitations) and the meter's interface counts only what the test sends.
final class VethPair: Sendable {
    let sender: String
    let meter: String
    let senderInterface: String
    let meterInterface: String
    /// Swift Testing runs suites in parallel, so two pairs can be made at
    /// once: an unguarded `counter += 1` once gave both the same names
    /// ("ip netns add …: File exists").
    private static let counter = Atomic<Int>(0)

    /// `addresses`: optional (sender, meter) addresses in 198.18.0.0/15
    /// (the range set aside for network tests, RFC 2544).
    init(addresses: (String, String)? = nil) throws {
        let serial = VethPair.counter.wrappingAdd(1, ordering: .relaxed).newValue
        let tag = "\(getpid() % 100_000)x\(serial)"
        sender = "fms\(tag)"
        meter = "fmm\(tag)"
        senderInterface = "vs\(tag)"
        meterInterface = "vm\(tag)"
        try ip(["netns", "add", sender])
        try ip(["netns", "add", meter])
        for ns in [sender, meter] {
            try LiveHarness.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"])
            try LiveHarness.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"])
            try ip(["-n", ns, "link", "set", "lo", "up"])
        }
        try createLink()
        if let (s, m) = addresses {
            try ip(["-n", sender, "addr", "add", "\(s)/24", "dev", senderInterface])
            try ip(["-n", meter, "addr", "add", "\(m)/24", "dev", meterInterface])
        }
    }

    func createLink() throws {
        try ip(["link", "add", senderInterface, "netns", sender, "type", "veth", "peer", "name", meterInterface, "netns", meter])
        try ip(["-n", sender, "link", "set", senderInterface, "up"])
        try ip(["-n", meter, "link", "set", meterInterface, "up"])
    }

    func deleteLink() throws { try ip(["-n", meter, "link", "del", meterInterface]) }

    /// Both ends' MTU: a frame with two VLAN tags is 4 bytes longer than
    /// the 1,518 a veth of MTU 1,500 lets through.
    func setMTU(_ mtu: Int) throws {
        try ip(["-n", sender, "link", "set", senderInterface, "mtu", "\(mtu)"])
        try ip(["-n", meter, "link", "set", meterInterface, "mtu", "\(mtu)"])
    }

    /// A counter of the meter's interface as the kernel keeps it.
    func meterStatistic(_ name: String) throws -> UInt64 {
        let out = try LiveHarness.run(["ip", "netns", "exec", meter, "cat", "/sys/class/net/\(meterInterface)/statistics/\(name)"])
        return UInt64(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// rx_packets of another interface in the meter namespace.
    func bridgeReceived(_ name: String) throws -> UInt64 {
        let out = try LiveHarness.run(["ip", "netns", "exec", meter, "cat", "/sys/class/net/\(name)/statistics/rx_packets"])
        return UInt64(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Sends `pcap` out of the sender's interface at `pps`, bounded in time.
    @discardableResult
    func replay(_ pcap: String, pps: Int, timeout: Double = 60) throws -> LiveHarness.Output {
        try LiveHarness.run(["ip", "netns", "exec", sender, "timeout", "\(Int(timeout))", "tcpreplay", "-q",
                             "--pps=\(pps)", "-i", senderInterface, pcap], timeout: timeout + 5)
    }

    /// An HTTP GET through curl inside `namespace`; returns (status, body).
    func get(_ url: String, in namespace: String, headers: [String] = []) throws -> (Int, String) {
        var argv = ["ip", "netns", "exec", namespace, "curl", "-s", "-m", "5", "-w", "\n%{http_code}"]
        for h in headers { argv += ["-H", h] }
        argv.append(url)
        let out = try LiveHarness.run(argv, timeout: 10)
        var lines = out.stdout.components(separatedBy: "\n")
        let code = Int(lines.popLast() ?? "") ?? 0
        return (code, lines.joined(separator: "\n"))
    }

    func destroy() {
        _ = try? LiveHarness.run(["ip", "netns", "del", sender])
        _ = try? LiveHarness.run(["ip", "netns", "del", meter])
    }

    private func ip(_ args: [String]) throws {
        let out = try LiveHarness.run(["ip"] + args)
        if out.status != 0 { throw HarnessError.command("ip \(args.joined(separator: " ")): \(out.stderr)") }
    }
}

/// Runs `body` on a thread of its own that has joined the network
/// namespace `name` (setns changes the calling thread only), so a test can
/// open capture handles on a veth it made without leaving its namespace.
func inNetworkNamespace<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) throws -> T {
    let result = Mutex<Result<T, Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        defer { done.signal() }
        // glibc's setns(2) wrapper, which Swift's Glibc module does not declare.
        typealias SetNS = @convention(c) (Int32, Int32) -> Int32
        let cloneNewNet: Int32 = 0x4000_0000
        let fd = open("/var/run/netns/\(name)", O_RDONLY)
        guard fd >= 0, let symbol = dlsym(nil, "setns"),
              unsafeBitCast(symbol, to: SetNS.self)(fd, cloneNewNet) == 0 else {
            result.withLock { $0 = .failure(HarnessError.command("setns \(name): errno \(errno)")) }
            return
        }
        close(fd)
        result.withLock { $0 = Result { try body() } }
    }
    thread.start()
    done.wait()
    return try result.withLock { $0! }.get()
}

enum HarnessError: Error { case command(String), timeout(String) }

/// A long-running process of a test, its output in a log file, stopped by
/// its PID. In a namespace, `ip netns exec` execs the command, so the PID is
/// the program's own (prlimit does the same).
final class BackgroundProcess {
    let process = Process()
    let logPath: String

    init(_ executable: String, _ arguments: [String], logPath: String = "/dev/null") throws {
        self.logPath = logPath
        if logPath != "/dev/null" { writeFile(logPath) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : LiveHarness.tool(executable)!)
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    convenience init(namespace: String, argv: [String], logPath: String) throws {
        try self.init("ip", ["netns", "exec", namespace] + argv, logPath: logPath)
    }

    var pid: Int32 { process.processIdentifier }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` and waits up to `timeout` s; SIGKILL if it is still there.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, timeout: Double = 10) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(pid, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// A running agent in the meter namespace, with its temporary config.
final class RunningAgent {
    let process: BackgroundProcess
    let directory: String
    let veth: VethPair
    let port: Int

    /// `topLevelYAML`: more top-level sections of the config file (e.g. `surge:`).
    /// `torrc`: a relay's torrc, read as the host's /etc/tor/torrc.
    init(veth: VethPair, agentYAML: String, topLevelYAML: String = "", extraArguments: [String] = [], port: Int = 9477,
         torrc: String? = nil) throws {
        self.veth = veth
        self.port = port
        directory = try LiveHarness.temporaryDirectory()
        if let torrc {
            try FileManager.default.createDirectory(atPath: directory + "/etc/tor", withIntermediateDirectories: true)
            try torrc.write(toFile: directory + "/etc/tor/torrc", atomically: true, encoding: .utf8)
        }
        let config = """
        host:
          addresses: [\(TestTraffic.relayAddress), "\(TestTraffic.relayAddress6)"]
        relays:
          - name: guard1
            or_ports: ["\(TestTraffic.relayAddress):9001"]
            addresses: [\(TestTraffic.relayAddress)]
        agent:
        \(agentYAML.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        \(topLevelYAML)
        """
        try config.write(toFile: directory + "/flowmeter.yaml", atomically: true, encoding: .utf8)
        process = try BackgroundProcess(
            namespace: veth.meter,
            // --system-root: the host's /etc/tor is not read, and the default store is made in `directory`.
            argv: [LiveHarness.flowmeter, "run", "-i", veth.meterInterface, "--config", directory + "/flowmeter.yaml",
                   "--system-root", directory] + extraArguments,
            logPath: directory + "/agent.log")
    }

    /// The quota the store-keeping agents below carry: 1 GiB a day, both directions.
    static let dailyQuota = "provider 1GiB day 00:00 sum provider tz=UTC"

    /// An agent with two fanout handles, its state in `state`, its store at
    /// `db` and `dailyQuota`.
    convenience init(veth: VethPair, state: String, db: String, extraArguments: [String] = []) throws {
        try self.init(veth: veth, agentYAML: "capture_threads: 2\nstate_directory: \(state)",
                      extraArguments: ["--db", db, "--quota", Self.dailyQuota] + extraArguments)
    }

    /// Waits until /metrics answers from the meter's loopback.
    func waitUntilServing(headers: [String] = []) throws -> Bool {
        LiveHarness.waitUntil(timeout: 20) {
            (try? veth.get("http://127.0.0.1:\(port)/metrics", in: veth.meter, headers: headers).0) == 200
        }
    }

    func metrics(headers: [String] = []) throws -> [String: Double] {
        let (code, body) = try veth.get("http://127.0.0.1:\(port)/metrics", in: veth.meter, headers: headers)
        guard code == 200 else { return [:] }
        var out: [String: Double] = [:]
        for line in body.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            out[String(line[..<space])] = Double(line[line.index(after: space)...])
        }
        return out
    }

    func cleanUp() {
        process.stop(signal: SIGKILL, timeout: 5)
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// tcpdump on an interface of a test namespace: the reference count of
/// what crossed it (the kernel's interface counters see one direction each
/// and miss nothing FlowMeter could miss, tcpdump sees the same tap).
final class TcpdumpReference {
    let process: BackgroundProcess
    let file: String

    init(namespace: String, interface: String, directory: String) throws {
        file = directory + "/reference.pcap"
        // -Z root: Debian's tcpdump otherwise drops to its own user, who
        // cannot write in the test's directory.
        process = try BackgroundProcess(namespace: namespace,
                                        argv: [LiveHarness.tool("tcpdump") ?? "tcpdump", "-n", "-U", "-Z", "root", "-i", interface,
                                               "-s", "128", "-B", "32768", "-w", file],
                                        logPath: directory + "/tcpdump.log")
        guard LiveHarness.waitUntil(timeout: 10, { self.process.log.contains("listening on") }) else {
            process.stop(signal: SIGKILL)
            throw HarnessError.timeout("tcpdump did not start: \(process.log)")
        }
    }

    /// Stops tcpdump (SIGINT: it flushes its file and prints its
    /// statistics) and counts its file: packets and wire bytes (each
    /// record's original length). Throws if tcpdump says the kernel dropped any.
    func stop() throws -> (packets: UInt64, bytes: UInt64) {
        process.stop(signal: SIGINT)
        let log = process.log
        if let line = log.split(separator: "\n").first(where: { $0.contains("dropped by kernel") }),
           !line.hasPrefix("0 ") {
            throw HarnessError.command("tcpdump lost packets: \(line)")
        }
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        func le32(_ at: Int) -> UInt32 { UInt32(data[at]) | UInt32(data[at + 1]) << 8 | UInt32(data[at + 2]) << 16 | UInt32(data[at + 3]) << 24 }
        guard data.count >= 24, le32(0) == 0xA1B2_C3D4 else { throw HarnessError.command("tcpdump wrote no little-endian pcap") }
        var packets: UInt64 = 0, bytes: UInt64 = 0
        var at = 24
        while at + 16 <= data.count {
            let captured = Int(le32(at + 8))
            packets += 1
            bytes += UInt64(le32(at + 12))
            at += 16 + captured
        }
        return (packets, bytes)
    }
}
