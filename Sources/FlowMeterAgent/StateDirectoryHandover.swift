import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Handing the state directory to the agent's user before privileges are
/// dropped: root chowns it, so it must be the directory it appears to be.
/// Refused (and left as it is) when the path is a symbolic link or not a
/// directory, when someone other than root or the agent's user owns it, or
/// when anyone may write into it (a local user could have planted files the
/// agent would then own and trust). Opened with O_NOFOLLOW and changed
/// through that descriptor, so the path cannot be swapped between the check
/// and the chown.
enum StateDirectoryHandover {
    /// nil when `path` now belongs to `uid`:`gid`; else why it was refused.
    static func handOver(_ path: String, uid: uid_t, gid: gid_t, user: String) -> String? {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            var st = stat()
            if lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFLNK {
                return "is a symbolic link; refusing to hand it to \(user) (point state_directory at the real directory)"
            }
            if e == ENOTDIR { return "is not a directory" }
            return "cannot be opened (\(String(cString: strerror(e))))"
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return "cannot be examined (\(String(cString: strerror(errno))))" }
        guard st.st_uid == 0 || st.st_uid == uid else {
            return "is owned by uid \(st.st_uid), neither root nor \(user); refusing to hand it to \(user)"
        }
        guard st.st_mode & S_IWOTH == 0 else {
            return "is world-writable (mode \(String(st.st_mode & 0o7777, radix: 8))); refusing to hand it to \(user) (chmod o-w it)"
        }
        guard fchown(fd, uid, gid) == 0 else {
            return "cannot be handed to \(user) (\(String(cString: strerror(errno))))"
        }
        return nil
    }
}
