import FlowMeterCore
import Foundation

/// Reads relay endpoints from Tor's `cached-consensus` or
/// `cached-microdesc-consensus`: `r` lines carry the IPv4 address, ORPort and
/// DirPort (the last three fields in both flavours); `a` lines add IPv6 ORPorts
/// to the relay of the preceding `r` line (dir-spec §3.4.1).
public enum ConsensusFile {
    public static func load(_ path: String) throws(ConfigError) -> Consensus {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        // Consensus documents are ASCII; decode leniently so one odd byte in a
        // signature block does not reject the file.
        let text = String(decoding: data, as: UTF8.self)
        var consensus = Consensus()
        var sawHeader = false
        var inRelay = false
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.hasPrefix("network-status-version ") { sawHeader = true; continue }
            if line.hasPrefix("r ") {
                let f = line.split(separator: " ")
                // ns flavour: r nick id digest date time ip orport dirport (9)
                // microdesc:   r nick id date time ip orport dirport (8)
                guard f.count >= 8, let address = IPAddress(parsing: String(f[f.count - 3])),
                      let or = UInt16(f[f.count - 2]), let dir = UInt16(f[f.count - 1]) else {
                    throw ConfigError(file: path, line: i + 1, "malformed 'r' line")
                }
                consensus.relayCount += 1
                if or != 0 { consensus.orPorts.append((address, PortNumber(or))) }
                if dir != 0 { consensus.dirPorts.append((address, PortNumber(dir))) }
                inRelay = true
            } else if line.hasPrefix("a "), inRelay {
                switch EndpointSpec.parse(String(line.dropFirst(2))) {
                case .success(let spec) where spec.address != nil:
                    consensus.orPorts.append((spec.address!, spec.port))
                default:
                    throw ConfigError(file: path, line: i + 1, "malformed 'a' line")
                }
            } else if line.hasPrefix("directory-footer") {
                inRelay = false
            }
        }
        guard sawHeader else {
            throw ConfigError(file: path, "not a Tor consensus (no 'network-status-version' line)")
        }
        return consensus
    }
}
