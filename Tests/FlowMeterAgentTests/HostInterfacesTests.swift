import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent
import FlowMeterCore

/// An agent that no configured address points anywhere counts the host on
/// its own interfaces instead of refusing to start.
struct HostInterfacesTests {
    static let routes = """
    Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
    eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
    eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
    wg0\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0
    """
    static let routes6 = """
    00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     ens3
    20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     ens3
    00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
    """

    @Test func theDefaultRoutesAreReadFromBothTablesSkippingRejectRoutes() {
        #expect(HostInterfaces.defaultRouteInterfaces(ipv4: Self.routes, ipv6: Self.routes6) == ["eth0", "ens3"])
    }

    @Test func interfacesWithAHostAddressOrADefaultRouteAreTheHostsLoopbackAndLinkLocalAreNot() {
        let a = { (name: String, text: String) in HostInterfaces.Assigned(interface: name, address: IPAddress(parsing: text)!) }
        let host = HostInterfaces(assigned: [
            HostInterfaces.Assigned(interface: "lo", address: IPAddress(parsing: "127.0.0.1")!, loopback: true),
            a("veth1", "fe80::1"), a("eth1", "169.254.3.4"), a("eth0", "203.0.113.10"), a("eth0", "2001:db8::10"),
            a("docker0", "172.17.0.1"),
        ], defaultRoutes: ["ppp0", "eth0"])
        #expect(host.interfaces == ["eth0", "docker0", "ppp0"])
    }

    @Test func theNoticeSaysWhatIsCountedAndHowToNameRelays() {
        let s = InterfaceSelection(interfaces: ["eth0"], warnings: [], basis: .hostTraffic(unmatched: []))
        let alone = s.notices(relayCount: 0).joined(separator: "\n")
        #expect(alone.contains("counting all of this host's traffic under \"host\" on eth0"))
        #expect(alone.contains("/etc/tor/torrc") && alone.contains("relays:"))
        let natted = InterfaceSelection(interfaces: ["eth0"], warnings: [], basis: .hostTraffic(unmatched: [IPAddress(ipv4: 1)]))
        #expect(natted.notices(relayCount: 1).first?.contains("no interface carries a configured address") == true)
        #expect(InterfaceSelection(interfaces: ["eth0"], warnings: [], basis: .named).notices(relayCount: 0).isEmpty)
    }

    @Test func unmatchedAddressesFallBackToTheHostsInterfaces() throws {
        let root = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let s = InterfaceSelection.choose(explicit: [], addresses: [IPAddress(parsing: "192.0.2.77")!], sysfs: SysfsNet(root: root),
                                          host: { HostInterfaces(assigned: [], defaultRoutes: ["eth9"]) })
        #expect(s.interfaces == ["eth9"])
        #expect(s.basis == .hostTraffic(unmatched: [IPAddress(parsing: "192.0.2.77")!]))
    }
}

