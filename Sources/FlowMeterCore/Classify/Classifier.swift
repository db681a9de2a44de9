/// Where one packet is counted: (relay instance, category, direction).
public struct CounterSlot: Equatable, Sendable {
    /// Index into `HostModel.relayLabels` (0 = the host itself).
    public var relay: Int
    public var category: Category
    public var direction: Direction
    public init(relay: Int, category: Category, direction: Direction) {
        self.relay = relay; self.category = category; self.direction = direction
    }
}

/// The hot-path form of `HostModel`: flat tables probed per packet, with no
/// allocation, no `String` and no `Hasher`. The rules it implements are
/// written out in docs/classification.md; the rule numbers below refer to it.
/// Immutable; a class so the hot path holds one reference, not ~30 words.
public final class Classifier: Sendable {
    private struct PortFlags {
        static let listener: UInt8 = 1
        static let relayPort: UInt8 = 2
        static let directoryPort: UInt8 = 4
        static let dns: UInt8 = 8
    }

    // Safe (Sendable): 65,536 flags written only inside `init`, read-only afterwards.
    private nonisolated(unsafe) let portFlags: UnsafeMutablePointer<UInt8>
    // Safe (Sendable): `relayCount` flags written only inside `init`, read-only afterwards.
    private nonisolated(unsafe) let countsPrivatePeers: UnsafeMutablePointer<Bool>
    private let localAddresses: EndpointTable   // (addr, 0) → 0 host / relay index
    private let listeners: EndpointTable        // (addr|zero, port) → relay << 1 | isDir
    /// What `listener(a, p, local: true)` answers for every local address `a`:
    /// the explicit listeners, then each address-less one spread over the
    /// local addresses (first entry wins, as in `listeners`). One probe
    /// settles a packet to our listener (see `classify`).
    private let localListeners: EndpointTable   // (local addr, port) → relay << 1 | isDir
    private let orOutboundOwner: EndpointTable  // (addr, 0) → relay index
    private let exitOwner: EndpointTable        // (addr, 0) → relay index
    private let resolvers: EndpointTable        // (addr, 0) → 0
    private let consensusOR: EndpointTable
    private let consensusDir: EndpointTable
    private let hasConsensus: Bool
    private let knowsLocalAddresses: Bool
    private let defaultRelay: Int
    private let ephemeralLow: UInt16
    private let ephemeralHigh: UInt16
    public let relayCount: Int
    /// Whether `classify` may take the listener shortcut (tests turn it off
    /// to check it against the full rules).
    let listenerShortcut: Bool

    public convenience init(_ model: HostModel) { self.init(model, listenerShortcut: true) }

    init(_ model: HostModel, listenerShortcut: Bool) {
        self.listenerShortcut = listenerShortcut
        var flags = [UInt8](repeating: 0, count: 65536)
        var listeners: [(IPAddress, PortNumber, Int32)] = []
        var orOut: [(IPAddress, PortNumber, Int32)] = []
        var exit: [(IPAddress, PortNumber, Int32)] = []
        for (i, relay) in model.relays.enumerated() {
            let index = Int32(i + 1)
            for l in relay.orListeners {
                flags[Int(l.port.rawValue)] |= PortFlags.listener
                listeners.append((l.address ?? .zero, l.port, index << 1))
            }
            for l in relay.dirListeners {
                flags[Int(l.port.rawValue)] |= PortFlags.listener
                listeners.append((l.address ?? .zero, l.port, index << 1 | 1))
            }
            for a in relay.orOutboundAddresses + relay.addresses { orOut.append((a, PortNumber(0), index)) }
            if relay.isExit { for a in relay.exitAddresses { exit.append((a, PortNumber(0), index)) } }
        }
        for p in model.relayPorts { flags[Int(p.rawValue)] |= PortFlags.relayPort }
        for p in model.directoryPorts { flags[Int(p.rawValue)] |= PortFlags.directoryPort }
        flags[53] |= PortFlags.dns
        portFlags = .allocate(capacity: 65536)
        portFlags.initialize(from: flags, count: 65536)
        self.listeners = EndpointTable(listeners)
        orOutboundOwner = EndpointTable(orOut)
        exitOwner = EndpointTable(exit)
        var local: [(IPAddress, PortNumber, Int32)] = []
        for a in model.hostAddresses { local.append((a, PortNumber(0), 0)) }
        for (i, relay) in model.relays.enumerated() {
            for a in relay.addresses + relay.orOutboundAddresses + relay.exitAddresses where !a.isUnspecified {
                local.append((a, PortNumber(0), Int32(i + 1)))
            }
            for l in relay.orListeners + relay.dirListeners {
                if let a = l.address, !a.isUnspecified { local.append((a, PortNumber(0), Int32(i + 1))) }
            }
        }
        localAddresses = EndpointTable(local)
        let explicit = listeners.filter { !$0.0.isUnspecified }  // each is in `local`
        let spread = listeners.filter { $0.0 == .zero }.flatMap { l in local.map { ($0.0, l.1, l.2) } }
        localListeners = EndpointTable(explicit + spread)
        knowsLocalAddresses = !local.isEmpty
        resolvers = EndpointTable(model.resolvers.map { ($0, PortNumber(0), 0) })
        if let c = model.consensus {
            hasConsensus = true
            consensusOR = EndpointTable(c.orPorts.map { ($0.0, $0.1, 0) })
            consensusDir = EndpointTable(c.dirPorts.map { ($0.0, $0.1, 0) })
        } else {
            hasConsensus = false
            consensusOR = EndpointTable()
            consensusDir = EndpointTable()
        }
        defaultRelay = model.relays.isEmpty ? 0 : 1
        ephemeralLow = model.ephemeralPorts.lowerBound
        ephemeralHigh = model.ephemeralPorts.upperBound
        relayCount = model.relays.count + 1
        countsPrivatePeers = .allocate(capacity: relayCount)
        countsPrivatePeers.initialize(from: [false] + model.relays.map(\.countsPrivatePeers), count: relayCount)
    }

