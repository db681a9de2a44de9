import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterCore

/// Real captures nobody on the team wrote (tcpdump's and libpcap's regression
/// suites, many deliberately broken): none may crash or hang FlowMeter, every
/// one must add up exactly, and FlowMeter must agree with tshark.
@Suite struct CorpusTests {
    /// Files where FlowMeter and tshark legitimately differ, and why.
    static let knownDifferences: [String: String] = [
        "libpcap/arcnet-rfc1051-arp-icmp-http.pcap": "ARCNET (DLT 129) is not decoded",
        "libpcap/arcnet-rfc1201-arp-icmp-http.pcap": "ARCNET (DLT 129) is not decoded",
        "tcpdump/arcnet-rfc1051-arp-icmp-http.pcap": "ARCNET (DLT 129) is not decoded",
        "tcpdump/arcnet-rfc1201-arp-icmp-http.pcap": "ARCNET (DLT 129) is not decoded",
        "tcpdump/arista_ether.pcap": "Arista's vendor EtherType 0xD28B is not decoded",
        "tcpdump/nsh.pcap": "Network Service Header (EtherType 0x894F) is not decoded",
        "libpcap/ipv6_ext_headers.pcap": "a chain of ~100 IPv6 extension headers: FlowMeter's walk is bounded at 8",
        "tcpdump/atm-heapoverflow.pcap": "SunATM: pcap's len includes the 4-byte pseudo-header, tshark's frame.len does not",
        "tcpdump/atm-oam-heapoverflow.pcap": "SunATM: pcap's len includes the 4-byte pseudo-header, tshark's frame.len does not",
        "tcpdump/atm-oam-loopback-print-overrun.pcap": "SunATM: pcap's len includes the 4-byte pseudo-header, tshark's frame.len does not",
        "tcpdump/icmp-icmp_print-oobr-2.pcap": "fuzzed Frame Relay address/control bytes that tshark's dissector accepts",
        "tcpdump/vrrp-vrrp_print-oobr.pcap": "fuzzed Frame Relay address/control bytes that tshark's dissector accepts",
        "libpcap/http_PPI.pcap": "PPI wrapping 802.11: 802.11 is not decoded",
        "libpcap/pcap-invalid-version-2.pcap": "pcap version 2.5: libpcap refuses the file, tshark reads it",
        "tcpdump/802_15_4-data.pcap": "IEEE 802.15.4 / 6LoWPAN is not decoded",
        "tcpdump/LINKTYPE_USER2_PKTAP.pcap": "PKTAP under DLT_USER2 (149) is not decoded",
        "tcpdump/bgp-aigp.pcap": "Juniper Ethernet (DLT 178) is not decoded",
        "tcpdump/heap-overflow-2.pcap": "ATM CLIP (DLT 106) is not decoded",
        "tcpdump/ieee802.11_htc.pcap": "802.11 radiotap is not decoded",
        "tcpdump/ipoib.pcap": "IP over InfiniBand (DLT 242) is not decoded",
        "tcpdump/timestamp_invalid_micro.pcap": "2 of 3 records have a microsecond field of 10^6 or more: counted as timestamp_invalid, not decoded",
        "tcpdump/timestamp_invalid_nano.pcap": "2 of 3 records have a nanosecond field of 10^9 or more: counted as timestamp_invalid, not decoded",
    ]

    static func shortName(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().lastPathComponent + "/" + url.lastPathComponent
    }

    @Test func theCorpusIsThere() {
        #expect(Repo.corpusFiles.count > 800, "expected the corpus in Tests/Corpus/pcap")
    }

    @Test func everyCorpusCaptureReplaysWithoutACrashAndAddsUpExactly() {
        var failures: [String] = []
        var read = 0
        for path in Repo.corpusFiles {
            let result = replayOnce(files: [path], model: HostModel())
            if !result.invariantHolds { failures.append(Self.shortName(path)) }
            if result.errors.isEmpty { read += 1 }
        }
        #expect(failures.isEmpty, "categories + reasons ≠ packets read for: \(failures)")
        #expect(read > 800)
    }

