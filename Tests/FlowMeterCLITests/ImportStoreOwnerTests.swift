import Foundation
import Testing
@testable import FlowMeterTestSupport

/// `flowmeter import` finds the store as the other commands do, says so
/// plainly when the agent holds it, and leaves every file of the agent's
/// directory to the agent.
@Suite struct ImportStoreOwnerTests {
    /// A system root whose /var/lib/flowmeter belongs to `owner`, and a tor state file.
    func setUp(owner: uid_t) throws -> (root: String, state: String) {
        let root = makeTemporaryDirectory("import-owner")
        try FileManager.default.createDirectory(atPath: root + "/var/lib/flowmeter", withIntermediateDirectories: true)
        #expect(chown(root + "/var/lib/flowmeter", owner, owner) == 0)
        try ImportCommandTests.torStateText.write(toFile: root + "/state", atomically: true, encoding: .utf8)
        return (root, root + "/state")
    }

    @Test func withoutDbItWritesTheStoreRunWritesAsTheOwnerOfItsDirectory() throws {
        let (root, state) = try setUp(owner: 65534)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let r = try runProcess(Repo.flowmeterBinary, ["import", "--system-root", root, "--tor-state", state, "--relay", "guardA"])
        #expect(r.status == 0, "\(r.stderr)")
        let files = try FileManager.default.contentsOfDirectory(atPath: root + "/var/lib/flowmeter")
        #expect(files.contains("accounting.db"), "\(files)")
        for f in files {
            let owner = try FileManager.default.attributesOfItem(atPath: root + "/var/lib/flowmeter/" + f)[.ownerAccountID] as? Int
            #expect(owner == 65534, "\(f) belongs to \(owner ?? -1), not to the directory's owner")
        }
    }

    @Test func whileTheAgentHoldsTheStoreTheImportSaysSo() throws {
        let (root, state) = try setUp(owner: 0)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let db = root + "/var/lib/flowmeter/accounting.db"
        let agent = try AccountingStore(path: db)   // the writer lock, as a running agent holds it
        defer { try? agent.close() }
        let r = try runProcess(Repo.flowmeterBinary, ["import", "--system-root", root, "--tor-state", state, "--relay", "guardA"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("the agent is running and holds the store"), "\(r.stderr)")
        #expect(r.stderr.contains("systemctl stop flowmeter"))
    }
}