    deinit {
        portFlags.deallocate()
        countsPrivatePeers.deallocate()
    }

    /// Whether the tor of relay index `relay` leaves `peer` out of its
    /// accounting: an internal address (`isTorInternal`), unless that relay
    /// counts private bandwidth. The flag is read only for internal peers, so
    /// a public peer costs nothing more. `relay` < `relayCount` (a slot's relay).
    @inline(__always)
    public func torIgnores(peer: IPAddress, relay: Int) -> Bool {
        // Safe: every slot's relay index is below `relayCount`.
        peer.isTorInternal && !countsPrivatePeers[relay]
    }

    /// Safe: every `PortNumber` (UInt16) indexes inside the 65,536 flags.
    @inline(__always)
    private func flags(_ p: PortNumber) -> UInt8 { portFlags[Int(p.rawValue)] }

    @inline(__always)
    private func isLocal(_ a: IPAddress) -> Bool { localAddresses.lookup(a, PortNumber(0)) >= 0 }

    /// Our listener at (address, port), as `relay << 1 | isDir`, or -1.
    @inline(__always)
    private func listener(_ a: IPAddress, _ p: PortNumber, local: Bool) -> Int32 {
        guard flags(p) & PortFlags.listener != 0 else { return -1 }
        let exact = listeners.lookup(a, p)
        if exact >= 0 { return exact }
        // A listener without an address accepts on every local address; with no
        // local address known at all, any address may be ours (rule 2, guess).
        guard local || !knowsLocalAddresses else { return -1 }
        return listeners.lookup(.zero, p)
    }

    /// The answer of rules 2 and 3 for a decoded IP packet (`outcome == .ip`)
    /// sent over TCP to our listener on a local address, or nil for any other
    /// packet. Always what `classify` answers for it, and cacheable.
    @inline(__always)
    func listenerSlot(_ s: PacketSummary) -> CounterSlot? {
        guard s.proto == .tcp && flags(s.dstPort) & PortFlags.listener != 0 else { return nil }
        let ours = localListeners.lookup(s.dst, s.dstPort)
        guard ours >= 0 else { return nil }
        return CounterSlot(relay: Int(ours >> 1), category: ours & 1 == 0 ? .orInbound : .dir, direction: .inbound)
    }

    /// Classifies a decoded packet (`outcome` is `.ip` or `.nonIP`).
    @inline(__always)
    public func classify(_ s: PacketSummary) -> CounterSlot {
        var cacheable = true
        return classify(s, cacheable: &cacheable)
    }

    /// Classifies `s`; clears `cacheable` when the answer depends on more than
    /// the packet's addresses, ports and protocol (the link layer's direction
    /// hint decides it), so a flow table may keep it only when it stays set.
    @inline(__always)
    func classify(_ s: PacketSummary, cacheable: inout Bool) -> CounterSlot {
        // Rule 1: frames that are not IP belong to the host.
        guard s.outcome == .ip else {
            cacheable = false
            return CounterSlot(relay: 0, category: .nonIP, direction: s.linkSaysOutgoing ? .outbound : .inbound)
        }
        // Rules 2 and 3 at once for a packet to our listener on a local
        // address: whatever the source, rule 2 then says inbound (dst is
        // local, and if src is local too dst's listener decides) and rule 3
        // says this listener. One probe instead of three for a new flow to
        // an ORPort, which is what a SYN flood is made of.
        if listenerShortcut, let slot = listenerSlot(s) { return slot }
        let ends = Ends(s, classifier: self)
        guard let inbound = ends.inbound else {
            // Neither end is known to be ours (foreign capture, mirror port).
            cacheable = false
            let inbound = !s.linkSaysOutgoing
            if knowsLocalAddresses {
                return CounterSlot(relay: 0, category: .other, direction: inbound ? .inbound : .outbound)
            }
            return classifyRemote(s, ends.oriented(inbound: inbound))
        }
        return classifyRemote(s, ends.oriented(inbound: inbound))
    }

