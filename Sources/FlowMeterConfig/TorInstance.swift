import FlowMeterCore

/// Tor's accounting options as read from a torrc, kept for quotas.
public struct TorAccountingSettings: Sendable, Equatable {
    public var maxBytes: UInt64
    public var start: String?
    public var rule: String?
    public var relayBandwidthRate: UInt64?
    public var bandwidthRate: UInt64?
    public init(maxBytes: UInt64, start: String? = nil, rule: String? = nil) {
        self.maxBytes = maxBytes; self.start = start; self.rule = rule
    }
}

/// What a torrc says about a relay instance beyond classification: where tor
/// keeps its state, its accounting options. The classification half is the
/// `HostModel.Relay` with the same name; members of that half read through.
@dynamicMemberLookup
public struct TorInstance: Sendable, Equatable {
    /// The relay as the classifier sees it (`name` is its label).
    public var relay: HostModel.Relay
    public var nickname: String? = nil
    public var dataDirectory: String? = nil
    /// The torrc this instance was read from.
    public var sourceFile: String? = nil
    public var accounting: TorAccountingSettings? = nil
    /// `TestingTorNetwork 1` (it changes defaults, e.g. CountPrivateBandwidth).
    public var testingTorNetwork = false
    /// Its control port, when FlowMeter may ask tor for its own figures.
    public var control: TorControlSettings? = nil

    public init(relay: HostModel.Relay) { self.relay = relay }

    public subscript<T>(dynamicMember path: WritableKeyPath<HostModel.Relay, T>) -> T {
        get { relay[keyPath: path] }
        set { relay[keyPath: path] = newValue }
    }
}
