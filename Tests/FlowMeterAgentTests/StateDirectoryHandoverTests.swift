import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// Root hands the state directory to the agent's user only after checking
/// what it holds: a symbolic link, a directory someone else owns or one
/// anyone may write into is refused, with the reason, and left unchanged.
@Suite(.enabled(if: getuid() == 0, "chown needs root; these tests skip when not run as root"))
struct StateDirectoryHandoverTests {
    static let agentUID: uid_t = 4_321
    static let agentGID: gid_t = 4_321

    func owner(_ path: String) -> uid_t {
        var st = stat()
        return lstat(path, &st) == 0 ? st.st_uid : .max
    }

    @Test func aDirectoryOfRootIsHandedToTheAgentsUser() throws {
        let dir = makeTemporaryDirectory("handover-ok") + "/state"
        #expect(mkdir(dir, 0o750) == 0)
        #expect(StateDirectoryHandover.handOver(dir, uid: Self.agentUID, gid: Self.agentGID, user: "flowmeter") == nil)
        #expect(owner(dir) == Self.agentUID)
        // Again, now that the agent's user owns it (a restart).
        #expect(StateDirectoryHandover.handOver(dir, uid: Self.agentUID, gid: Self.agentGID, user: "flowmeter") == nil)
    }

    @Test func aSymbolicLinkIsRefusedAndItsTargetKeepsItsOwner() throws {
        let base = makeTemporaryDirectory("handover-link")
        let target = base + "/elsewhere", link = base + "/state"
        #expect(mkdir(target, 0o750) == 0)
        #expect(symlink(target, link) == 0)
        let refusal = StateDirectoryHandover.handOver(link, uid: Self.agentUID, gid: Self.agentGID, user: "flowmeter")
        #expect(refusal?.contains("is a symbolic link") == true, "\(refusal ?? "nil")")
        #expect(owner(target) == 0)
    }

    @Test func aDirectoryOwnedBySomeoneElseIsRefused() throws {
        let dir = makeTemporaryDirectory("handover-stranger") + "/state"
        #expect(mkdir(dir, 0o750) == 0)
        #expect(chown(dir, 7_777, 7_777) == 0)
        let refusal = StateDirectoryHandover.handOver(dir, uid: Self.agentUID, gid: Self.agentGID, user: "flowmeter")
        #expect(refusal == "is owned by uid 7777, neither root nor flowmeter; refusing to hand it to flowmeter")
        #expect(owner(dir) == 7_777)
    }

    @Test func aWorldWritableDirectoryIsRefused() throws {
        let dir = makeTemporaryDirectory("handover-writable") + "/state"
        #expect(mkdir(dir, 0o755) == 0)
        #expect(chmod(dir, 0o777) == 0)
        let refusal = StateDirectoryHandover.handOver(dir, uid: Self.agentUID, gid: Self.agentGID, user: "flowmeter")
        #expect(refusal?.hasPrefix("is world-writable (mode 777)") == true, "\(refusal ?? "nil")")
        #expect(owner(dir) == 0)
    }

    @Test func aFileIsNotAStateDirectory() throws {
        let file = makeTemporaryDirectory("handover-file") + "/state"
        #expect(FileManager.default.createFile(atPath: file, contents: Data()))
        #expect(StateDirectoryHandover.handOver(file, uid: Self.agentUID, gid: Self.agentGID, user: "flowmeter") == "is not a directory")
    }
}

/// The agent started as root with --user stops at once (exit 1) naming the
/// state directory and why it was not handed over.
@Suite(.enabled(if: getuid() == 0 && getpwnam("nobody") != nil, "needs root and the user nobody"))
struct StateDirectoryRefusalRunTests {
    @Test func theAgentExitsOneWhenTheStateDirectoryIsWorldWritable() throws {
        let root = makeTemporaryDirectory("handover-run")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let state = root + "/var/lib/flowmeter"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        #expect(chmod(state, 0o777) == 0)
        let port = 20_000 + Int(getpid() % 20_000) + Int.random(in: 0..<5_000)
        let r = try runProcess(Repo.flowmeterBinary, ["run", "--system-root", root, "-i", "lo", "--user", "nobody",
                                                      "--listen", "127.0.0.1:\(port)"], timeout: 30)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("state directory \(state): is world-writable (mode 777)"), "\(r.stderr)")
        var st = stat()
        #expect(lstat(state, &st) == 0 && st.st_uid == 0)
    }
}
