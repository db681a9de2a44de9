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
/// way back through exec. The user keeps its supplementary groups
/// (initgroups), so membership in `debian-tor` still opens tor's control
/// socket and cookie.
///
/// Already running as the user (systemd's `User=` with
/// `AmbientCapabilities=CAP_NET_RAW`), only the second half applies: every
/// capability but CAP_NET_RAW goes, the inheritable and ambient sets are
/// emptied, and `no_new_privs` is set.
///
/// Linux capabilities and the keep-caps flag belong to a thread. Call this on
/// the thread that will create the capture threads, before creating them:
/// threads started earlier (NIO's event loop, Dispatch's pool) are switched
/// to the user by glibc's set*id broadcast and keep no capability at all;
/// threads started later from this thread inherit CAP_NET_RAW.
public enum PrivilegeDrop {
    public struct Account: Sendable, Equatable {
        public var name: String
        public var uid: uid_t
        public var gid: gid_t
        public var home: String
    }

    public static func lookUp(user: String) throws(PrivilegeError) -> Account {
        guard let pw = getpwnam(user) else { throw PrivilegeError(step: "getpwnam \(user)", errno: Glibc.errno) }
        return Account(name: user, uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid, home: String(cString: pw.pointee.pw_dir))
    }

    /// The account the process runs as now (its real uid).
    public static func current() -> Account? { account(uid: getuid()) }

    /// The account with this uid, when /etc/passwd (or NSS) knows it.
    public static func account(uid: uid_t) -> Account? {
        guard let pw = getpwuid(uid) else { return nil }
        return Account(name: String(cString: pw.pointee.pw_name), uid: pw.pointee.pw_uid, gid: pw.pointee.pw_gid,
                       home: String(cString: pw.pointee.pw_dir))
    }

    public static func drop(to account: Account, keepNetRaw: Bool = true) throws(PrivilegeError) {
        if getuid() != account.uid || geteuid() != account.uid {
            try check(initgroups(account.name, account.gid), "initgroups \(account.name)")
            try check(setgid(account.gid), "setgid")
            try check(CLinuxShim_setKeepCapabilities(keepNetRaw ? 1 : 0), "PR_SET_KEEPCAPS")
            try check(setuid(account.uid), "setuid")
        }
        try keepOnly(netRaw: keepNetRaw)
        // Prove it: getting root back must fail.
        if account.uid != 0 && setuid(0) == 0 { throw PrivilegeError(step: "verify: setuid(0) still succeeds", errno: EPERM) }
    }

    /// Effective and permitted: CAP_NET_RAW alone (or nothing); inheritable
    /// and ambient: nothing; then `no_new_privs`. Only ever lowers what the
    /// thread holds, so it needs no privilege.
    public static func keepOnly(netRaw: Bool) throws(PrivilegeError) {
        let keep: UInt64 = netRaw ? 1 << UInt64(CLinuxShim_capNetRaw) : 0
        try check(CLinuxShim_setCapabilities(keep), "capset")
        try check(CLinuxShim_setKeepCapabilities(0), "PR_SET_KEEPCAPS off")
        try check(CLinuxShim_setNoNewPrivileges(), "PR_SET_NO_NEW_PRIVS")
    }

    /// The names of the groups the process is in, primary first.
    public static func groupNames() -> [String] {
        let count = getgroups(0, nil)
        var ids = [gid_t](repeating: 0, count: Int(max(count, 0)))
        let filled = ids.isEmpty ? 0 : getgroups(count, &ids)
        var out: [gid_t] = [getgid()]
        for id in ids.prefix(Int(max(filled, 0))) where !out.contains(id) { out.append(id) }
        return out.map { id in getgrgid(id).map { String(cString: $0.pointee.gr_name) } ?? String(id) }
    }

    private static func check(_ rc: Int32, _ step: String) throws(PrivilegeError) {
        if rc != 0 { throw PrivilegeError(step: step, errno: rc == -1 ? Glibc.errno : rc) }
    }

    /// The calling thread's effective capabilities, as a CAP_* bit mask.
    public static var effectiveCapabilities: UInt64 { CLinuxShim_effectiveCapabilities() }
}
