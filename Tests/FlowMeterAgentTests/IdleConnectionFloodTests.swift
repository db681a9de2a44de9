import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent
#if canImport(Glibc)
import Glibc
#endif

/// A real agent with systemd's default 1,024 descriptors (`prlimit`), a
/// client holding 1,100 idle connections to it, and scrapes that must each
/// be answered within 3 s: the listener's cap closes the oldest idle
/// connection to make room instead of meeting EMFILE in accept(2).
@Suite(.enabled(if: LiveHarness.isRoot && LiveHarness.suiteTool("prlimit") != nil && LiveHarness.suiteTool("python3") != nil,
                "needs root (capture on lo), prlimit (util-linux) and python3"))
struct IdleConnectionFloodTests {
    /// Opens `n` connections and keeps them, then times five scrapes (3 s
    /// each at most); prints one JSON line. Bounded: 60 s of connecting.
    static let client = """
        import socket, sys, time, json
        port, n = int(sys.argv[1]), int(sys.argv[2])
        held, failed, t0 = [], 0, time.time()
        for i in range(n):
            s = socket.socket(); s.settimeout(2)
            try: s.connect(("127.0.0.1", port)); held.append(s)
            except Exception: failed += 1; s.close()
            if time.time() - t0 > 60: break
        scrapes = []
        for i in range(5):
            t, ok = time.time(), False
            try:
                c = socket.create_connection(("127.0.0.1", port), timeout=3)
                c.settimeout(max(0.1, 3 - (time.time() - t)))
                c.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
                data = b""
                while time.time() - t < 3:
                    b = c.recv(65536)
                    if not b: break
                    data += b
                ok = data.startswith(b"HTTP/1.1 200") and b"flowmeter_build_info" in data
                c.close()
            except Exception: ok = False
            scrapes.append({"ok": ok, "seconds": round(time.time() - t, 3)})
            time.sleep(0.2)
        print(json.dumps({"held": len(held), "failed": failed, "scrapes": scrapes}))
        """

    @Test func everyScrapeAnswersWithin3sWhile1100IdleConnectionsAreHeldUnder1024Descriptors() throws {
        let dir = makeTemporaryDirectory("idle-flood")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = 20_000 + Int(getpid() % 20_000)
        try """
            host:
              addresses: [127.0.0.1]
            agent:
              listen: 127.0.0.1:\(port)
            """.write(toFile: dir + "/flowmeter.yaml", atomically: true, encoding: .utf8)
        try Self.client.write(toFile: dir + "/client.py", atomically: true, encoding: .utf8)

        // prlimit execs the agent, so this PID is the agent's own.
        let agent = try BackgroundProcess("prlimit", ["--nofile=1024:1024", Repo.flowmeterBinary, "run", "-i", "lo",
                                                      "--config", dir + "/flowmeter.yaml", "--system-root", dir],
                                          logPath: dir + "/agent.log")
        defer { agent.stop(signal: SIGKILL) }
        let serving = LiveHarness.waitUntil(timeout: 20) {
            (try? runProcess("python3", ["-c", "import socket; socket.create_connection(('127.0.0.1', \(port)), timeout=1)"], timeout: 5).status) == 0
        }
        try #require(serving, "the agent did not listen: \(agent.log)")

        let r = try runProcess("python3", [dir + "/client.py", String(port), "1100"], timeout: 100)
        let result = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout) \(r.stderr)")
        #expect(result["held"] as? Int == 1100, "\(result)")
        let scrapes = try #require(result["scrapes"] as? [[String: Any]])
        for s in scrapes {
            #expect(s["ok"] as? Bool == true && (s["seconds"] as? Double ?? 99) < 3, "\(scrapes)")
        }
        #expect(agent.process.isRunning, "the agent died: \(agent.log)")
    }
}