    /// Rule 2's inputs: which ends are ours, and which are our listeners.
    struct Ends {
        let srcLocal: Bool, dstLocal: Bool
        /// Listener codes (relay << 1 | isDir), -1 for none; TCP only.
        let srcListener: Int32, dstListener: Int32

        @inline(__always)
        init(_ s: PacketSummary, classifier c: Classifier) {
            let tcp = s.proto == .tcp
            srcLocal = c.isLocal(s.src)
            dstLocal = c.isLocal(s.dst)
            dstListener = tcp ? c.listener(s.dst, s.dstPort, local: dstLocal) : -1
            srcListener = tcp ? c.listener(s.src, s.srcPort, local: srcLocal) : -1
        }

        /// Rule 2: which end is ours decides the direction; nil when neither is.
        var inbound: Bool? {
            if dstLocal != srcLocal { return dstLocal }
            if dstListener >= 0 { return true }
            if srcListener >= 0 { return false }
            if dstLocal { return true }  // both ends local: counted once, as received
            return nil
        }

        @inline(__always)
        func oriented(inbound: Bool) -> Oriented {
            Oriented(inbound: inbound, ourListener: inbound ? dstListener : srcListener)
        }
    }

    /// A packet seen from our end: the direction, and our listener if any.
    struct Oriented {
        let inbound: Bool
        let ourListener: Int32
        var direction: Direction { inbound ? .inbound : .outbound }
        func ourAddress(_ s: PacketSummary) -> IPAddress { inbound ? s.dst : s.src }
        func ourPort(_ s: PacketSummary) -> PortNumber { inbound ? s.dstPort : s.srcPort }
        func remoteAddress(_ s: PacketSummary) -> IPAddress { inbound ? s.src : s.dst }
        func remotePort(_ s: PacketSummary) -> PortNumber { inbound ? s.srcPort : s.dstPort }
    }

    /// Rules 3–7 once the direction is known.
    @inline(__always)
    private func classifyRemote(_ s: PacketSummary, _ o: Oriented) -> CounterSlot {
        if s.proto == .tcp, let slot = relayTraffic(s, o) { return slot }
        if s.proto == .tcp || s.proto == .udp {
            if let slot = dnsOrExit(s, o) { return slot }
        } else if resolvers.lookup(o.remoteAddress(s), PortNumber(0)) >= 0 {
            return CounterSlot(relay: 0, category: .dns, direction: o.direction)
        }
        // Rule 7: everything else the host does.
        return CounterSlot(relay: 0, category: .other, direction: o.direction)
    }

    /// Rule 3: our ORPort or DirPort. Rule 4: a remote relay's ORPort or
    /// DirPort (from the consensus, else from the port lists).
    @inline(__always)
    private func relayTraffic(_ s: PacketSummary, _ o: Oriented) -> CounterSlot? {
        if o.ourListener >= 0 {
            return CounterSlot(relay: Int(o.ourListener >> 1), category: o.ourListener & 1 == 0 ? .orInbound : .dir,
                               direction: o.direction)
        }
        let remoteAddress = o.remoteAddress(s), remotePort = o.remotePort(s)
        let remoteIsOR: Bool
        let remoteIsDir: Bool
        if hasConsensus {
            remoteIsOR = consensusOR.lookup(remoteAddress, remotePort) >= 0
            remoteIsDir = !remoteIsOR && consensusDir.lookup(remoteAddress, remotePort) >= 0
        } else {
            let f = flags(remotePort)
            remoteIsOR = f & PortFlags.relayPort != 0
            remoteIsDir = !remoteIsOR && f & PortFlags.directoryPort != 0
        }
        guard remoteIsOR || remoteIsDir else { return nil }
        let owner = orOutboundOwner.lookup(o.ourAddress(s), PortNumber(0))
        return CounterSlot(relay: owner >= 0 ? Int(owner) : defaultRelay,
                           category: remoteIsOR ? .orOutbound : .dir, direction: o.direction)
    }

    /// Rule 5: DNS, by port 53 on either end or a configured resolver.
    /// Rule 6: exit, from an exit relay's address and an ephemeral port.
    @inline(__always)
    private func dnsOrExit(_ s: PacketSummary, _ o: Oriented) -> CounterSlot? {
        let ourPort = o.ourPort(s)
        if flags(o.remotePort(s)) & PortFlags.dns != 0 || flags(ourPort) & PortFlags.dns != 0
            || resolvers.lookup(o.remoteAddress(s), PortNumber(0)) >= 0 {
            return CounterSlot(relay: 0, category: .dns, direction: o.direction)
        }
        if ourPort.rawValue >= ephemeralLow && ourPort.rawValue <= ephemeralHigh {
            let owner = exitOwner.lookup(o.ourAddress(s), PortNumber(0))
            if owner >= 0 { return CounterSlot(relay: Int(owner), category: .exit, direction: o.direction) }
        }
        return nil
    }
}
