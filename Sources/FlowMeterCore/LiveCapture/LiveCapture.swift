import CLinuxShim
import CPcapShim
#if canImport(Glibc)
import Glibc
#endif

/// How a live capture handle is opened. Defaults and their reasons are on
/// `AgentSettings`; this is the part the capture layer needs.
public struct LiveCaptureOptions: Sendable, Equatable {
    public var snaplen: Int
    public var bufferBytes: Int
    public var timeoutMilliseconds: Int
    public var bpfFilter: String?
    /// Handles per interface. With more than one, they join one
    /// PACKET_FANOUT group whose program hashes symmetrically
    /// (CLinuxShim_joinFanout: TCP by addresses and ports, the rest and
    /// every fragment by addresses), so each flow, with a UDP datagram's
    /// fragments, stays on one handle, whose decoder gives later fragments
    /// their first one's ports.
    public var handlesPerInterface: Int

    /// How long a capture thread that has just emptied its ring, with
    /// traffic flowing, sleeps before reading again, so that the kernel's
    /// blocks gather and one wake-up reads several. Without it each thread
    /// slept in poll() until the kernel retired the next block (libpcap's
    /// TPACKET_V3 blocks are 256 KiB: about 1,600 packets at snaplen 128),
    /// and perf on the veth benchmark put 10 % of the process's samples in
    /// that sleep-and-wake (`finish_task_switch` under `poll`): 1,844 polls
    /// for 3 M packets, where tcpdump, always a block behind, made 11.
    /// 10 ms with a ring of 16 MiB or more (the default is 32 MiB): at 1.5 M
    /// packets/s per thread (~300 MB/s of 128-byte snapshots) the sleep fills
    /// at most ~20 % of it. Smaller rings wait in poll() as before: with
    /// 4 MiB a 2 ms sleep was measured no better than a wake-up per block.
    public var gatherNanos: UInt64 {
        bufferBytes >= 16 << 20 ? 10_000_000 : 0
    }

    public init(snaplen: Int = 128, bufferBytes: Int = 32 << 20, timeoutMilliseconds: Int = 100,
                bpfFilter: String? = nil, handlesPerInterface: Int = 1) {
        self.snaplen = snaplen
        self.bufferBytes = bufferBytes
        self.timeoutMilliseconds = timeoutMilliseconds
        self.bpfFilter = bpfFilter
        self.handlesPerInterface = max(1, handlesPerInterface)
    }
}

/// A live libpcap handle on one interface, activated with TPACKET_V3 (libpcap
/// uses it whenever immediate mode is off and the kernel has it), not
/// promiscuous (a relay host counts its own traffic), nanosecond stamps.
///
/// Owned by one thread at a time; only `pcap_breakloop` on `pointer` may be called from another
/// thread (libpcap documents it as safe for that).
public final class LiveCaptureHandle {
    public let interface: String
    public let linkType: LinkType
    /// Warnings from `pcap_activate` (for example a promiscuous-mode note).
    public let activationWarning: String?
    package let pointer: OpaquePointer

