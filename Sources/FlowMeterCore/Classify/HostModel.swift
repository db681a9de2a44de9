/// What the classifier needs to know about the host it watches: relay
/// instances with their listeners and addresses, the host's own addresses,
/// ports and resolvers. The control plane (FlowMeterConfig) builds it from
/// torrc files, the config file, a consensus and interface addresses;
/// immutable once built, the hot path sees it only through `Classifier`.
public struct HostModel: Sendable, Equatable {
    /// One Tor relay instance on this host.
    public struct Relay: Sendable, Equatable {
        public var name: String
        public var orListeners: [Listener] = []
        public var dirListeners: [Listener] = []
        /// Addresses this instance uses (Address, ORPort addresses, OutboundBind*).
        public var addresses: [IPAddress] = []
        /// Source addresses of its connections to other relays (OutboundBindAddressOR,
        /// else OutboundBindAddress).
        public var orOutboundAddresses: [IPAddress] = []
        /// Source addresses of its exit connections (OutboundBindAddressExit, else
        /// OutboundBindAddress, else its Address) — only if it is an exit.
        public var exitAddresses: [IPAddress] = []
        public var isExit = false
        /// Whether this instance's tor counts peers at internal addresses in its
        /// accounting (`CountPrivateBandwidth 1`, or `TestingTorNetwork 1`
        /// which makes that the default; docs/quotas.md, "Which peers tor counts").
        public var countsPrivatePeers = false
        public init(name: String) { self.name = name }
    }

    /// A listening socket: a specific address, or any local address when `address` is nil.
    public struct Listener: Sendable, Equatable {
        public var address: IPAddress?
        public var port: PortNumber
        public init(address: IPAddress?, port: PortNumber) { self.address = address; self.port = port }
    }

    public var relays: [Relay] = []
    /// Addresses of this host that belong to no particular relay.
    public var hostAddresses: [IPAddress] = []
    /// Remote ports treated as other relays' ORPorts when no consensus is loaded.
    public var relayPorts: [PortNumber] = [PortNumber(9001)]
    /// Remote ports treated as directory ports when no consensus is loaded.
    public var directoryPorts: [PortNumber] = [PortNumber(9030)]
    /// Resolver addresses: any traffic to them is `dns`.
    public var resolvers: [IPAddress] = []
    /// The host's ephemeral (client) port range: exit connections originate here.
    public var ephemeralPorts: ClosedRange<UInt16> = 32768...60999
    /// Relays' ORPort and DirPort endpoints from a consensus, if one was loaded.
    public var consensus: Consensus? = nil

    public init() {}

    /// Every address known to be this host's.
    public var allLocalAddresses: [IPAddress] {
        var seen = Set<IPAddress>()
        var out: [IPAddress] = []
        for a in hostAddresses + relays.flatMap({ $0.addresses + $0.orOutboundAddresses + $0.exitAddresses })
            + relays.flatMap({ ($0.orListeners + $0.dirListeners).compactMap(\.address) })
        where !a.isUnspecified && seen.insert(a).inserted {
            out.append(a)
        }
        return out
    }

    /// Label values: index 0 is the host itself, then each relay in order.
    public var relayLabels: [String] { ["host"] + relays.map(\.name) }
}

/// The relay endpoints a consensus names.
public struct Consensus: Sendable, Equatable {
    public var orPorts: [(IPAddress, PortNumber)] = []
    public var dirPorts: [(IPAddress, PortNumber)] = []
    public var relayCount = 0
    public init() {}

    public static func == (a: Consensus, b: Consensus) -> Bool {
        a.relayCount == b.relayCount && a.orPorts.elementsEqual(b.orPorts, by: ==) && a.dirPorts.elementsEqual(b.dirPorts, by: ==)
    }
}
