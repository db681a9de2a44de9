import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterConfig

/// Debian's tor layout and torrc reading as tor does it, in temporary trees
/// (never the real /etc).
@Suite struct TorLayoutTests {
    @discardableResult
    func write(_ path: String, _ text: String) -> String {
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        writeFile(path, Data(text.utf8))
        return path
    }

    @Test func debianInstancesAreNamedAfterTheirDirectoryWithTorsDataDirectories() throws {
        let root = makeTemporaryDirectory("layout")
        defer { try? FileManager.default.removeItem(atPath: root) }
        write(root + "/etc/tor/torrc", "SocksPort 9050\n")   // Debian's stock client config: not a relay
        write(root + "/etc/tor/instances/alpha/torrc", "ORPort 9001\nAccountingMax 1 TBytes\n")
        write(root + "/etc/tor/instances/beta/torrc", "Nickname Bravo\nORPort 9002\nDataDirectory /srv/beta\n")
        write(root + "/etc/tor/instances/gamma/torrc", "SocksPort auto\n")
        let loaded = try ConfigLoader.load(torrcs: [], consensus: nil, config: nil, layout: DebianTorLayout(root: root))
        #expect(loaded.torInstances.map(\.name) == ["alpha", "Bravo"])
        #expect(loaded.torInstances[0].dataDirectory == root + "/var/lib/tor-instances/alpha")
        #expect(loaded.torInstances[0].accounting?.maxBytes == 1 << 40)
        #expect(loaded.torInstances[1].dataDirectory == "/srv/beta")
        #expect(loaded.warnings.contains { $0.contains("gamma/torrc") && $0.contains("no listening ORPort") })
    }

    @Test func theMainTorrcIsARelayNamedDefaultWithVarLibTor() throws {
        let root = makeTemporaryDirectory("layout-main")
        defer { try? FileManager.default.removeItem(atPath: root) }
        write(root + "/etc/tor/torrc", "ORPort 443\n")
        let (relays, _) = try DebianTorLayout(root: root).relays()
        #expect(relays.map(\.name) == ["default"])
        #expect(relays.first?.dataDirectory == root + "/var/lib/tor")
    }

    @Test func anEmptyRootHasNoRelaysAndNoError() throws {
        let root = makeTemporaryDirectory("layout-empty")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (relays, warnings) = try DebianTorLayout(root: root).relays()
        #expect(relays.isEmpty && warnings.isEmpty)
    }

    @Test func crlfLineEndingsReadAsTorReadsThem() throws {
        let dir = makeTemporaryDirectory("crlf")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = write(dir + "/torrc", "Nickname crlfRelay\r\nORPort 9001\r\nAddress 203.0.113.7\r\nAccountingMax 10 GBytes\r\n")
        let (relay, _) = try Torrc.relay(from: path)
        #expect(relay.name == "crlfRelay")
        #expect(relay.orListeners.map(\.port) == [PortNumber(9001)])
        #expect(relay.addresses == [IPAddress(parsing: "203.0.113.7")!])
        #expect(relay.accounting?.maxBytes == 10 << 30)
    }

    @Test func aByteOrderMarkIsRefusedAsTorRefusesIt() {
        let dir = makeTemporaryDirectory("bom")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/torrc"
        writeFile(path, Data([0xEF, 0xBB, 0xBF] + Array("ORPort 9001\n".utf8)))
        #expect(throws: ConfigError.self) { try Torrc.relay(from: path) }
        do { _ = try Torrc.relay(from: path) } catch {
            #expect(error.file == path && error.line == 1 && error.message.contains("byte order mark"))
        }
    }

    @Test func includeGlobsExpandSortedAndSkipHiddenFiles() throws {
        let dir = makeTemporaryDirectory("glob")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        write(dir + "/torrc.d/20-b.conf", "ORPort 9002\n")
        write(dir + "/torrc.d/10-a.conf", "ORPort 9001\n")
        write(dir + "/torrc.d/.hidden.conf", "ORPort 9009\n")
        write(dir + "/torrc.d/notes.txt", "ORPort 9008\n")
        let path = write(dir + "/torrc", "%include \(dir)/torrc.d/*.conf\n%include \(dir)/none/*.conf\n")
        let (relay, _) = try Torrc.relay(from: path)
        #expect(relay.orListeners.map(\.port) == [PortNumber(9001), PortNumber(9002)])
    }

    @Test func includeOfADirectoryTakesItsFilesButNotItsSubdirectories() throws {
        let dir = makeTemporaryDirectory("incdir")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        write(dir + "/conf/b", "ORPort 9002\n")
        write(dir + "/conf/a", "ORPort 9001\n")
        write(dir + "/conf/sub/c", "ORPort 9003\n")
        write(dir + "/conf/empty", "")
        let path = write(dir + "/torrc", "%include \(dir)/conf\n")
        let (relay, _) = try Torrc.relay(from: path)
        #expect(relay.orListeners.map(\.port) == [PortNumber(9001), PortNumber(9002)])
    }

    @Test func aMissingIncludeNamesThePathTriedAndTheLine() {
        let dir = makeTemporaryDirectory("incmissing")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = write(dir + "/torrc", "ORPort 9001\n%include \(dir)/nope.conf\n")
        do { _ = try Torrc.relay(from: path); Issue.record("expected an error") } catch {
            #expect(error.file == path && error.line == 2)
            #expect(error.message.contains(dir + "/nope.conf") && error.message.contains("No such file"))
        }
    }

    @Test func anIncludeLoopStopsAtTorsNestingLimit() {
        let dir = makeTemporaryDirectory("incloop")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = write(dir + "/torrc", "ORPort 9001\n%include \(dir)/torrc\n")
        do { _ = try Torrc.relay(from: path); Issue.record("expected an error") } catch {
            #expect(error.message.contains("nested more than 31"))
        }
    }

    /// Ten files each including the next level's ten, six levels: a million
    /// paths if read naively; the file budget stops it after 10,000 reads.
    @Test func aWideIncludeGraphIsRefusedByTheReadBudget() {
        let dir = makeTemporaryDirectory("incwide")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for level in 0..<6 {
            for i in 0..<10 { write(dir + "/l\(level)/f\(i)", "%include \(dir)/l\(level + 1)\n") }
        }
        for i in 0..<10 { write(dir + "/l6/f\(i)", "ORPort 9001\n") }
        let path = write(dir + "/torrc", "%include \(dir)/l0\n")
        let started = Date()
        do { _ = try Torrc.relay(from: path); Issue.record("expected an error") } catch {
            #expect(error.message.contains("more than 10000 files"))
        }
        #expect(Date().timeIntervalSince(started) < 30)
    }

    @Test func continuationsAndCommentsReadAsTorReadsThem() {
        let lines = TorrcReader.logicalLines("ExitPolicy accept *:80, \\\n# a comment inside\n  reject *:*\nORPort 9001 # trailing\nKey \\\r\nNext 1\n")
        #expect(lines.map(\.split.0) == ["ExitPolicy", "ORPort", "Key", "Next", ""])
        #expect(lines[0].split.1 == "accept *:80,    reject *:*")
        #expect(lines[1].split.1 == "9001")
        #expect(lines[2].split.1 == "\\")   // "\" before CRLF is no continuation in tor
    }
}