/// The built agent, started as systemd starts the packaged unit, and with
/// nothing configured at all.
@Suite(.serialized) struct UnconfiguredAndUnprivilegedStartTests {
    @Test func anUnconfiguredHostStartsAndCountsItsOwnTrafficUnderHost() throws {
        let veth = try VethPair(addresses: ("198.18.7.1", "198.18.7.2"))
        defer { veth.destroy() }
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // No -i, no config, an empty system root: no torrc, no relay, no address.
        let agent = try BackgroundProcess(namespace: veth.meter, argv: [LiveHarness.flowmeter, "run", "--system-root", dir, "--no-db"],
                                          logPath: dir + "/agent.log")
        defer { agent.stop(signal: SIGKILL, timeout: 5) }
        let get = { try veth.get("http://127.0.0.1:9477/metrics", in: veth.meter) }
        #expect(LiveHarness.waitUntil(timeout: 20) { (try? get().0) == 200 }, "agent log:\n\(agent.log)")
        #expect(agent.log.contains("counting all of this host's traffic under \"host\" on \(veth.meterInterface)"), "\(agent.log)")
        let traffic = TestTraffic.relayHost(rounds: 5)
        let pcap = dir + "/burst.pcap"
        try traffic.write(to: pcap)
        try veth.replay(pcap, pps: 2_000)
        let counted = { () throws -> [String: Double] in
            var out: [String: Double] = [:]
            for line in try get().1.split(separator: "\n")
            where line.hasPrefix("flowmeter_packets_total{") || line.hasPrefix("flowmeter_undecoded_packets_total{") {
                guard let space = line.lastIndex(of: " ") else { continue }
                out[String(line[..<space])] = Double(line[line.index(after: space)...])
            }
            return out
        }
        #expect(LiveHarness.waitUntil(timeout: 10) { ((try? counted()) ?? [:]).values.reduce(0, +) == Double(traffic.packetCount) },
                "\((try? counted()) ?? [:])")
        #expect(try counted().keys.filter { $0.hasPrefix("flowmeter_packets_total{") }.allSatisfy { $0.contains("relay=\"host\"") })
        #expect(agent.stop(signal: SIGTERM, timeout: 10) == 0)
    }

    /// What the packaged unit does: User=flowmeter with
    /// AmbientCapabilities=CAP_NET_RAW, so the agent never holds root. It
    /// starts, keeps CAP_NET_RAW alone (no ambient or inheritable set left)
    /// and sets no_new_privs; `--user` naming the same user changes nothing.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs setpriv (util-linux)"),
          arguments: [[], ["--user", "nobody"]])
    func startedAsItsUserWithAnAmbientCapNetRawItKeepsThatCapabilityAlone(extra: [String]) throws {
        let veth = try VethPair()
        defer { veth.destroy() }
        let dir = try LiveHarness.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: false)
        #expect(chown(state, 65534, 65534) == 0 && chmod(dir, 0o755) == 0)
        try "agent:\n  state_directory: \(state)\n".write(toFile: dir + "/flowmeter.yaml", atomically: true, encoding: .utf8)
        // Nice=-4 as the unit has it; libdispatch's complaints go to standard error.
        let agent = try BackgroundProcess(namespace: veth.meter, argv: [
            "nice", "-n", "-4", "env", "LIBDISPATCH_LOG=stderr", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=+net_raw", "--ambient-caps=+net_raw",
            LiveHarness.flowmeter, "run", "-i", veth.meterInterface, "--config", dir + "/flowmeter.yaml", "--system-root", dir,
            "--db", state + "/accounting.db"] + extra, logPath: dir + "/agent.log")
        defer { agent.stop(signal: SIGKILL, timeout: 5) }
        #expect(LiveHarness.waitUntil(timeout: 20) {
            (try? veth.get("http://127.0.0.1:9477/metrics", in: veth.meter).0) == 200
        }, "agent log:\n\(agent.log)")
        let status = try String(contentsOfFile: "/proc/\(agent.pid)/status", encoding: .utf8)
        func field(_ name: String) -> String {
            status.split(separator: "\n").first { $0.hasPrefix(name + ":") }.map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) } ?? ""
        }
        #expect(field("CapEff") == "0000000000002000" && field("CapPrm") == "0000000000002000", "\(status)")
        #expect(field("CapAmb") == "0000000000000000" && field("CapInh") == "0000000000000000", "\(status)")
        #expect(field("NoNewPrivs") == "1")
        #expect(agent.log.contains("running as nobody"), "\(agent.log)")
        #expect(!agent.log.contains("Failed to set thread priority"), "\(agent.log)")
        // Only libdispatch's own threads keep the raised priority; the agent's are back at 0.
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(agent.pid)/task")
        var agentThreads = 0
        for tid in tasks {
            let stat = try String(contentsOfFile: "/proc/\(agent.pid)/task/\(tid)/stat", encoding: .utf8)
            guard let close = stat.lastIndex(of: ")") else { continue }
            let name = stat[stat.index(after: stat.firstIndex(of: "(")!)..<close]
            // Fields after the name: state is field 3, nice is field 19.
            let nice = stat[stat.index(after: close)...].split(separator: " ")[16]
            if name.hasPrefix("capture") || name.hasPrefix("NIO") || tid == "\(agent.pid)" {
                agentThreads += 1
                #expect(nice == "0", "thread \(name) runs at nice \(nice)")
            }
        }
        #expect(agentThreads >= 2)
        #expect(agent.stop(signal: SIGTERM, timeout: 10) == 0, "\(agent.log)")
        let owner = try FileManager.default.attributesOfItem(atPath: state + "/accounting.db")[.ownerAccountID] as? Int
        #expect(owner == 65534, "the store belongs to the agent's user")
    }
}
