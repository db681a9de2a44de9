import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterConfig

@Suite struct ConfigTests {
    func write(_ dir: String, _ name: String, _ text: String) -> String {
        let path = dir + "/" + name
        writeFile(path, Data(text.utf8))
        return path
    }

    @Test func aTorrcGivesListenersAddressesExitAndAccounting() throws {
        let dir = makeTemporaryDirectory("torrc")
        let path = write(dir, "relay1.torrc", """
        # a comment
        Nickname  myRelay
        ORPort 9001
        ORPort [2001:db8::10]:9001 NoAdvertise
        ORPort 203.0.113.10:443 NoListen
        DirPort 203.0.113.10:9030
        Address 203.0.113.10
        Address relay.example.org
        OutboundBindAddressExit 203.0.113.12
        ExitPolicy accept *:80, \\
          reject *:*
        AccountingMax 500 GBytes
        AccountingStart month 3 15:00
        AccountingRule sum
        """)
        let (relay, warnings) = try Torrc.relay(from: path)
        #expect(relay.name == "myRelay")
        #expect(relay.orListeners == [.init(address: nil, port: PortNumber(9001)),
                                      .init(address: IPAddress(parsing: "2001:db8::10"), port: PortNumber(9001))])
        #expect(relay.dirListeners == [.init(address: IPAddress(parsing: "203.0.113.10"), port: PortNumber(9030))])
        #expect(relay.isExit)
        #expect(relay.exitAddresses == [IPAddress(parsing: "203.0.113.12")!])
        #expect(relay.accounting == TorAccountingSettings(maxBytes: 500 << 30, start: "month 3 15:00", rule: "sum"))
        #expect(warnings.contains { $0.contains("relay.example.org") && $0.contains("never resolves") })
    }

    @Test func includeOfADirectoryReadsItsFilesInNameOrderSkippingDotfiles() throws {
        let dir = makeTemporaryDirectory("include")
        try FileManager.default.createDirectory(atPath: dir + "/torrc.d", withIntermediateDirectories: true)
        _ = write(dir + "/torrc.d", "20-b.conf", "Nickname second\n")
        _ = write(dir + "/torrc.d", "10-a.conf", "Nickname first\nORPort 9001\n")
        _ = write(dir + "/torrc.d", ".hidden", "Nickname hidden\n")
        let path = write(dir, "torrc", "%include torrc.d\n")
        let entries = try Torrc.entries(of: path)
        #expect(entries.map(\.value) == ["first", "9001", "second"])
        #expect(try Torrc.relay(from: path).0.name == "second")
    }

    @Test func aBadORPortFailsWithTheFileAndLine() {
        let dir = makeTemporaryDirectory("badtorrc")
        let path = write(dir, "torrc", "Nickname ok\n\nORPort 70000\n")
        #expect(throws: ConfigError(file: path, line: 3, "ORPort: '70000' is not a port number (1–65535)")) {
            try Torrc.relay(from: path)
        }
    }

    @Test func aBadAccountingRuleOrMaxFailsWithTheLine() {
        let dir = makeTemporaryDirectory("badacct")
        let rule = write(dir, "a", "ORPort 9001\nAccountingRule both\n")
        #expect(throws: ConfigError.self) { try Torrc.relay(from: rule) }
        do { _ = try Torrc.relay(from: rule) } catch { #expect(error.line == 2) }
        let max = write(dir, "b", "AccountingMax lots\n")
        do { _ = try Torrc.relay(from: max); Issue.record("accepted") } catch { #expect(error.line == 1) }
    }

    @Test func theConfigFileRejectsUnknownKeysWithTheirLine() {
        let dir = makeTemporaryDirectory("yaml")
        let path = write(dir, "fm.yaml", "host:\n  addresses: [203.0.113.5]\nrelay_port: [9001]\n")
        #expect(throws: ConfigError(file: path, line: 3,
            "unknown key 'relay_port' (expected host, relay_ports, directory_ports, resolvers, relays, tor_control, quotas, pools, store, agent, surge)")) {
            try ConfigFile.load(path)
        }
    }

    @Test func theConfigFileRejectsABadAddressAndABadPortWithTheirLines() {
        let dir = makeTemporaryDirectory("yaml2")
        let a = write(dir, "a.yaml", "resolvers:\n  - 127.0.0.53\n  - dns.example\n")
        do { _ = try ConfigFile.load(a); Issue.record("accepted") } catch { #expect(error.line == 3) }
        let p = write(dir, "b.yaml", "relay_ports: [9001, 0]\n")
        do { _ = try ConfigFile.load(p); Issue.record("accepted") } catch { #expect(error.line == 1) }
        let s = write(dir, "c.yaml", "host: [unclosed\n")
        do { _ = try ConfigFile.load(s); Issue.record("accepted") } catch { #expect(error.message.hasPrefix("YAML syntax")) }
    }

    /// A relay's name is a label in the store, /metrics and every report:
    /// one that would drive a terminal is refused where it is written, and a
    /// torrc without Nickname lends a printable file name.
    @Test func aRelayNameWithAnEscapeIsRefusedWithItsLine() throws {
        let dir = makeTemporaryDirectory("yaml-name")
        let path = write(dir, "fm.yaml", "relays:\n  - name: \"r1\\e[2J\"\n    or_ports: [9001]\n")
        #expect(throws: ConfigError(file: path, line: 2, "relays.name must be printable: no control or format characters")) {
            try ConfigFile.load(path)
        }
        let torrc = write(dir, "exit\u{1B}[2J.torrc", "ORPort 9001\n")
        #expect(try Torrc.relay(from: torrc).0.relay.name == "exit[2J")
    }

    @Test func theConfigFileDescribesHostAndRelays() throws {
        let dir = makeTemporaryDirectory("yaml3")
        let path = write(dir, "fm.yaml", """
        host:
          addresses: [203.0.113.5, "2001:db8::5"]
          ephemeral_ports: 40000-50000
        relay_ports: [9001, 9101]
        resolvers: 203.0.113.53
        relays:
          - name: r1
            or_ports: ["203.0.113.20:9001"]
            exit: true
        """)
        let loaded = try ConfigLoader.load(torrcs: [], consensus: nil, config: path)
        #expect(loaded.model.hostAddresses.count == 2)
        #expect(loaded.model.ephemeralPorts == 40000...50000)
        #expect(loaded.model.relayPorts == [PortNumber(9001), PortNumber(9101)])
        #expect(loaded.model.relays.first?.exitAddresses == [IPAddress(parsing: "203.0.113.20")!])
    }

    @Test func aConsensusGivesORPortsFromRAndALinesAndDirPorts() throws {
        let dir = makeTemporaryDirectory("consensus")
        let path = write(dir, "cached-microdesc-consensus", """
        network-status-version 3 microdesc
        r relay1 AAAAAAAAAAAAAAAAAAAAAAAAAAA 2024-05-01 11:00:00 198.51.100.1 443 0
        a [2001:db8::1]:443
        m xyz
        r relay2 BBBBBBBBBBBBBBBBBBBBBBBBBBB 2024-05-01 11:00:00 198.51.100.2 9001 9030
        directory-footer
        """)
        let c = try ConsensusFile.load(path)
        #expect(c.relayCount == 2)
        #expect(c.orPorts.map { "\($0.0.configText):\($0.1)" } == ["198.51.100.1:443", "2001:db8::1:443", "198.51.100.2:9001"])
        #expect(c.dirPorts.map { "\($0.0.configText):\($0.1)" } == ["198.51.100.2:9030"])
        let notConsensus = write(dir, "x", "hello\n")
        #expect(throws: ConfigError.self) { try ConsensusFile.load(notConsensus) }
    }

    @Test func replayWithABadConfigExitsWithTwoNamingFileAndLineBeforeReadingAnything() throws {
        let dir = makeTemporaryDirectory("cli")
        let path = write(dir, "torrc", "ORPort nine\n")
        let r = try runProcess(Repo.flowmeterBinary, ["replay", "--torrc", path, "/nonexistent.pcap"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(path):1:"))
        #expect(r.stdout.isEmpty)
    }

    @Test func replayOfAMissingFileExitsNonZeroNamingItAndStillPrintsTheRest() throws {
        let good = Repo.corpus.appendingPathComponent("tcpdump/dns_tcp.pcap").path
        let r = try runProcess(Repo.flowmeterBinary, ["replay", "--json", "/nonexistent/x.pcap", good])
        #expect(r.status == 1)
        #expect(r.stderr.contains("/nonexistent/x.pcap: no such file"))
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect(json["schema_version"] as? Int == 1)
        #expect(((json["totals"] as! [String: Any])["packets"] as! NSNumber).intValue > 0)
    }
}