    public init(interface: String, options: LiveCaptureOptions, fanoutGroup: UInt16?) throws(CaptureError) {
        self.interface = interface
        var errbuf = [CChar](repeating: 0, count: Int(CPcapShim_errbufSize))
        guard let h = pcap_create(interface, &errbuf) else {
            // Safe: libpcap NUL-terminates its error buffer, which is never empty (PCAP_ERRBUF_SIZE bytes).
            throw .interface(name: interface, reason: errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        func failure(_ what: String) -> CaptureError {
            let message = String(cString: pcap_geterr(h))
            pcap_close(h)
            return .interface(name: interface, reason: "\(what): \(message)")
        }
        _ = pcap_set_snaplen(h, Int32(options.snaplen))
        _ = pcap_set_promisc(h, 0)
        _ = pcap_set_timeout(h, Int32(options.timeoutMilliseconds))
        _ = pcap_set_buffer_size(h, Int32(clamping: options.bufferBytes))
        _ = pcap_set_immediate_mode(h, 0)
        _ = pcap_set_tstamp_precision(h, Int32(CPcapShim_tstampPrecisionNano))
        let rc = pcap_activate(h)
        if rc < 0 {
            let reason: String
            switch rc {
            case PCAP_ERROR_NO_SUCH_DEVICE: reason = "no such device"
            case PCAP_ERROR_PERM_DENIED: reason = "permission denied (needs CAP_NET_RAW)"
            case PCAP_ERROR_IFACE_NOT_UP: reason = "interface is down"
            default: reason = "activation failed"
            }
            throw failure(reason)
        }
        activationWarning = rc > 0 ? String(cString: pcap_geterr(h)) : nil
        if let filter = options.bpfFilter {
            var program = bpf_program()
            guard pcap_compile(h, &program, filter, 1, UInt32(bitPattern: CPcapShim_netmaskUnknown)) == 0 else {
                throw failure("BPF filter \"\(filter)\" does not compile")
            }
            defer { pcap_freecode(&program) }
            guard pcap_setfilter(h, &program) == 0 else { throw failure("BPF filter cannot be set") }
        }
        if let group = fanoutGroup {
            let err = CLinuxShim_joinFanout(pcap_fileno(h), group, pcap_datalink(h) == DLT_EN10MB ? 1 : 0)
            if err != 0 {
                pcap_close(h)
                throw .interface(name: interface, reason: "PACKET_FANOUT: \(String(cString: strerror(err)))")
            }
        }
        pointer = h
        linkType = LinkType(rawValue: pcap_datalink(h))
    }

    deinit { pcap_close(pointer) }

    /// Makes `pcap_dispatch` return at once (0 packets) when no block is
    /// ready; the capture loop then waits itself (`waitForPackets`). libpcap
    /// still polls the socket (without waiting) before saying so, so a
    /// vanished interface is reported as before.
    public func setNonblocking() -> String? {
        var errbuf = [CChar](repeating: 0, count: Int(CPcapShim_errbufSize))
        guard pcap_setnonblock(pointer, 1, &errbuf) == 0 else {
            // Safe: libpcap NUL-terminates its error buffer.
            return errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        return nil
    }

    /// Waits until the kernel has a block ready, the socket reports an error
    /// or hangup (the next dispatch reads and reports it), `wake` is
    /// signalled (then cleared) or a link event is queued on `links`.
    /// As libpcap's own wait for a TPACKET_V3 handle, an idle wait has no
    /// timeout when both signals exist: an idle agent does not wake up.
    /// Without a wake signal it waits at most 100 ms, without link events
    /// at most 1 s (the caller then checks the binding after every wait).
    public func waitForPackets(orUntil wake: WakeSignal, links: LinkEvents) {
        let timeout: Int32 = wake.descriptor < 0 ? 100 : (links.descriptor < 0 ? 1000 : -1)
        var fds = (pollfd(fd: pcap_fileno(pointer), events: Int16(POLLIN), revents: 0),
                   pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: links.descriptor, events: Int16(POLLIN), revents: 0))
        // Safe: a homogeneous tuple of three pollfd is laid out as an array of
        // three; poll ignores entries whose descriptor is negative.
        _ = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: pollfd.self, capacity: 3) { poll($0, 3, timeout) }
        }
        if fds.1.revents & Int16(POLLIN) != 0 { wake.clear() }
    }

    /// Whether the handle still captures the device that now carries its
    /// interface's name. A socket bound to a device that was deleted stays
    /// bound to nothing (index -1) for ever, even after a device of the
    /// same name comes back; libpcap checks only the name, so after quick
    /// flaps it may go on waiting on such a socket without an error.
    public var isBoundToLiveDevice: Bool {
        let bound = CLinuxShim_boundInterfaceIndex(pcap_fileno(pointer))
        return bound > 0 && UInt32(bound) == if_nametoindex(interface)
    }