    @Test(.enabled(if: LiveHarness.suiteTool("tshark") != nil, "needs tshark (Debian's tshark package)"))
    func corpusCountsAgreeWithTsharkOnPacketsBytesFamiliesAndTransports() throws {
        let files = Repo.corpusFiles
        let cache = Repo.path(".build/tshark-counts-cache.json")
        let r = try runProcess("python3", [Repo.path("scripts/tshark_counts.py"), "--cache", cache] + files, timeout: 1500)
        try #require(r.status == 0, "tshark_counts.py failed (is tshark installed?): \(r.stderr)")
        let tshark = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: [String: Any]]
        var disagreements: [String] = []
        var compared = 0
        for path in files {
            guard let t = tshark[path], t["status"] as? String == "ok" else { continue }
            let name = Self.shortName(path)
            let report = ReplayReport(replayOnce(files: [path], model: HostModel()))
            let mine: [String: UInt64] = [
                "packets": report.totals.packets, "bytes": report.totals.bytes,
                "ipv4": report.protocols["ipv4"]!, "ipv6": report.protocols["ipv6"]!,
                "tcp": report.protocols["tcp"]!, "udp": report.protocols["udp"]!,
            ]
            let differs = mine.contains { key, value in (t[key] as! NSNumber).uint64Value != value }
            if Self.knownDifferences[name] != nil {
                if !differs { disagreements.append("\(name) now agrees: remove it from knownDifferences") }
                continue
            }
            compared += 1
            if differs {
                let theirs = mine.keys.sorted().map { "\($0) \(mine[$0]!)/\((t[$0] as! NSNumber).uint64Value)" }
                disagreements.append("\(name): mine/tshark \(theirs.joined(separator: ", "))")
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
        #expect(compared > 800)
    }

    @Test func aCaptureCutShortIsCountedUpToTheCutAndReportedByName() throws {
        let source = Repo.corpus.appendingPathComponent("tcpdump/dns_tcp.pcap").path
        let data = try #require(FileManager.default.contents(atPath: source))
        let cut = makeTemporaryDirectory("cut") + "/cut.pcap"
        writeFile(cut, data.prefix(data.count - 7))
        let result = replayOnce(files: [cut], model: HostModel())
        guard case .cutShort(let path, _, let counted)? = result.errors.first else {
            Issue.record("expected cutShort, got \(result.errors)")
            return
        }
        #expect(path == cut)
        #expect(counted > 0)
        #expect(result.totals.packets == counted)
        #expect(result.invariantHolds)
    }

    @Test func aMissingFileAndAFileThatIsNotACaptureAreReportedByNameAndTheOthersStillCount() throws {
        let notCapture = makeTemporaryDirectory("notcap") + "/notes.txt"
        writeFile(notCapture, Data("hello, not a pcap\n".utf8))
        let good = Repo.corpus.appendingPathComponent("tcpdump/dns_tcp.pcap").path
        let result = replayOnce(files: ["/nonexistent/flowmeter.pcap", notCapture, good], model: HostModel())
        #expect(result.errors.count == 2)
        #expect(result.errors.contains(.fileNotFound(path: "/nonexistent/flowmeter.pcap")))
        #expect(result.errors.contains { if case .notACapture(let p, _) = $0 { return p == notCapture } else { return false } })
        #expect(result.totals.packets > 0)
        #expect(result.invariantHolds)
    }

    @Test func anUnsupportedLinkTypeIsCountedUnderItsOwnReasonNamingTheLinkType() {
        let radiotap = Repo.corpusFiles.first { $0.hasSuffix("tcpdump/ieee802.11_htc.pcap") }!
        let result = replayOnce(files: [radiotap], model: HostModel())
        #expect(result.errors.isEmpty)
        #expect(result.counters.reasonPackets(.linkTypeUnsupported) == result.totals.packets)
        #expect(result.unsupportedLinkTypes.map(\.linkType) == [127])
    }
}
