import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterConfig

/// The torrc keys that decide tor's own view: CountPrivateBandwidth,
/// TestingTorNetwork, ControlPort/ControlSocket and cookie authentication.
@Suite struct TorrcTorViewTests {
    func relay(_ text: String) throws(ConfigError) -> (TorInstance, [String]) {
        let dir = makeTemporaryDirectory("torview")
        let path = dir + "/exit.torrc"
        writeFile(path, Data(("ORPort 9001\n" + text).utf8))
        return try Torrc.relay(from: path)
    }

    @Test func torsDefaultLeavesInternalPeersOut() throws {
        let r = try relay("")
        #expect(!r.0.countsPrivatePeers && !r.0.testingTorNetwork && r.0.control == nil)
    }

    @Test func countPrivateBandwidthOneCountsInternalPeers() throws {
        #expect(try relay("CountPrivateBandwidth 1").0.countsPrivatePeers)
        #expect(try !relay("countprivatebandwidth 0").0.countsPrivatePeers)
    }

    @Test func testingTorNetworkMakesCountingPrivateBandwidthTheDefault() throws {
        #expect(try relay("TestingTorNetwork 1").0.countsPrivatePeers)
        #expect(try !relay("TestingTorNetwork 1\nCountPrivateBandwidth 0").0.countsPrivatePeers)
        #expect(try !relay("CountPrivateBandwidth 0\nTestingTorNetwork 1").0.countsPrivatePeers)
        #expect(try !relay("TestingTorNetwork 0").0.countsPrivatePeers)
    }

    @Test func aBooleanOtherThanZeroOrOneIsAnErrorNamingTheLine() {
        do { _ = try relay("CountPrivateBandwidth yes"); Issue.record("accepted") } catch { #expect(error.line == 2) }
        do { _ = try relay("TestingTorNetwork 2"); Issue.record("accepted") } catch { #expect(error.line == 2) }
    }

    @Test func controlPortFormsBecomeEndpointsWithTheCookieInTheDataDirectory() throws {
        let (r, _) = try relay("""
        DataDirectory /var/lib/tor-exit
        ControlPort 9051
        ControlPort 127.0.0.2:9052
        ControlPort [::1]:9053
        ControlPort unix:/run/tor/control GroupWritable
        ControlSocket /run/tor/control2
        CookieAuthentication 1
        """)
        let c = try #require(r.control)
        #expect(c.endpoints == [.tcp(address: IPAddress(ipv4: 0x7F00_0001), port: 9051),
                                .tcp(address: IPAddress(parsing: "127.0.0.2")!, port: 9052),
                                .tcp(address: IPAddress(parsing: "::1")!, port: 9053),
                                .unix(path: "/run/tor/control"), .unix(path: "/run/tor/control2")])
        #expect(c.cookieAuthentication)
        #expect(c.cookieFile == "/var/lib/tor-exit/control_auth_cookie")
        #expect(c.endpoints.map(\.description) == ["127.0.0.1:9051", "127.0.0.2:9052", "[::1]:9053",
                                                   "unix:/run/tor/control", "unix:/run/tor/control2"])
    }

    @Test func cookieAuthFileWins() throws {
        let c = try #require(try relay("ControlPort 9051\nCookieAuthentication 1\nDataDirectory /d\nCookieAuthFile \"/etc/c\"").0.control)
        #expect(c.cookieFile == "/etc/c")
    }

    @Test func aControlPortOffLoopbackOrAutoIsSkippedWithAWarning() throws {
        let (r, w) = try relay("ControlPort 203.0.113.5:9051\nControlPort auto\nControlPort 0\nCookieAuthentication 1")
        #expect(r.control == nil)
        #expect(w.contains { $0.contains("not a loopback") })
        #expect(w.contains { $0.contains("ControlPort auto") })
    }

    @Test func aControlPortWithoutCookieAuthenticationIsKeptAndWarned() throws {
        let (r, w) = try relay("ControlPort 9051")
        #expect(r.control?.cookieAuthentication == false)
        #expect(w.contains { $0.contains("CookieAuthentication") })
    }

    @Test func aBadControlPortIsAnError() {
        do { _ = try relay("ControlPort 99999"); Issue.record("accepted") } catch { #expect(error.line == 2) }
    }

    @Test func plainCookieIsOffUnlessTheConfigFileTurnsItOn() throws {
        let dir = makeTemporaryDirectory("plain-cookie")
        writeFile(dir + "/torrc", Data("ORPort 9001\nControlPort 9051\nCookieAuthentication 1\nDataDirectory /d\n".utf8))
        writeFile(dir + "/on.yaml", Data("tor_control:\n  plain_cookie: true\n".utf8))
        writeFile(dir + "/bad.yaml", Data("tor_control:\n  plain_cookies: true\n".utf8))
        let off = try ConfigLoader.load(torrcs: [dir + "/torrc"], consensus: nil, config: nil)
        #expect(off.torInstances.first?.control?.plainCookie == false)
        let on = try ConfigLoader.load(torrcs: [dir + "/torrc"], consensus: nil, config: dir + "/on.yaml")
        #expect(on.torInstances.first?.control?.plainCookie == true)
        #expect(throws: ConfigError.self) { try ConfigLoader.load(torrcs: [dir + "/torrc"], consensus: nil, config: dir + "/bad.yaml") }
    }
}
