import Crypto
import FlowMeterFormat
import Foundation
import Synchronization
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterTorControl

/// The control-port client against something that is not tor (docs/quotas.md,
/// "Tor's own figures"): whoever binds the ControlPort address first must
/// learn nothing derived from any cookie, whatever file it names and
/// whichever methods it offers; a genuine exchange still works.
@Suite struct TorControlClientTests {
    /// The torrc's cookie and a second 32-byte secret the impostor names.
    struct Files {
        let dir = makeTemporaryDirectory("tor-cookie")
        let configured: [UInt8] = (0..<32).map { UInt8($0 * 7 + 1) }
        let named: [UInt8] = (0..<32).map { UInt8(255 - $0) }
        var configuredPath: String { dir + "/control_auth_cookie" }
        var namedPath: String { dir + "/other_instance_cookie" }

        init() throws {
            try Data(configured).write(to: URL(fileURLWithPath: configuredPath))
            try Data(named).write(to: URL(fileURLWithPath: namedPath))
        }

        func settings(port: UInt16, plainCookie: Bool = false) -> TorControlSettings {
            TorControlSettings(endpoints: [.tcp(address: IPAddress(ipv4: 0x7F00_0001), port: port)],
                               cookieAuthentication: true, cookieFile: configuredPath, plainCookie: plainCookie)
        }

        /// Whether `lines` carry either secret in hex, or any HMAC of either
        /// with the nonces seen, or an AUTHENTICATE with an argument.
        func leaked(_ lines: [String]) -> [String] {
            let secrets = [configured, named].map { SafeCookieExchange.hex($0) }
            return lines.filter { line in
                let upper = line.uppercased()
                return secrets.contains { upper.contains($0) } || (upper.hasPrefix("AUTHENTICATE ") && upper.count > 13)
            }
        }
    }

    static let getinfoAnswer = "250-accounting/enabled=1\r\n250-traffic/read=1234\r\n250+fingerprint=\r\nrelay ABCD\r\n..dot\r\n.\r\n250 OK\r\n"

    static func protocolInfo(methods: String, cookieFile: String) -> String {
        "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=\(methods) COOKIEFILE=\"\(cookieFile)\"\r\n250-VERSION Tor=\"0.4.8.10\"\r\n250 OK\r\n"
    }

    @Test func aControlPortThatNamesAnotherFileAndOffersOnlyCookieIsSentNothingDerivedFromAnyCookie() throws {
        let files = try Files()
        defer { try? FileManager.default.removeItem(atPath: files.dir) }
        let info = Self.protocolInfo(methods: "COOKIE", cookieFile: files.namedPath)
        let fake = try FakeControlPort { line in .text(line.hasPrefix("PROTOCOLINFO") ? info : "250 OK\r\n") }
        defer { fake.stop() }
        do {
            _ = try TorControlClient(settings: files.settings(port: fake.port)).getinfo()
            Issue.record("the impostor was answered")
        } catch {
            #expect(error.kind == "no-auth", "\(error)")
            #expect(error.description.contains("tor_control.plain_cookie"), "\(error)")
        }
        #expect(files.leaked(fake.received).isEmpty, "\(fake.received)")
        #expect(!fake.received.contains { $0.hasPrefix("AUTHENTICATE") }, "\(fake.received)")
    }

    @Test func plainCookieWhenTheOperatorAllowsItSendsOnlyTheTorrcsCookie() throws {
        let files = try Files()
        defer { try? FileManager.default.removeItem(atPath: files.dir) }
        let info = Self.protocolInfo(methods: "COOKIE", cookieFile: files.namedPath)
        let fake = try FakeControlPort { line in
            .text(line.hasPrefix("PROTOCOLINFO") ? info : line.hasPrefix("GETINFO") ? Self.getinfoAnswer : "250 OK\r\n")
        }
        defer { fake.stop() }
        let values = try TorControlClient(settings: files.settings(port: fake.port, plainCookie: true)).getinfo()
        #expect(values["traffic/read"] == "1234")
        #expect(fake.received.contains("AUTHENTICATE " + SafeCookieExchange.hex(files.configured)), "\(fake.received)")
        #expect(!fake.received.joined().uppercased().contains(SafeCookieExchange.hex(files.named)), "the named file was read")
    }

    @Test(arguments: ["random", "hash of the named file"])
    func aWrongServerHashEndsTheExchangeBeforeAnythingDerivedFromTheCookieIsSent(_ kind: String) throws {
        let files = try Files()
        defer { try? FileManager.default.removeItem(atPath: files.dir) }
        let info = Self.protocolInfo(methods: "COOKIE,SAFECOOKIE", cookieFile: files.namedPath)
        let serverNonce = [UInt8](repeating: 0x42, count: 32)
        let named = files.named
        let fake = try FakeControlPort { line in
            if line.hasPrefix("PROTOCOLINFO") { return .text(info) }
            guard line.hasPrefix("AUTHCHALLENGE SAFECOOKIE "), let clientNonce = SafeCookieExchange.unhex(String(line.dropFirst(25))) else {
                return .text("250 OK\r\n")
            }
            // An impostor that knows the file it names proves exactly that, and not the torrc's cookie.
            let hash = kind == "random" ? [UInt8](repeating: 0x17, count: 32)
                : Array(HMAC<SHA256>.authenticationCode(for: named + clientNonce + serverNonce, using: SafeCookieExchange.serverKey))
            return .text("250 AUTHCHALLENGE SERVERHASH=\(SafeCookieExchange.hex(hash)) SERVERNONCE=\(SafeCookieExchange.hex(serverNonce))\r\n")
        }
        defer { fake.stop() }
        do {
            _ = try TorControlClient(settings: files.settings(port: fake.port)).getinfo()
            Issue.record("the impostor was answered")
        } catch {
            #expect(error.kind == "cookie", "\(error)")
            #expect(error.description.contains("does not read"), "\(error)")
        }
        #expect(files.leaked(fake.received).isEmpty, "\(fake.received)")
        #expect(!fake.received.contains { $0.hasPrefix("AUTHENTICATE") }, "\(fake.received)")
    }

