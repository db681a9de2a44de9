import FlowMeterCore
/// Everything the command line names, loaded and checked before any capture.
public struct LoadedConfig: Sendable {
    public var model: HostModel
    /// The relays read from torrc files, named as in `model.relays`.
    public var torInstances: [TorInstance] = []
    public var configFile: ConfigFile?
    /// Problems that do not stop FlowMeter but change what it can tell apart.
    public var warnings: [String]
}

/// Builds the `HostModel` from `--torrc` files, `--config` and `--consensus`.
public enum ConfigLoader {
    /// - Parameter layout: where to look for torrc files when `torrcs` is
    ///   empty (Debian's tor layout); nil reads none.
    public static func load(torrcs: [String], consensus: String?, config: String?,
                            layout: DebianTorLayout? = nil) throws(ConfigError) -> LoadedConfig {
        var model = HostModel()
        var warnings: [String] = []
        var file: ConfigFile? = nil
        var instances: [TorInstance] = []
        if let config {
            let f = try ConfigFile.load(config)
            model.hostAddresses = f.hostAddresses
            if let r = f.ephemeralPorts { model.ephemeralPorts = r }
            if let p = f.relayPorts { model.relayPorts = p }
            if let p = f.directoryPorts { model.directoryPorts = p }
            model.resolvers = f.resolvers
            model.relays = f.relays
            file = f
        }
        let (read, w) = try torInstances(torrcs, layout: layout)
        warnings += w
        model.relays += read.map(\.relay)
        instances = read
        if file?.torControlPlainCookie == true {
            for i in instances.indices { instances[i].control?.plainCookie = true }
        }
        // Labels must be unique: a second instance with the same name is numbered.
        var used = Set<String>(["host"])
        for i in model.relays.indices {
            var name = model.relays[i].name
            var n = 2
            while used.contains(name) { name = "\(model.relays[i].name)-\(n)"; n += 1 }
            if name != model.relays[i].name {
                warnings.append("relay name '\(model.relays[i].name)' is used twice; the second is labelled '\(name)'")
            }
            // Relays from the config file come first, then one per torrc, in order.
            let t = i - (model.relays.count - instances.count)
            if t >= 0 { instances[t].name = name }
            model.relays[i].name = name
            used.insert(name)
        }
        if let consensus { model.consensus = try ConsensusFile.load(consensus) }
        if model.allLocalAddresses.isEmpty {
            warnings.append("no address of this host is known (give host.addresses in --config, or Address in a torrc): "
                + "directions and or_inbound vs or_outbound are guessed from ports")
        }
        return LoadedConfig(model: model, torInstances: instances, configFile: file, warnings: warnings)
    }

    /// The named torrc files, else the layout's relays. A named file that is
    /// also a layout path gets that layout's defaults (name, DataDirectory,
    /// the defaults torrc Debian's service reads before it).
    public static func torInstances(_ torrcs: [String], layout: DebianTorLayout?) throws(ConfigError) -> ([TorInstance], [String]) {
        guard !torrcs.isEmpty else { return try layout?.relays() ?? ([], []) }
        let known = layout?.candidates() ?? []
        var out: [TorInstance] = []
        var warnings: [String] = []
        for path in torrcs {
            let c = known.first { $0.torrc == path }
            let (relay, w) = try Torrc.relay(from: path, defaultName: c?.name,
                                             defaultDataDirectory: c?.dataDirectory, defaults: c?.defaults)
            warnings += w
            out.append(relay)
        }
        return (out, warnings)
    }
}
