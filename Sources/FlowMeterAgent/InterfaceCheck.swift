import Foundation

extension SysfsNet {
    /// Whether the kernel has an interface of this name now.
    public func exists(_ name: String) -> Bool {
        InterfaceSelection.isPlainName(name) && FileManager.default.fileExists(atPath: "\(root)/\(name)")
    }

    /// Every interface the kernel has, sorted, for the message that names a missing one.
    public func allInterfaces() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }
}

extension InterfaceSelection {
    /// No path separators: a name is looked up under /sys/class/net.
    static func isPlainName(_ name: String) -> Bool { !name.isEmpty && !name.contains("/") && name != "." && name != ".." }
}
