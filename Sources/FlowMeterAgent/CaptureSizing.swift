import FlowMeterCore

/// How big each capture handle's kernel ring is when `agent.buffer_size` is
/// `auto` (the default).
///
/// A TPACKET_V3 ring is resident in full from the moment the handle opens
/// (the kernel allocates its blocks then), so it cannot grow with the
/// traffic as the flow tables do: it is sized once, for what the interface
/// can carry. 4 MiB per Gbit/s of link speed over all of an interface's
/// handles: at snaplen 128 a packet takes about 224 bytes of ring, so that
/// holds ~120 ms of a relay's usual mix at line rate (~800-byte packets on
/// average) and ~12 ms of a line-rate flood of minimum-size frames. A link
/// of unknown speed (virtio often reports none; veth and tun report one that
/// means nothing) counts as 1 Gbit/s. Each handle gets at least 1 MiB (four
/// of libpcap's 256 KiB blocks) and at most `agent.buffer_size_max`. Drops
/// are exported either way (`flowmeter_drops_total`).
public enum CaptureSizing {
    public static let bytesPerGbit = 4 << 20
    public static let minimumBytes = 1 << 20
    public static let unknownSpeedMbits = 1000

    /// The ring of each of `handles` handles on an interface of `speedMbits`
    /// (nil: unknown).
    public static func ringBytes(speedMbits: Int?, handles: Int, maximum: Int) -> Int {
        let mbits = speedMbits ?? unknownSpeedMbits
        let total = Int((Double(mbits) / 1000 * Double(bytesPerGbit)).rounded(.up))
        let share = (total + max(1, handles) - 1) / max(1, handles)
        // Whole MiB, as an operator would write it.
        let rounded = ((share + (1 << 20) - 1) >> 20) << 20
        return min(max(rounded, minimumBytes), max(maximum, minimumBytes))
    }

    /// The ring of each handle on `interface`: the configured size, or `auto`'s.
    public static func ringBytes(_ settings: AgentSettings, interface: String, handles: Int, sysfs: SysfsNet) -> Int {
        if let fixed = settings.bufferBytes { return fixed }
        return ringBytes(speedMbits: sysfs.linkSpeedMbits(interface), handles: handles, maximum: settings.bufferBytesMax)
    }
}
