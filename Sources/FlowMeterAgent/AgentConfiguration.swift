import FlowMeterCore
import FlowMeterConfig
import FlowMeterAccounting
import FlowMeterStore
import FlowMeterTorControl
import Foundation

/// What the agent runs with: the host model (from torrc files and the config
/// file) and its own settings (the config file's `agent:` section).
public struct AgentConfiguration: Sendable {
    public var model: HostModel
    public var settings: AgentSettings
    /// The accounting store's file; nil keeps no history (`--no-db`).
    public var database: String?
    /// Bucket size and retention of the store (the config's `store:` section).
    public var storeConfiguration = StoreConfiguration()
    /// Where last-run.json goes, handed to `user`; created when missing.
    public var stateDirectory: String?
    /// Quotas evaluated for /metrics (needs `database`).
    public var quotas: [(Quota, QuotaStatus.TorInputs?)]
    /// Relays whose tor FlowMeter asks for its own figures (a control port in the torrc).
    public var torControl: [TorControlTarget]
    public init(model: HostModel, settings: AgentSettings, database: String? = nil,
                quotas: [(Quota, QuotaStatus.TorInputs?)] = [], torControl: [TorControlTarget] = []) {
        self.model = model; self.settings = settings; self.database = database; self.quotas = quotas
        self.torControl = torControl
        self.stateDirectory = settings.stateDirectory
    }
}

/// Why the agent cannot start. Environmental; the CLI exits with 1.
public enum AgentError: Error, CustomStringConvertible {
    case noInterfaces
    case noSuchInterface(missing: [String], available: [String])
    case missingCapability(String)
    case tokenFile(path: String, reason: String)
    case listen(address: String, reason: String)
    case privileges(PrivilegeError)
    case stateDirectory(path: String, reason: String)
    case store(path: String, reason: String)
    /// The final counts could not be written to the store at stop.
    case finalCountsNotStored(packets: UInt64, keptIn: String?)

    public var description: String {
        switch self {
        case .noInterfaces:
            return "no interface to capture: none carries a configured address, and this host has no address but loopback "
                + "and no default route; name them with -i or agent.interfaces"
        case .noSuchInterface(let missing, let available):
            return "no such interface: \(missing.joined(separator: ", ")); this host has \(available.joined(separator: ", "))"
        case .missingCapability(let cap):
            return "capturing needs \(cap), which this process does not have: run it as root (it drops to --user) or grant \(cap)"
        case .tokenFile(let p, let r): return "bearer token file \(p): \(r)"
        case .listen(let a, let r): return "\(a): \(r)"
        case .privileges(let e): return e.description
        case .stateDirectory(let p, let r): return "state directory \(p): \(r)"
        case .store(let p, let r):
            return "accounting store \(p): \(r) (set store.path, fix the directory's owner, or run with --no-db to keep no history)"
        case .finalCountsNotStored(let packets, let file?):
            return "the final counts (\(packets) packets) could not be written to the accounting store; they are kept in \(file) and the next start merges them"
        case .finalCountsNotStored(let packets, nil):
            return "the final counts (\(packets) packets) could not be written to the accounting store nor to a spill file: they are lost"
        }
    }
}
