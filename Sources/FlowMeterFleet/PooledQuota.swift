import FlowMeterAccounting
import FlowMeterConfig
import Foundation
import Yams

/// A quota shared by several hosts: one limit, one period, one rule and one
/// scope over the traffic of every member host together (a provider that
/// pools an account's servers, or a budget for a whole relay family).
///
/// Declared once, in the config file's `pools:` list, with the quota grammar
/// plus `hosts=H1,H2,…` (docs/quotas.md, "Pooled quotas"). Members are
/// named by the `host` label every host's series carry at the central store.
/// A scope that names a relay (`tor:R`, `wire:…@R`) counts relay R on every
/// member host.
///
/// Invariants: at least one host, no host named twice, no host name with a
/// comma or a blank.
public struct PooledQuota: Sendable, Hashable {
    public var quota: Quota
    public var hosts: [String]

    public var name: String { quota.name }

    public init(quota: Quota, hosts: [String]) {
        self.quota = quota; self.hosts = hosts
    }

    /// Parses `NAME LIMIT PERIOD RULE [SCOPE] [tz=ZONE] hosts=H1,H2,…`: the
    /// `hosts=` token may stand anywhere after NAME; the rest is a quota spec.
    public init(spec: String, defaultZone: TimeZone) throws {
        var tokens = spec.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        let found = tokens.indices.filter { tokens[$0].hasPrefix("hosts=") }
        let name = tokens.first ?? ""
        guard found.count == 1, let at = found.first, at > 0 else {
            throw QuotaSpecError(found.count > 1
                ? "Pool '\(name)' names hosts= twice; list every member in one hosts=H1,H2,… token"
                : "Pool '\(name)' has no hosts=H1,H2,… (the `host` labels of its members)")
        }
        let list = tokens.remove(at: at).dropFirst("hosts=".count).split(separator: ",", omittingEmptySubsequences: false)
        var hosts: [String] = []
        for h in list.map(String.init) {
            guard !h.isEmpty else { throw QuotaSpecError("Pool '\(name)': an empty host name in hosts= (write hosts=relay-a,relay-b)") }
            guard !hosts.contains(h) else { throw QuotaSpecError("Pool '\(name)': host '\(h)' is listed twice") }
            hosts.append(h)
        }
        self.init(quota: try Quota(spec: tokens.joined(separator: " "), defaultZone: defaultZone), hosts: hosts)
    }

    /// The `pools:` list of a config file, each entry a string as above.
    /// Errors name the file and the entry's line; names must be unique.
    public static func load(_ config: ConfigFile, defaultZone: TimeZone) throws(ConfigError) -> [PooledQuota] {
        guard let node = config.sections["pools"] else { return [] }
        let nodes = YAMLNodes(file: config.path)
        var pools: [PooledQuota] = []
        for item in try nodes.sequence(node, "pools") {
            let spec = try nodes.string(item, "a pools entry")
            let pool: PooledQuota
            do { pool = try PooledQuota(spec: spec, defaultZone: defaultZone) } catch {
                throw nodes.error(item, "\(error)")
            }
            if pools.contains(where: { $0.name == pool.name }) {
                throw nodes.error(item, "pool '\(pool.name)' is declared twice")
            }
            pools.append(pool)
        }
        return pools
    }
}
