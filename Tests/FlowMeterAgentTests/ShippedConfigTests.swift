import Foundation
import Testing
import Yams
@testable import FlowMeterTestSupport
@testable import FlowMeterAgent

/// The package installs packaging/flowmeter.yaml as /etc/flowmeter/flowmeter.yaml:
/// every key the docs describe is in it, commented out, and uncommented it is
/// a valid configuration.
struct ShippedConfigTests {
    static let shipped = Repo.path("packaging/flowmeter.yaml")

    /// The file with every commented-out key or list item (`#key:`, `#  key:`,
    /// `#  #key:`, `#    - item`) uncommented; prose comments stay comments.
    static func uncommented() throws -> String {
        let text = try String(contentsOfFile: shipped, encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { raw -> String in
            guard raw.hasPrefix("#") else { return String(raw) }
            let indent = raw.dropFirst().prefix { $0 == " " }
            var rest = raw.dropFirst(1 + indent.count)
            if rest.hasPrefix("#") { rest = rest.dropFirst() }
            let name = rest.prefix { $0.isLowercase || $0 == "_" }
            let afterName = rest.dropFirst(name.count)
            let isKey = !name.isEmpty && (afterName == ":" || afterName.hasPrefix(": "))
            return isKey || rest.hasPrefix("- ") ? String(indent + rest) : String(raw)
        }.joined(separator: "\n")
    }

    /// (section, key) for every mapping key one level below the top, and the top-level keys.
    static func keys(_ node: Node?) -> Set<String> {
        var out = Set<String>()
        guard let mapping = node?.mapping else { return out }
        for (k, v) in mapping {
            let top = k.string ?? ""
            out.insert(top)
            for (k2, _) in v.mapping ?? [:] { out.insert(top + "." + (k2.string ?? "")) }
            for item in v.sequence ?? [] { for (k2, _) in item.mapping ?? [:] { out.insert(top + "[]." + (k2.string ?? "")) } }
        }
        return out
    }

    @Test func uncommentedTheShippedConfigIsValidForEveryParser() throws {
        let dir = makeTemporaryDirectory("shipped-config")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/flowmeter.yaml"
        try Self.uncommented().write(toFile: path, atomically: true, encoding: .utf8)
        let file = try ConfigFile.load(path)
        let agent = try AgentSettings.parse(file.sections["agent"], file: path)
        _ = try StoreSettings.parse(file.sections["store"], file: path)
        let surge = try SurgeSettings.parse(file.sections["surge"], file: path)
        // The commented values are the defaults.
        #expect(agent == AgentSettings().with { $0.user = "flowmeter"; $0.bearerTokenFile = "/etc/flowmeter/token"
            $0.bpfFilter = "not port 22"; $0.stateDirectory = "/var/lib/flowmeter" })
        #expect(surge == SurgeSettings())
        #expect(file.relays.map(\.name) == ["guard1"])
    }

    @Test func everyKeyTheDocsDescribeIsInTheShippedConfig() throws {
        let shipped = Self.keys(try Yams.compose(yaml: Self.uncommented()))
        var documented = Set<String>()
        for doc in ["docs/agent.md", "docs/configuration.md", "docs/storage.md", "docs/quotas.md"] {
            let text = try String(contentsOfFile: Repo.path(doc), encoding: .utf8)
            for block in text.split(separator: "```yaml\n").dropFirst() {
                guard let end = block.range(of: "```") else { continue }
                documented.formUnion(Self.keys(try Yams.compose(yaml: String(block[..<end.lowerBound]))))
            }
        }
        #expect(!documented.isEmpty)
        #expect(documented.subtracting(shipped).isEmpty, "documented but not in packaging/flowmeter.yaml: \(documented.subtracting(shipped).sorted())")
        #expect(Set(AgentSettings.appliers.keys.map { "agent." + $0 }).subtracting(shipped).isEmpty)
        for key in ["store.allow_fine_buckets", "agent.log_level", "surge.floor_attempts_per_second", "quotas"] {
            #expect(shipped.contains(key), "\(key)")
        }
    }
}

extension AgentSettings {
    fileprivate func with(_ change: (inout AgentSettings) -> Void) -> AgentSettings {
        var copy = self
        change(&copy)
        return copy
    }
}