    /// libpcap's counters for this handle (32-bit; see `WidenedCounter`).
    public func statistics() -> (received: UInt32, dropped: UInt32, interfaceDropped: UInt32)? {
        var st = pcap_stat()
        guard pcap_stats(pointer, &st) == 0 else { return nil }
        return (st.ps_recv, st.ps_drop, st.ps_ifdrop)
    }

    public var lastError: String { String(cString: pcap_geterr(pointer)) }
}

/// What a capture thread's idle wait also watches, so that a stop or a
/// reload ends a wait without a timeout (`pcap_breakloop` wakes only
/// libpcap's own poll). An eventfd; where the kernel refuses one
/// (descriptor -1) the wait times out every 100 ms instead.
public final class WakeSignal: Sendable {
    let descriptor: Int32

    public init() { descriptor = CLinuxShim_eventDescriptor() }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Ends the current wait on this signal, or the next one.
    public func signal() { if descriptor >= 0 { CLinuxShim_signalEvent(descriptor) } }

    /// Called by the waiter once woken.
    func clear() { if descriptor >= 0 { CLinuxShim_drainEvent(descriptor) } }
}

/// The kernel's link events (a device added, removed or changed), so that a
/// capture thread learns at once that its device may be gone, or that a
/// missing one is back, without polling. One socket per capture thread: the
/// kernel gives each its own copy of every event. Where the kernel refuses
/// the socket (descriptor -1), `takeEvents` always answers true and the
/// waits time out, so the caller checks regularly instead.
public final class LinkEvents: @unchecked Sendable {
    // @unchecked Sendable — Safe: the descriptor is immutable; only the
    // capture thread that owns it reads from it.
    let descriptor: Int32

    public init() { descriptor = CLinuxShim_linkEventSocket() }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Reads every queued event; true if there was one since the last call
    /// (or events were lost, or there is no socket): look again.
    public func takeEvents() -> Bool {
        descriptor < 0 || CLinuxShim_drainLinkEvents(descriptor) != 0
    }

    /// Sleeps up to `nanos`, less if a link event arrives or `wake` is
    /// signalled. Returns true if it ended on a link event.
    public func wait(nanos: UInt64, orUntil wake: WakeSignal) -> Bool {
        var fds = (pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0))
        let milliseconds = Int32(clamping: (nanos + 999_999) / 1_000_000)
        // Safe: a homogeneous tuple of two pollfd is laid out as an array of two.
        _ = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: pollfd.self, capacity: 2) { poll($0, 2, milliseconds) }
        }
        if fds.0.revents & Int16(POLLIN) != 0 { wake.clear() }
        return fds.1.revents & Int16(POLLIN) != 0
    }
}

/// A 64-bit total fed with snapshots of a 32-bit counter that wraps
/// (libpcap's `ps_drop` is a `u_int`): each observation adds the wrapping
/// difference from the previous one. Correct as long as fewer than 2^32 events
/// happen between two observations (the agent observes at least every second).
public struct WidenedCounter: Sendable, Equatable {
    public private(set) var total: UInt64 = 0
    private var last: UInt32 = 0
    public init() {}

    public mutating func observe(_ value: UInt32) {
        total &+= UInt64(value &- last)
        last = value
    }

    /// A new source (a reopened handle) starts again from zero.
    public mutating func restart() { last = 0 }
}

/// The fanout group for one interface of this process: the kernel matches
/// groups by id within a network namespace, so the id mixes the process id
/// (two agents must never share a group, or each would see half the packets)
/// with the interface index (a group is bound to one device).
public func fanoutGroupID(interfaceIndex: UInt32) -> UInt16 {
    UInt16(truncatingIfNeeded: UInt32(bitPattern: getpid()) &* 40503 &+ interfaceIndex &* 257)
}
