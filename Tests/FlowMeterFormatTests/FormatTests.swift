import Foundation
import Testing
import FlowMeterFormat

/// The one formatting module, on its own: what a person reads and what a
/// program reads come out of these few functions.
@Suite struct FormatTests {
    @Test func bytesAreBinaryByDefaultAndSIWhenAQuotaIsWrittenInSI() {
        #expect(Format.bytes(UInt64(512)) == "512 B")
        #expect(Format.bytes(UInt64(1536)) == "1.50 KiB")
        #expect(Format.bytes(UInt64(1 << 30)) == "1.00 GiB")
        #expect(Format.bytes(UInt64(1_000_000_000_000), units: .si) == "1.00 TB")
        #expect(Format.bytes(1.2 * 1_048_576, perSecond: true) == "1.20 MiB/s")
    }

    @Test func exactBytesAreWholeClampedAndNeverNegative() {
        #expect(Format.exactBytes(24_177_983_058.836372) == 24_177_983_059)
        #expect(Format.exactBytes(-5) == 0)
        #expect(Format.exactBytes(.nan) == 0)
        #expect(Format.exactBytes(1e300) == UInt64(Int64.max))
    }

    @Test func instantsAreISO8601UTCBothWays() throws {
        let d = Date(timeIntervalSince1970: 1_796_615_332)
        #expect(Format.iso8601(d) == "2026-12-07T03:48:52Z")
        #expect(Format.parseISO8601("2026-12-07T03:48:52Z") == d)
    }

    @Test func aTableRightAlignsItsNumbersAndRulesOffItsFooter() {
        let t = TextTable(header: ["relay", "bytes"], rows: [["guard1", "10"], ["exit", "2000"]], footer: [["all", "2010"]],
                          rightAlignedFrom: 1)
        #expect(t.render() == """
            relay   bytes
            ------  -----
            guard1     10
            exit     2000
            ------  -----
            all      2010

            """)
    }

    @Test func printableKeepsLettersAndDropsWhatATerminalWouldExecute() {
        #expect(Format.printable("a\u{1B}[31mb\u{07}c") == "a[31mbc")
        #expect(Format.printable("abcdef", limit: 4) == "abc…")
    }

    /// The check the store's readers make of every text value: the same rule
    /// as `printable`, on the ASCII fast path and off it.
    @Test func isPrintableHoldsExactlyWhenPrintableChangesNothing() {
        let samples = ["relay1", "", "a b~", "a\u{1B}[2J", "tab\there", "del\u{7F}", "c1\u{85}", "über", "a\u{202E}b",
                       "zero\u{200B}width", "line\u{2028}sep", "🧅", "ü\u{1B}"]
        for s in samples {
            #expect(Format.isPrintable(s) == (Format.printable(s) == s), "\(s.debugDescription)")
        }
        #expect(Format.isPrintable("relay1") && Format.isPrintable("über") && !Format.isPrintable("a\u{1B}[2J"))
    }
}
