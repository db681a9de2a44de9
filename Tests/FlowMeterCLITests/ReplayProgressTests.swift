import Foundation
import Testing
@testable import FlowMeterTestSupport

/// `replay`'s progress line, seen through a real terminal (`script` gives the
/// command a pty and records what it wrote): files, packets, bytes, rate and
/// time left while reading; nothing with `--json`, nothing when standard
/// error is a file. The reader reports every 2^20 packets, so the capture
/// holds a little more than that many small frames.
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "needs script (util-linux)"))
struct ReplayProgressTests {
    static let capture: String = {
        let path = makeTemporaryDirectory("replay-progress") + "/many.pcap"
        // 1.1 M UDP frames of 60 bytes: 198.51.100.10 → 203.0.113.53:53.
        var frame: [UInt8] = [2, 0, 0, 0, 0, 0x0B, 2, 0, 0, 0, 0, 0x0A, 0x08, 0x00,
                              0x45, 0, 0, 46, 0, 1, 0x40, 0, 64, 17, 0, 0, 198, 51, 100, 10, 203, 0, 113, 53,
                              0xC3, 0x50, 0, 53, 0, 26, 0, 0]
        frame += [UInt8](repeating: 0x33, count: 18)
        var out: [UInt8] = [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 1, 0, 0, 0]
        out.reserveCapacity(24 + 1_100_000 * (16 + frame.count))
        for i in 0..<1_100_000 {
            for v in [UInt32(1_700_000_000 + i / 1_000_000), UInt32(i % 1_000_000), UInt32(frame.count), UInt32(frame.count)] {
                withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
            }
            out += frame
        }
        writeFile(path, Data(out))
        return path
    }()

    private func underTerminal(_ arguments: String) throws -> ProcessResult {
        try runProcess("/usr/bin/script", ["-q", "-e", "-c", "\(Repo.flowmeterBinary) \(arguments)", "/dev/null"], timeout: 80)
    }

    @Test func aTerminalSeesFilesPacketsBytesRateAndTimeLeftAndJsonSeesNothing() throws {
        let shown = try underTerminal("replay \(Self.capture) \(Self.capture)")
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("file 1/2  1048576 packets  60.00 MiB"), "\(shown.stdout.prefix(400))")
        #expect(shown.stdout.contains("file 2/2  "), "\(shown.stdout.prefix(600))")
        #expect(shown.stdout.contains("/s  ") && shown.stdout.contains(" left"))
        let json = try underTerminal("replay --json \(Self.capture)")
        #expect(json.status == 0)
        #expect(!json.stdout.contains("packets  "), "progress with --json")
        let file = try runProcess(Repo.flowmeterBinary, ["replay", Self.capture], timeout: 80)
        #expect(file.status == 0 && !file.stderr.contains("packets  "), "progress on a non-terminal: \(file.stderr)")
    }
}
