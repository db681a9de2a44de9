import FlowMeterCore
import FlowMeterCapture
import FlowMeterConfig
import FlowMeterAccounting
import FlowMeterStore
import FlowMeterReports
import FlowMeterExport
import CLinuxShim
import CPcapShim
#if canImport(Glibc)
import Glibc
#endif

/// Why the agent could not become its unprivileged user. Environmental: the
/// agent refuses to go on as root when a user was asked for.
public struct PrivilegeError: Error, CustomStringConvertible, Equatable {
    public var step: String
    public var errno: Int32
    public var description: String {
        "cannot drop privileges (\(step)): \(errno == 0 ? "no such user" : String(cString: strerror(errno)))"
    }
}

/// Becomes `user` once the capture handles are open, keeping exactly one
/// capability: CAP_NET_RAW, which re-opening an interface that vanished needs
/// (a packet socket cannot be created without it). Everything else goes:
/// root's uid and gids, every other capability, and with `no_new_privs` any
/// way back through exec.
///
/// Linux capabilities and the keep-caps flag belong to a thread. Call this on
/// the thread that will create the capture threads, before creating them:
/// threads started earlier (NIO's event loop, Dispatch's pool) are switched
/// to the user by glibc's set*id broadcast and keep no capability at all;
/// threads started later from this thread inherit CAP_NET_RAW.
public enum PrivilegeDrop {
    public struct Account: Sendable, Equatable {
        public var uid: uid_t
        public var gid: gid_t
        public var home: String
    }

    public static func lookUp(user: String) throws(PrivilegeError) -> Account {
        guard let pw = getpwnam(user) else { throw PrivilegeError(step: "getpwnam \(user)", errno: Glibc.errno) }
        return Account(uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid, home: String(cString: pw.pointee.pw_dir))
    }

    public static func drop(to account: Account, keepNetRaw: Bool = true) throws(PrivilegeError) {
        func check(_ rc: Int32, _ step: String) throws(PrivilegeError) {
            if rc != 0 { throw PrivilegeError(step: step, errno: rc == -1 ? Glibc.errno : rc) }
        }
        var groups = [account.gid]
        try check(setgroups(1, &groups), "setgroups")
        try check(setgid(account.gid), "setgid")
        try check(CLinuxShim_setKeepCapabilities(keepNetRaw ? 1 : 0), "PR_SET_KEEPCAPS")
        try check(setuid(account.uid), "setuid")
        let keep: UInt64 = keepNetRaw ? 1 << UInt64(CLinuxShim_capNetRaw) : 0
        try check(CLinuxShim_setCapabilities(keep), "capset")
        try check(CLinuxShim_setKeepCapabilities(0), "PR_SET_KEEPCAPS off")
        try check(CLinuxShim_setNoNewPrivileges(), "PR_SET_NO_NEW_PRIVS")
        // Prove it: getting root back must fail.
        if setuid(0) == 0 { throw PrivilegeError(step: "verify: setuid(0) still succeeds", errno: EPERM) }
    }

    /// The calling thread's effective capabilities, as a CAP_* bit mask.
    public static var effectiveCapabilities: UInt64 { CLinuxShim_effectiveCapabilities() }
}
