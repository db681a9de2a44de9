import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension Agent {
    /// 3. Least privilege, before any capture thread exists. The state
    /// directory is made (systemd makes it for the unit) and, when root
    /// becomes `user`, handed over first. Started unprivileged (systemd's
    /// `User=` with an ambient CAP_NET_RAW), there is nothing to hand over:
    /// only the capabilities are cut down to CAP_NET_RAW.
    func dropPrivileges() throws(AgentError) {
        try makeStateDirectory()
        let account: PrivilegeDrop.Account
        do throws(PrivilegeError) {
            if let user = initial.settings.user {
                account = try PrivilegeDrop.lookUp(user: user)
            } else if getuid() != 0, let current = PrivilegeDrop.current() {
                account = current
            } else {
                return  // root, and no user asked for: stays root
            }
        } catch {
            throw .privileges(error)
        }
        // Checked before it is chowned: a link, a stranger's or a world-writable directory is refused.
        if geteuid() == 0, account.uid != 0, let dir = initial.stateDirectory,
           let refusal = StateDirectoryHandover.handOver(dir, uid: account.uid, gid: account.gid, user: account.name) {
            throw .stateDirectory(path: dir, reason: refusal)
        }
        do throws(PrivilegeError) {
            try PrivilegeDrop.drop(to: account)
        } catch {
            throw .privileges(error)
        }
        logger.info("running as \(account.name) (groups: \(PrivilegeDrop.groupNames().joined(separator: ", "))) with CAP_NET_RAW only")
    }

    private func makeStateDirectory() throws(AgentError) {
        guard let dir = initial.stateDirectory, !FileManager.default.fileExists(atPath: dir) else { return }
        // Parents with the usual mode (they are /var/lib in practice); the directory itself 0750.
        let parent = (dir as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        guard mkdir(dir, 0o750) == 0 || errno == EEXIST else {
            throw .stateDirectory(path: dir, reason: "cannot be created (\(errnoDescription(errno)))")
        }
    }

    /// The packaged unit starts the agent at nice -4 (Nice=-4) so that
    /// libdispatch's event thread, made by the first signal source, can take
    /// the priority it asks for without a privilege. Threads inherit the nice
    /// value of the thread that makes them, so the agent's own (capture, HTTP,
    /// store) are put back to 0 by resetting this thread before it makes any:
    /// on Linux, setpriority(PRIO_PROCESS, 0) changes the calling thread only.
    /// Raising a nice value needs no privilege.
    static func leaveRaisedPriority() {
        errno = 0
        let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        guard errno == 0, nice < 0 else { return }
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 0)
    }
}
