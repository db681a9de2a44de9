import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterReports

/// The fuzz target's claim on its own seed documents, in the unit tier: top
/// draws any status document within the screen, 80×24 and 40×10, after each
/// key, with no control character.
@Suite struct TopScreenFitTests {
    static var seeds: [String] {
        let dir = Repo.path("Fuzz/Corpus/top-status")
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted().map { dir + "/" + $0 }
    }

    @Test(arguments: seeds) func everySeedDocumentFitsTheScreenAfterEveryKey(_ path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let status = try? TopView.Status.decode(data) else { return }
        for (width, height) in [(80, 24), (40, 10)] {
            var screen = TopScreen(agent: "127.0.0.1:9477")
            screen.width = width
            screen.height = height
            for key in [nil, "s", "r", "r", "h"] as [Character?] {
                if let key { _ = screen.press(key.asciiValue!) }
                screen.observe(status)
                let lines = screen.lines()
                #expect(lines.count <= height, "\(width)×\(height) after \(key.map(String.init) ?? "-"): \(lines.count) lines")
                for line in lines {
                    #expect(line.count <= width, "\(width)×\(height) after \(key.map(String.init) ?? "-"): \(line.debugDescription)")
                }
            }
        }
    }
}
