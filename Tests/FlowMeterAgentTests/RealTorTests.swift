import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// Against Debian's `tor` (scripts/install-deps.sh --test): FlowMeter's control
/// client on a lone loopback relay, and the whole agent on a private Tor
/// network (scripts/tor_testnet.py) whose exit reaches its soft limit in about
/// a minute. Every process is started and stopped by PID; the network's
/// namespaces are deleted by the script's `down`.
@Suite(.serialized) struct RealTorTests {
    static var tor: String? { LiveHarness.suiteTool("tor") }
    static var canRunNetwork: Bool {
        LiveHarness.isRoot && tor != nil && LiveHarness.tool("tor-gencert") != nil && LiveHarness.tool("tcpdump") != nil
            && LiveHarness.tool("ip") != nil && LiveHarness.tool("python3") != nil && LiveHarness.tool("curl") != nil
    }

    static func freePort() -> UInt16 { UInt16.random(in: 20000...29999) }

    /// Starts tor with `torrc` in `dir`; returns its PID once `logLine` shows in its notice log.
    static func startTor(torrc: String, dir: String, until logLine: String, timeout: Double) throws -> Process {
        writeFile(dir + "/torrc", Data(torrc.utf8))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tor!)
        p.arguments = ["-f", dir + "/torrc"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let ok = LiveHarness.waitUntil(timeout: timeout) {
            ((try? String(contentsOfFile: dir + "/notice.log", encoding: .utf8)) ?? "").contains(logLine)
        }
        if !ok {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            throw TorTestError("tor did not log '\(logLine)' within \(timeout) s: \((try? String(contentsOfFile: dir + "/notice.log", encoding: .utf8)) ?? "no log")")
        }
        return p
    }