    @Test func aGenuineSafeCookieExchangeAuthenticatesAndReadsDataLines() throws {
        let files = try Files()
        defer { try? FileManager.default.removeItem(atPath: files.dir) }
        let cookie = files.configured
        let info = Self.protocolInfo(methods: "COOKIE,SAFECOOKIE", cookieFile: files.configuredPath)
        let serverNonce: [UInt8] = (0..<32).map { UInt8($0) }
        let expected = Mutex<String?>(nil)
        let fake = try FakeControlPort { line in
            if line.hasPrefix("PROTOCOLINFO") { return .text(info) }
            if line.hasPrefix("AUTHCHALLENGE SAFECOOKIE "), let nonce = SafeCookieExchange.unhex(String(line.dropFirst(25))) {
                let message = cookie + nonce + serverNonce
                let server = HMAC<SHA256>.authenticationCode(for: message, using: SafeCookieExchange.serverKey)
                let client = HMAC<SHA256>.authenticationCode(for: message, using: SafeCookieExchange.clientKey)
                expected.withLock { $0 = "AUTHENTICATE " + SafeCookieExchange.hex(Array(client)) }
                return .text("250 AUTHCHALLENGE SERVERHASH=\(SafeCookieExchange.hex(Array(server))) SERVERNONCE=\(SafeCookieExchange.hex(serverNonce))\r\n")
            }
            if line.hasPrefix("AUTHENTICATE") {
                return .text(line == expected.withLock { $0 } ? "250 OK\r\n" : "515 Authentication failed\r\n")
            }
            return .text(line.hasPrefix("GETINFO") ? Self.getinfoAnswer : "250 closing connection\r\n")
        }
        defer { fake.stop() }
        let values = try TorControlClient(settings: files.settings(port: fake.port)).getinfo()
        #expect(values["accounting/enabled"] == "1")
        #expect(values["fingerprint"] == "relay ABCD\n.dot")
    }

    @Test func aControlPortThatDripsItsAnswerIsLeftAtTheDeadline() throws {
        let files = try Files()
        defer { try? FileManager.default.removeItem(atPath: files.dir) }
        let info = Self.protocolInfo(methods: "SAFECOOKIE", cookieFile: files.configuredPath)
        let fake = try FakeControlPort { _ in .drip(info, interval: 0.05) }
        defer { fake.stop() }
        let started = ContinuousClock.now
        do {
            _ = try TorControlClient(settings: files.settings(port: fake.port), timeoutSeconds: 1).getinfo()
            Issue.record("a dripped answer was waited for")
        } catch {
            #expect(error.kind == "timeout", "\(error)")
        }
        #expect(ContinuousClock.now - started < .seconds(2))
    }

    /// A refusal's text comes from whatever answers on the port: the error
    /// that reaches the log and `forecast` carries it printable and short.
    @Test func aRefusalWithEscapesIsQuotedPrintableAndShort() throws {
        let files = try Files()
        defer { try? FileManager.default.removeItem(atPath: files.dir) }
        let info = Self.protocolInfo(methods: "SAFECOOKIE", cookieFile: files.configuredPath)
        for status in ["515", "552"] {
            let refusal = "\(status) no\u{1B}]52;c;aGk=\u{07}\u{1B}[2J\u{202E}" + String(repeating: "x", count: 5_000) + "\r\n"
            let fake = try FakeControlPort { command in .text(command.hasPrefix("PROTOCOLINFO") ? info : refusal) }
            defer { fake.stop() }
            do {
                _ = try TorControlClient(settings: files.settings(port: fake.port)).getinfo()
                Issue.record("\(status): a refusal was taken for an answer")
            } catch {
                let text = "\(error)"
                #expect(Format.isPrintable(text) && text.count < 300, "\(status): \(text.debugDescription)")
                #expect(text.contains("no]52;c;aGk=[2Jxxx"), "\(status): \(text)")
            }
        }
    }

    @Test func aFloodedAnswerIsRefusedAtItsSizeBound() throws {
        let files = try Files()
        defer { try? FileManager.default.removeItem(atPath: files.dir) }
        let flood = String(repeating: "250-" + String(repeating: "x", count: 1000) + "\r\n", count: 100) + "250 OK\r\n"
        let fake = try FakeControlPort { _ in .text(flood) }
        defer { fake.stop() }
        do {
            _ = try TorControlClient(settings: files.settings(port: fake.port)).getinfo()
            Issue.record("a 100 KB answer was read")
        } catch {
            #expect(error.kind == "protocol", "\(error)")
        }
    }
}
