import FlowMeterCore
import Foundation

/// Where Debian's tor package keeps its relays, read when no `--torrc` is
/// given: the main instance (`/etc/tor/torrc`, DataDirectory `/var/lib/tor`)
/// and every `tor-instance-create` instance (`/etc/tor/instances/NAME/torrc`,
/// DataDirectory `/var/lib/tor-instances/NAME`, labelled NAME unless it sets
/// a Nickname). Every path is under `root`, so tests use a temporary tree.
public struct DebianTorLayout: Sendable, Equatable {
    public var root: String
    public init(root: String = "/") { self.root = root.hasSuffix("/") ? String(root.dropLast()) : root }

    /// One torrc to read, with the defaults tor applies to it.
    public struct Candidate: Sendable, Equatable {
        public var torrc: String
        /// The label when the torrc has no Nickname.
        public var name: String
        public var dataDirectory: String
    }

    /// The torrc files that exist, main instance first, instances by name.
    public func candidates() -> [Candidate] {
        var out: [Candidate] = []
        let main = root + "/etc/tor/torrc"
        if FileManager.default.fileExists(atPath: main) {
            out.append(Candidate(torrc: main, name: "default", dataDirectory: root + "/var/lib/tor"))
        }
        let instances = root + "/etc/tor/instances"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: instances)) ?? []
        for name in names.sorted(by: TorrcReader.lexical) where !name.hasPrefix(".") {
            let torrc = "\(instances)/\(name)/torrc"
            guard FileManager.default.fileExists(atPath: torrc) else { continue }
            out.append(Candidate(torrc: torrc, name: name, dataDirectory: root + "/var/lib/tor-instances/\(name)"))
        }
        return out
    }

    /// The relays of this layout. A torrc without a listening ORPort is a tor
    /// client (Debian's stock /etc/tor/torrc), not a relay: it is left out,
    /// with a note for an instance (which is usually meant to be a relay).
    public func relays() throws(ConfigError) -> (relays: [TorInstance], warnings: [String]) {
        var relays: [TorInstance] = []
        var warnings: [String] = []
        for c in candidates() {
            let (relay, w) = try Torrc.relay(from: c.torrc, defaultName: c.name, defaultDataDirectory: c.dataDirectory)
            if relay.orListeners.isEmpty {
                if c.name != "default" { warnings.append("\(c.torrc): no listening ORPort, so not counted as a relay") }
                continue
            }
            relays.append(relay)
            warnings += w
        }
        return (relays, warnings)
    }
}