    static func stop(_ p: Process) {
        guard p.isRunning else { return }
        kill(p.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    @Test(.enabled(if: RealTorTests.tor != nil, "needs Debian's tor (scripts/install-deps.sh --test)"))
    func theControlClientReadsALoopbackRelaysOwnFiguresWithSafeCookie() throws {
        let dir = makeTemporaryDirectory("tor-control")
        chmod(dir, 0o700)
        let control = Self.freePort(), or = control + 1
        let torrc = """
        DataDirectory \(dir)
        Log notice file \(dir)/notice.log
        ORPort 127.0.0.1:\(or)
        AssumeReachable 1
        PublishServerDescriptor 0
        DisableNetwork 1
        SocksPort 0
        AccountingMax 1 GBytes
        AccountingRule sum
        ControlPort 127.0.0.1:\(control)
        ControlSocket \(dir)/control.sock
        CookieAuthentication 1
        """
        let p = try Self.startTor(torrc: torrc, dir: dir, until: "Opened Control listener", timeout: 60)
        defer { Self.stop(p) }
        let (instance, _) = try Torrc.relay(from: dir + "/torrc")
        let settings = try #require(instance.control)
        var values: [String: String] = [:]
        // tor writes its cookie and fingerprint a moment after opening the listener.
        _ = LiveHarness.waitUntil(timeout: 20) {
            do { values = try TorControlClient(settings: settings).getinfo(); return true } catch { return false }
        }
        let figures = TorControlFigures(getinfo: values, readAt: Date())
        #expect(figures.accountingEnabled)
        #expect(figures.hibernating == .awake)
        #expect(figures.intervalStart != nil && figures.intervalEnd != nil)
        let file = try String(contentsOfFile: dir + "/fingerprint", encoding: .utf8)
        #expect(figures.fingerprint.map { file.contains($0) } == true)
        // The same through the unix socket.
        #expect(settings.endpoints.count == 2)
        var unix = settings
        unix.endpoints = settings.endpoints.filter { if case .unix = $0 { return true } else { return false } }
        #expect(try TorControlClient(settings: unix).getinfo()["accounting/enabled"] == "1")
        // A cookie tor did not write is refused before FlowMeter answers.
        var wrong = settings
        wrong.endpoints = settings.endpoints
        let cookie = dir + "/control_auth_cookie"
        let saved = try Data(contentsOf: URL(fileURLWithPath: cookie))
        try Data(repeating: 7, count: 32).write(to: URL(fileURLWithPath: cookie))
        defer { try? saved.write(to: URL(fileURLWithPath: cookie)) }
        #expect(throws: TorControlError.self) { try TorControlClient(settings: wrong).getinfo() }
        do { _ = try TorControlClient(settings: wrong).getinfo() } catch { #expect(error.kind == "cookie") }
    }

    @Test(.enabled(if: RealTorTests.tor != nil, "needs Debian's tor (scripts/install-deps.sh --test)"))
    func aTorWithoutARelayIdentityStillGivesItsAccountingFigures() throws {
        let dir = makeTemporaryDirectory("tor-client")
        chmod(dir, 0o700)
        let control = Self.freePort()
        let torrc = """
        DataDirectory \(dir)
        Log notice file \(dir)/notice.log
        DisableNetwork 1
        SocksPort 0
        ControlPort 127.0.0.1:\(control)
        CookieAuthentication 1
        """
        let p = try Self.startTor(torrc: torrc, dir: dir, until: "Opened Control listener", timeout: 60)
        defer { Self.stop(p) }
        let settings = try #require(try Torrc.relay(from: dir + "/torrc").0.control)
        var values: [String: String] = [:]
        _ = LiveHarness.waitUntil(timeout: 20) {
            do { values = try TorControlClient(settings: settings).getinfo(); return true } catch { return false }
        }
        // tor answers 551 for `fingerprint` without an identity; the rest is asked again.
        #expect(values["accounting/enabled"] == "0")
        #expect(values["fingerprint"] == nil && values["traffic/read"] != nil)
    }

    @Test(.enabled(if: true, "a missing control port is data, not a crash"))
    func aMissingControlPortIsReportedAsUnreachable() {
        let settings = TorControlSettings(endpoints: [.tcp(address: IPAddress(ipv4: 0x7F00_0001), port: 1)], cookieAuthentication: true, cookieFile: nil)
        do { _ = try TorControlClient(settings: settings).getinfo(); Issue.record("no error") } catch { #expect(error.kind == "unreachable") }
    }
}

extension RealTorTests {
    /// /metrics of the agent inside namespace `ns`, as series → value.
    static func scrape(_ ns: String, port: UInt16) -> [String: Double] {
        guard let out = try? LiveHarness.run(["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "5",
                                              "http://127.0.0.1:\(port)/metrics"], timeout: 10), out.status == 0 else { return [:] }
        var m: [String: Double] = [:]
        for line in out.stdout.split(separator: "\n") where !line.hasPrefix("#") {
            guard let sp = line.lastIndex(of: " "), let v = Double(line[line.index(after: sp)...]) else { continue }
            m[String(line[..<sp])] = v
        }
        return m
    }

    /// The script's JSON answer.
    static func testnet(_ args: [String], timeout: Double) throws -> [String: Any] {
        let script = Repo.root.appendingPathComponent("scripts/tor_testnet.py").path
        let out = try LiveHarness.run(["python3", script] + args, timeout: timeout)
        guard out.status == 0, let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any] else {
            throw TorTestError("tor_testnet.py \(args.first ?? ""): exit \(out.status): \(out.stderr.suffix(2000))")
        }
        return json
    }

    /// FlowMeter's packet view of tor's bytes for `relay`: Tor payload in the
    /// relay categories, in one direction or (nil) both.
    static func torPayload(_ m: [String: Double], relay: String, direction: String? = nil) -> Double {
        var total = 0.0
        for c in ["or_inbound", "or_outbound", "dir", "exit"] {
            for d in direction.map({ [$0] }) ?? ["in", "out"] {
                total += m["flowmeter_tor_payload_bytes_total{relay=\"\(relay)\",category=\"\(c)\",direction=\"\(d)\"}"] ?? 0
            }
        }
        return total
    }

    /// A number from the script's JSON, whether it came as an integer or not.
    static func number(_ d: [String: Any]?, _ key: String) -> Double? {
        (d?[key] as? Double) ?? (d?[key] as? Int).map(Double.init)
    }

    @Test(.enabled(if: RealTorTests.canRunNetwork, "needs root, tor and tor-gencert, tcpdump, iproute2, python3 and curl (scripts/install-deps.sh --test)"),
          .timeLimit(.minutes(5)))
    func onAPrivateTorNetworkFlowMeterMatchesTorsAccountingAndForeseesItsSoftLimit() throws {
        let dir = makeTemporaryDirectory("tornet")
        var net = dir + "/net"
        let relay = "fmtorexit", quota = "tor-fmtorexit"
        defer { _ = try? Self.testnet(["down", net], timeout: 60) }
        let options = ["--max-bytes", "20 MBytes", "--rate", "256 KBytes", "--timeout", "150"]
        let started = Date()
        let up: [String: Any]
        do { up = try Self.testnet(["up", net] + options, timeout: 200) } catch where Date().timeIntervalSince(started) < 90 {
            // A quick failure is the machine's load (key generation has a 30-s
            // bound in the script); one more try, still within the time limit.
            print("RealTor: network setup failed quickly (\(error)); trying once more")
            _ = try? Self.testnet(["down", net], timeout: 60)
            net = dir + "/net2"
            up = try Self.testnet(["up", net] + options, timeout: 200)
        }
        let namespaces = up["namespaces"] as? [String] ?? []
        let ns = try #require(namespaces.first { $0.hasSuffix("-exit") })

        // FlowMeter on the exit's interface, with the exit's torrc (its ControlPort and cookie).
        let port = UInt16.random(in: 30000...39999)
        let agent = try BackgroundProcess(namespace: ns, argv: [
            LiveHarness.flowmeter, "run", "--torrc", net + "/exit.torrc", "-i", "eth0",
            "--listen", "127.0.0.1:\(port)", "--db", dir + "/fm.sqlite"], logPath: dir + "/agent.log")
        defer { agent.stop() }
        let ready = LiveHarness.waitUntil(timeout: 40) { Self.scrape(ns, port: port)["flowmeter_tor_control_up{relay=\"\(relay)\"}"] == 1 }
        try #require(ready, "agent never read tor's control port: \(agent.log)")

        // Baselines: tor counted before FlowMeter started. `since` opens the
        // window of tcpdump's capture on the same interface (the oracle).
        let before = try Self.testnet(["status", net], timeout: 30)
        let since = Date().timeIntervalSince1970
        let m0 = Self.scrape(ns, port: port)
        let fm0 = Self.torPayload(m0, relay: relay)
        let fmIn0 = Self.torPayload(m0, relay: relay, direction: "in")
        let tor0 = Self.number(before, "accounting_sum") ?? 0
        let retransmitted0 = before["retransmitted_segments"] as? Int ?? 0

        // Bounded traffic: more than the exit may carry, so it reaches its soft and hard limits.
        let push = try BackgroundProcess("python3", [Repo.root.appendingPathComponent("scripts/tor_testnet.py").path,
                                                     "push", net, "16000000", "--timeout", "120"])
        defer { push.stop() }
        var predictions: [(at: Double, soft: Double)] = []
        var softLine: Double? = nil
        // The most the exit's kernel held unread for tor (Recv-Q) at any status:
        // what tor's hard limit throws away after it was on the wire.
        var unread = 0.0
        let deadline = Date().addingTimeInterval(150)
        while Date() < deadline {
            let m = Self.scrape(ns, port: port)
            if let p = m["flowmeter_tor_predicted_soft_limit_timestamp_seconds{relay=\"\(relay)\"}"] {
                predictions.append((Date().timeIntervalSince1970, p))
            }
            if let st = try? Self.testnet(["status", net], timeout: 30) {
                unread = max(unread, Self.number(st, "unread_bytes") ?? 0)
                if let soft = st["soft_limit"] as? [String: Any], let t = soft["unix"] as? Double {
                    softLine = t
                    if !push.process.isRunning || (st["hibernating"] as? String) == "hard" { break }
                }
            }
            usleep(1_500_000)
        }
        push.stop()
        let soft = try #require(softLine, "tor never logged its soft limit")

        // The prediction: the last one made at least 20 s before tor's log line, within 30 s of it.
        let early = predictions.filter { $0.at <= soft - 20 }
        let last = try #require(early.last, "no prediction 20 s before the soft limit; predictions: \(predictions)")
        let error = last.soft - soft
        print("RealTor: soft limit logged at \(soft); predicted \(last.soft) at \(last.at) (\(soft - last.at) s ahead), error \(error) s")
        #expect(abs(error) <= 30)

        // The control-port figures equal tor's: the agent polls every 10 s, so
        // tor's counters read before and 11 s after its poll bracket the
        // agent's figures (a dormant tor still adds ~100 B/s of directory
        // traffic); equal brackets make it exact.
        //
        // The packets: FlowMeter counts the wire, so against tcpdump on the
        // same interface over the same window it must agree to the byte but
        // for the window's edges, where the network is nearly idle. Against
        // tor's reading it agrees within 1.5 % plus two things on the wire
        // that tor never reads: a retransmitted segment's payload (one full
        // segment, 1,460 bytes, per retransmission counted in the network's
        // namespaces), and what the exit's kernel had received when the hard
        // limit closed tor's connections (the largest Recv-Q seen). Under
        // load the kernel grows that window: two CI runs and a run beside
        // four busy loops read 6.5–7.3 % over tor with 1.4 MB unread, where
        // an idle machine reads 0.5 % with ~110 kB (BENCHMARKS.md).
        var exact = false, bracketed = false
        var summary = ""
        for _ in 0..<4 where !exact {
            let s1 = try Self.testnet(["status", net], timeout: 30)
            usleep(11_000_000)
            let m = Self.scrape(ns, port: port)
            let until = Date().timeIntervalSince1970
            let s2 = try Self.testnet(["status", net], timeout: 30)
            func int(_ d: [String: Any], _ k: String) -> Int { (d[k] as? Int) ?? -1 }
            let (r1, w1, r2, w2) = (int(s1, "accounting_read"), int(s1, "accounting_written"), int(s2, "accounting_read"), int(s2, "accounting_written"))
            let fmRead = m["flowmeter_tor_accounting_read_bytes{relay=\"\(relay)\"}"].map { Int($0) } ?? -2
            let fmWritten = m["flowmeter_tor_accounting_written_bytes{relay=\"\(relay)\"}"].map { Int($0) } ?? -2
            let torDelta = Double(fmRead + fmWritten) - tor0
            let fmDelta = Self.torPayload(m, relay: relay) - fm0
            let fmIn = Self.torPayload(m, relay: relay, direction: "in") - fmIn0
            let ratio = fmDelta / torDelta
            let retransmitted = (s2["retransmitted_segments"] as? Int ?? 0) - retransmitted0
            let resent = Double(retransmitted * 1460)
            let wireRatio = m["flowmeter_tor_wire_to_tor_bytes_ratio{relay=\"\(relay)\"}"] ?? .nan
            let used = m["flowmeter_quota_used_bytes{quota=\"\(quota)\",source=\"tor_control\"}"]
            let pcap = (try Self.testnet(["measure", net, "--since", "\(since)", "--until", "\(until)"], timeout: 60))["pcap"] as? [String: Any]
            let pcapIn = Self.number(pcap?["in"] as? [String: Any], "tcp_payload") ?? -1
            let pcapOut = Self.number(pcap?["out"] as? [String: Any], "tcp_payload") ?? -1
            summary = "tor read \(r1)…\(r2) written \(w1)…\(w2); control port \(fmRead)/\(fmWritten) (Δ\(torDelta) since the agent started); packets Δ\(fmDelta) (in \(fmIn)), ratio \(ratio); tcpdump in \(pcapIn) out \(pcapOut); retransmitted segments \(retransmitted); most unread \(unread); wire/tor \(wireRatio); quota used \(used ?? -1)"
            let ok = (r1...max(r1, r2)).contains(fmRead) && (w1...max(w1, w2)).contains(fmWritten)
            bracketed = bracketed || ok
            exact = ok && r1 == r2 && w1 == w2
            if ok {
                print("RealTor: \(summary)\(exact ? " (exact)" : " (bracketed)")")
                #expect(abs(fmIn - pcapIn) <= 16_384 && abs(fmDelta - fmIn - pcapOut) <= 16_384, "\(summary)")
                #expect(ratio >= 0.985 && fmDelta <= torDelta * 1.015 + resent + unread, "\(summary)")
                // The tor: quota takes tor's own bytes (once the store has been read).
                if let used { #expect(used == Double(fmRead + fmWritten), "\(summary)") }
                #expect(wireRatio > 1, "\(summary)")
                if !exact { continue }
            }
        }
        #expect(bracketed, "control-port figures are not tor's: \(summary)")

        // /api/v1/status shows the same view, hibernating included.
        let status = try LiveHarness.run(["ip", "netns", "exec", ns, "curl", "-s", "--max-time", "5",
                                          "http://127.0.0.1:\(port)/api/v1/status"], timeout: 10)
        let doc = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let view = (doc?["tor_control"] as? [[String: Any]])?.first
        #expect(view?["relay"] as? String == relay && view?["up"] as? Bool == true)
        #expect(view?["hibernating"] as? String == "hard" && view?["predicted_wakeup"] is String)
        // The quota every view shows is tor's own interval and bytes, and says so.
        let line = (doc?["quotas"] as? [[String: Any]])?.first { $0["name"] as? String == quota }
        #expect(line?["interval_source"] as? String == "tor_control", "\(status.stdout)")
        #expect(line?["period_start"] as? String == view?["interval_start"] as? String, "\(status.stdout)")
        #expect((line?["used_bytes"] as? Int).map { $0 == view?["accounting_bytes"] as? Int } == true, "\(status.stdout)")

        // Stopped, the agent has logged the control port once, and `forecast` asks tor itself.
        agent.stop()
        let agentLog = agent.log
        #expect(agentLog.components(separatedBy: "reading tor's own accounting figures").count == 2, "\(agentLog)")
        let forecast = try LiveHarness.run(["ip", "netns", "exec", ns, LiveHarness.flowmeter, "forecast", "--db", dir + "/fm.sqlite",
                                            "--torrc", net + "/exit.torrc", "--json"], timeout: 30)
        let quotas = try JSONSerialization.jsonObject(with: Data(forecast.stdout.utf8)) as? [[String: Any]]
        let q = try #require(quotas?.first { $0["name"] as? String == quota }, "forecast: \(forecast.stdout) \(forecast.stderr)")
        let own = q["tor_control"] as? [String: Any]
        print("RealTor: forecast source \(q["source"] ?? "?"), used \(q["used_bytes"] ?? "?"), tor \(own?["accounting_bytes"] ?? "?"), wake \(own?["predicted_wakeup"] ?? "?")")
        #expect(q["source"] as? String == "tor_control" && q["interval_source"] as? String == "tor_control")
        #expect(q["period_start"] as? String == own?["interval_start"] as? String)
        #expect(own?["hibernating"] as? String == "hard")
        #expect((q["used_bytes"] as? Int).map { $0 == own?["accounting_bytes"] as? Int } == true)
    }
}

struct TorTestError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
