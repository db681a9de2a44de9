import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterTorControl

/// The reply grammar (control-spec §2.3) and the authentication choice, as
/// pure functions of what the control port said.
@Suite struct TorControlReplyTests {
    func replies(_ text: String, chunk: Int = 3) throws(TorControlError) -> [TorControlReply] {
        var reader = TorControlReplyReader(maxReplyBytes: 1024)
        var out: [TorControlReply] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            reader.append(bytes[i..<min(bytes.count, i + chunk)])
            i += chunk
            while let r = try reader.nextReply() { out.append(r) }
        }
        return out
    }

    @Test func repliesSplitAtTheirEndLineWhateverTheChunks() throws {
        let text = "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250 OK\r\n515 Bad\r\n"
        for chunk in [1, 2, 7, 100] {
            let r = try replies(text, chunk: chunk)
            #expect(r.count == 2 && r[0].lines.count == 3 && r[0].isSuccess && r[1].status == 515, "chunk \(chunk)")
        }
    }

    @Test func dataLinesEndAtALoneDotAndAreUnstuffed() throws {
        let r = try replies("250+config-text=\r\n250 looks like an end\r\n..x\r\n.\r\n250 OK\r\n")
        #expect(r.count == 1)
        #expect(r[0].keyValues["config-text"] == "250 looks like an end\n.x")
    }

    @Test(arguments: ["hello\r\n", "25-x\r\n", "2500 x\r\n", "099 x\r\n", "250\r\n", "250*x\r\n", "-250 x\r\n"])
    func aLineOutsideTheGrammarIsAProtocolError(_ text: String) {
        #expect(throws: TorControlError.self) { _ = try replies(text) }
    }

    @Test func aReplyOverTheBoundIsRefusedEvenWithoutANewline() {
        #expect(throws: TorControlError.self) { _ = try replies(String(repeating: "x", count: 2000)) }
        #expect(throws: TorControlError.self) { _ = try replies(String(repeating: "250-x\r\n", count: 200)) }
    }

    @Test func quotedFieldsFollowTheEscapesAndStartAWord() {
        #expect(TorControlReply.quotedField("COOKIEFILE", in: #"AUTH METHODS=COOKIE COOKIEFILE="/a \"b\" \\c""#) == #"/a "b" \c"#)
        #expect(TorControlReply.quotedField("COOKIEFILE", in: #"AUTH XCOOKIEFILE="/x" COOKIEFILE="/y""#) == "/y")
        #expect(TorControlReply.quotedField("COOKIEFILE", in: #"AUTH COOKIEFILE="/unterminated"#) == nil)
    }

    func settings(plain: Bool = false, file: String? = "/torrc/cookie") -> TorControlSettings {
        TorControlSettings(endpoints: [], cookieAuthentication: true, cookieFile: file, plainCookie: plain)
    }

    @Test func theChoiceOfMethodNeverTakesTheNamedFile() throws {
        typealias Info = TorControlAuthentication.ProtocolInfo
        let named = "/root/secret"
        #expect(try TorControlAuthentication.decide(Info(methods: ["NULL", "COOKIE"], namedCookieFile: named), settings: settings()) == .none)
        #expect(try TorControlAuthentication.decide(Info(methods: ["COOKIE", "SAFECOOKIE"], namedCookieFile: named), settings: settings())
                == .safeCookie(cookieFile: "/torrc/cookie"))
        #expect(throws: TorControlError.self) {
            try TorControlAuthentication.decide(Info(methods: ["COOKIE"], namedCookieFile: named), settings: settings())
        }
        #expect(try TorControlAuthentication.decide(Info(methods: ["COOKIE"], namedCookieFile: named), settings: settings(plain: true))
                == .plainCookie(cookieFile: "/torrc/cookie"))
        #expect(throws: TorControlError.self) {
            try TorControlAuthentication.decide(Info(methods: ["SAFECOOKIE"], namedCookieFile: named), settings: settings(file: nil))
        }
        #expect(throws: TorControlError.self) {
            try TorControlAuthentication.decide(Info(methods: ["HASHEDPASSWORD"], namedCookieFile: nil), settings: settings())
        }
    }

    @Test func aCookieFileMustBeARegularFileOfExactly32Bytes() throws {
        let dir = makeTemporaryDirectory("cookie-file")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(count: 33).write(to: URL(fileURLWithPath: dir + "/long"))
        try Data(count: 31).write(to: URL(fileURLWithPath: dir + "/short"))
        try Data(count: 32).write(to: URL(fileURLWithPath: dir + "/right"))
        #expect(mkfifo(dir + "/fifo", 0o600) == 0)
        #expect(try TorCookieFile.read(dir + "/right").count == 32)
        for name in ["long", "short", "fifo", "missing"] {
            #expect(throws: TorControlError.self, "\(name)") { _ = try TorCookieFile.read(dir + "/" + name) }
        }
    }
}
