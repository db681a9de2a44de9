import FlowMeterCore
import Foundation

/// Where Debian's tor package keeps its relays, read when no `--torrc` is
/// given, and the defaults file Debian's service starts each one with:
///
/// - the main instance: `tor --defaults-torrc /usr/share/tor/tor-service-defaults-torrc
///   -f /etc/tor/torrc` (tor@default.service, /etc/init.d/tor and runit alike),
///   labelled `default` unless it sets a Nickname;
/// - every `tor-instance-create` instance: tor@NAME.service writes
///   /usr/share/tor/tor-service-defaults-torrc-instances with `@@NAME@@` replaced
///   by NAME, then runs `tor --defaults-torrc THAT -f /etc/tor/instances/NAME/torrc`;
///   labelled NAME unless it sets a Nickname.
///
/// The defaults files declare DataDirectory, ControlSocket and the cookie file,
/// so a stock relay's control socket is found with no flag. Where tor is not
/// installed (no defaults file), tor's own DataDirectory for the layout is
/// assumed. Every path is looked up under `root`, so tests use a temporary tree.
public struct DebianTorLayout: Sendable, Equatable {
    public var root: String
    public init(root: String = "/") { self.root = root.hasSuffix("/") ? String(root.dropLast()) : root }

    /// Debian's defaults for the main instance (package tor).
    public static let serviceDefaults = "/usr/share/tor/tor-service-defaults-torrc"
    /// Debian's template of the defaults for `tor-instance-create` instances.
    public static let instanceDefaults = "/usr/share/tor/tor-service-defaults-torrc-instances"

    /// One torrc to read, with the defaults tor applies to it.
    public struct Candidate: Sendable, Equatable {
        public var torrc: String
        /// The label when the torrc has no Nickname.
        public var name: String
        /// The DataDirectory when neither file sets one.
        public var dataDirectory: String
        /// The `--defaults-torrc` Debian's service passes, when installed.
        public var defaults: TorrcDefaults?
    }

    /// The torrc files that exist, main instance first, instances by name.
    public func candidates() -> [Candidate] {
        var out: [Candidate] = []
        let main = root + "/etc/tor/torrc"
        if FileManager.default.fileExists(atPath: main) {
            out.append(Candidate(torrc: main, name: "default", dataDirectory: root + "/var/lib/tor",
                                 defaults: installed(Self.serviceDefaults, instance: nil)))
        }
        let instances = root + "/etc/tor/instances"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: instances)) ?? []
        // tor-instance-create and tor's generator accept only [a-zA-Z0-9]+ names, never "default".
        for name in names.sorted(by: TorrcReader.lexical) where Self.isInstanceName(name) {
            let torrc = "\(instances)/\(name)/torrc"
            guard FileManager.default.fileExists(atPath: torrc) else { continue }
            out.append(Candidate(torrc: torrc, name: name, dataDirectory: root + "/var/lib/tor-instances/\(name)",
                                 defaults: installed(Self.instanceDefaults, instance: name)))
        }
        return out
    }

    /// A name tor-instance-create accepts (and tor's systemd generator starts).
    static func isInstanceName(_ name: String) -> Bool {
        !name.isEmpty && name != "default" && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }
    }

    private func installed(_ path: String, instance: String?) -> TorrcDefaults? {
        let full = root + path
        guard FileManager.default.fileExists(atPath: full) else { return nil }
        return TorrcDefaults(path: full, instanceName: instance)
    }

    /// The relays of this layout. A torrc without a listening ORPort is a tor
    /// client (Debian's stock /etc/tor/torrc), not a relay: it is left out,
    /// with a note for an instance (which is usually meant to be a relay).
    public func relays() throws(ConfigError) -> (relays: [TorInstance], warnings: [String]) {
        var relays: [TorInstance] = []
        var warnings: [String] = []
        for c in candidates() {
            let (relay, w) = try Torrc.relay(from: c.torrc, defaultName: c.name, defaultDataDirectory: c.dataDirectory,
                                             defaults: c.defaults)
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

/// A `--defaults-torrc` file: read before the torrc, which overrides it option
/// by option (`Torrc.layered`). `instanceName` replaces `@@NAME@@` in its text,
/// as Debian's tor@.service does before starting an instance.
public struct TorrcDefaults: Sendable, Equatable {
    public var path: String
    public var instanceName: String?
    public init(path: String, instanceName: String? = nil) { self.path = path; self.instanceName = instanceName }
}
