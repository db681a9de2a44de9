import Foundation
import Testing
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// `buffer_size: auto`: 4 MiB per Gbit/s of link speed over an interface's
/// handles, 1 MiB to `buffer_size_max` each; an unknown speed counts as 1 Gbit/s.
struct CaptureSizingTests {
    @Test(arguments: [
        (nil as Int?, 2, 2 << 20),      // unknown (veth, tun, most virtio): 1 Gbit/s
        (1000, 1, 4 << 20),
        (1000, 4, 1 << 20),
        (100, 2, 1 << 20),              // never below 1 MiB
        (10_000, 2, 20 << 20),
        (100_000, 2, 32 << 20),         // never above the maximum
        (2500, 2, 5 << 20),
    ])
    func theRingFollowsTheLinkSpeedWithinItsBounds(speed: Int?, handles: Int, bytes: Int) {
        #expect(CaptureSizing.ringBytes(speedMbits: speed, handles: handles, maximum: 32 << 20) == bytes)
    }

    @Test func aConfiguredSizeIsTakenAsItIs() {
        var s = AgentSettings()
        s.bufferBytes = 64 << 20
        #expect(CaptureSizing.ringBytes(s, interface: "eth0", handles: 2, sysfs: SysfsNet(root: "/nonexistent")) == 64 << 20)
    }

    /// A copy of /sys/class/net: eth0 with hardware (10 Gbit/s), a bridge
    /// over it, and a veth that claims 10 Gbit/s with nothing behind it.
    @Test func theSpeedIsReadFromHardwareOrTheDevicesBelowAndAVethHasNone() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("sysfs-\(getpid())-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        func device(_ name: String, speed: String, hardware: Bool, lower: [String] = []) throws {
            try FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
            try speed.write(toFile: "\(root)/\(name)/speed", atomically: true, encoding: .utf8)
            if hardware { try FileManager.default.createDirectory(atPath: "\(root)/\(name)/device", withIntermediateDirectories: true) }
            for l in lower { try FileManager.default.createSymbolicLink(atPath: "\(root)/\(name)/lower_\(l)", withDestinationPath: "../\(l)") }
        }
        try device("eth0", speed: "10000\n", hardware: true)
        try device("br0", speed: "-1\n", hardware: false, lower: ["eth0"])
        try device("veth0", speed: "10000\n", hardware: false)
        try device("ens3", speed: "-1\n", hardware: true)
        let sysfs = SysfsNet(root: root)
        #expect(sysfs.linkSpeedMbits("eth0") == 10_000)
        #expect(sysfs.linkSpeedMbits("br0") == 10_000)
        #expect(sysfs.linkSpeedMbits("veth0") == nil)
        #expect(sysfs.linkSpeedMbits("ens3") == nil)
        #expect(CaptureSizing.ringBytes(AgentSettings(), interface: "veth0", handles: 2, sysfs: sysfs) == 2 << 20)
        #expect(CaptureSizing.ringBytes(AgentSettings(), interface: "br0", handles: 2, sysfs: sysfs) == 20 << 20)
    }
}
