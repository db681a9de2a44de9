import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterConfig

/// Debian's tor service reads a defaults file before the torrc; FlowMeter
/// reads the same two files the same way, in a temporary system root.
@Suite struct DebianTorDefaultsTests {
    /// /usr/share/tor/tor-service-defaults-torrc as Debian 12's tor package installs it.
    static let serviceDefaults = """
    DataDirectory /var/lib/tor
    PidFile /run/tor/tor.pid
    RunAsDaemon 1
    User debian-tor

    ControlSocket /run/tor/control GroupWritable RelaxDirModeCheck
    ControlSocketsGroupWritable 1
    SocksPort unix:/run/tor/socks WorldWritable
    SocksPort 9050

    CookieAuthentication 1
    CookieAuthFileGroupReadable 1
    CookieAuthFile /run/tor/control.authcookie

    Log notice syslog

    """

    /// /usr/share/tor/tor-service-defaults-torrc-instances, the template tor@NAME.service fills in.
    static let instanceDefaults = """
    DataDirectory /var/lib/tor-instances/@@NAME@@
    PidFile /run/tor-instances/@@NAME@@/tor.pid
    RunAsDaemon 0
    User _tor-@@NAME@@
    SyslogIdentityTag @@NAME@@

    ControlSocket /run/tor-instances/@@NAME@@/control GroupWritable RelaxDirModeCheck
    SocksPort unix:/run/tor-instances/@@NAME@@/socks WorldWritable

    CookieAuthentication 1
    CookieAuthFileGroupReadable 1
    CookieAuthFile /run/tor-instances/@@NAME@@/control.authcookie

    Log notice syslog

    """

    /// A system root with Debian's tor package files and the given torrc files.
    func root(_ files: [String: String]) -> String {
        let root = makeTemporaryDirectory("debian-tor")
        var all = files
        all["/usr/share/tor/tor-service-defaults-torrc"] = all["/usr/share/tor/tor-service-defaults-torrc"] ?? Self.serviceDefaults
        all["/usr/share/tor/tor-service-defaults-torrc-instances"] = Self.instanceDefaults
        for (path, text) in all {
            try? FileManager.default.createDirectory(atPath: ((root + path) as NSString).deletingLastPathComponent,
                                                     withIntermediateDirectories: true)
            writeFile(root + path, Data(text.utf8))
        }
        return root
    }

    @Test func aStockDebianRelayHasItsControlSocketCookieAndDataDirectoryFromTheServiceDefaults() throws {
        let root = root(["/etc/tor/torrc": "ORPort 9001\nExitRelay 0\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (relays, _) = try DebianTorLayout(root: root).relays()
        let relay = try #require(relays.first)
        #expect(relays.count == 1 && relay.name == "default")
        #expect(relay.dataDirectory == "/var/lib/tor")
        #expect(relay.control == TorControlSettings(endpoints: [.unix(path: "/run/tor/control")], cookieAuthentication: true,
                                                    cookieFile: "/run/tor/control.authcookie"))
    }

    @Test func anInstanceReadsTheInstanceDefaultsWithItsNameFilledIn() throws {
        let root = root(["/etc/tor/instances/relay2/torrc": "+SocksPort auto\nORPort 9002\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (relays, _) = try DebianTorLayout(root: root).relays()
        let relay = try #require(relays.first)
        #expect(relay.name == "relay2")
        #expect(relay.dataDirectory == "/var/lib/tor-instances/relay2")
        #expect(relay.control?.endpoints == [.unix(path: "/run/tor-instances/relay2/control")])
        #expect(relay.control?.cookieFile == "/run/tor-instances/relay2/control.authcookie")
    }

    @Test func theTorrcOverridesTheDefaultsOptionByOption() throws {
        let root = root(["/etc/tor/torrc": """
            ORPort 9001
            DataDirectory /srv/tor
            CookieAuthFile /srv/tor/cookie
            ControlPort 9051
            """])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let relay = try #require(try DebianTorLayout(root: root).relays().relays.first)
        #expect(relay.dataDirectory == "/srv/tor")
        #expect(relay.control?.cookieFile == "/srv/tor/cookie")
        // ControlPort and ControlSocket are separate options: the socket of the defaults stays.
        #expect(relay.control?.endpoints == [.unix(path: "/run/tor/control"), .tcp(address: IPAddress(ipv4: 0x7F00_0001), port: 9051)])
    }

    @Test func aTorrcListLineReplacesTheDefaultsListUnlessItAppendsOrClears() throws {
        func endpoints(_ torrc: String) throws -> [TorControlSettings.Endpoint] {
            let root = root(["/etc/tor/torrc": "ORPort 9001\n" + torrc])
            defer { try? FileManager.default.removeItem(atPath: root) }
            return try DebianTorLayout(root: root).relays().relays.first?.control?.endpoints ?? []
        }
        #expect(try endpoints("ControlSocket /srv/a\nControlSocket /srv/b\n") == [.unix(path: "/srv/a"), .unix(path: "/srv/b")])
        #expect(try endpoints("+ControlSocket /srv/a\n") == [.unix(path: "/run/tor/control"), .unix(path: "/srv/a")])
        #expect(try endpoints("/ControlSocket\n") == [])
    }

    @Test func aTorrcNamedOnTheCommandLineGetsTheDefaultsOfItsPlaceInTheLayout() throws {
        let root = root(["/etc/tor/torrc": "ORPort 9001\n", "/srv/other.torrc": "ORPort 9002\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let layout = DebianTorLayout(root: root)
        let loaded = try ConfigLoader.load(torrcs: [root + "/etc/tor/torrc", root + "/srv/other.torrc"], consensus: nil,
                                           config: nil, layout: layout)
        #expect(loaded.torInstances.map(\.name) == ["default", "other"])
        #expect(loaded.torInstances[0].control?.endpoints == [.unix(path: "/run/tor/control")])
        #expect(loaded.torInstances[1].control == nil)
    }

    @Test func withoutTorInstalledTorsOwnDataDirectoryIsAssumedAndNoControlPort() throws {
        let root = makeTemporaryDirectory("no-tor-package")
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/etc/tor", withIntermediateDirectories: true)
        writeFile(root + "/etc/tor/torrc", Data("ORPort 9001\n".utf8))
        let relay = try #require(try DebianTorLayout(root: root).relays().relays.first)
        #expect(relay.dataDirectory == root + "/var/lib/tor")
        #expect(relay.control == nil)
    }

    @Test func instanceDirectoriesTorWouldNotStartAreLeftOut() throws {
        let root = root(["/etc/tor/instances/ok1/torrc": "ORPort 9001\n",
                         "/etc/tor/instances/bad-name/torrc": "ORPort 9002\n",
                         "/etc/tor/instances/default/torrc": "ORPort 9003\n"])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(try DebianTorLayout(root: root).relays().relays.map(\.name) == ["ok1"])
    }

    @Test func layeringDropsThePrefixesAndKeepsSingleOptionsLastValue() {
        func entry(_ keyword: String, _ value: String) -> TorrcEntry { TorrcEntry(keyword: keyword, value: value, file: "f", line: 1) }
        let merged = Torrc.layered([
            [entry("DataDirectory", "/a"), entry("ORPort", "1"), entry("ORPort", "2")],
            [entry("+ORPort", "3"), entry("ORPort", "4"), entry("DataDirectory", "/b")],
        ])
        #expect(merged.map { "\($0.keyword) \($0.value)" } == ["ORPort 1", "ORPort 2", "ORPort 3", "ORPort 4", "DataDirectory /b"])
    }
}
