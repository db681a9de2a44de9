import Foundation
import ArgumentParser
import FlowMeterAgent
import FlowMeterExport
import FlowMeterReports
import FlowMeterStore
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCapture
import FlowMeterCore

/// The options every command that classifies traffic shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .customLong("torrc"), help: ArgumentHelp(
        "A relay instance's torrc (repeat per instance). Default: /etc/tor/torrc and every /etc/tor/instances/*/torrc that has an ORPort.",
        valueName: "FILE"))
    var torrcs: [String] = []

    @Option(help: ArgumentHelp("Tor's cached-consensus or cached-microdesc-consensus: which remote endpoints are relays.", valueName: "FILE"))
    var consensus: String?

    @Option(help: ArgumentHelp(
        "FlowMeter config file (YAML, docs/configuration.md). Default: \(ConfigOptions.installedConfig) when it exists "
            + "(the file the systemd unit runs with, so every command sees the agent's quotas); "
            + (FileManager.default.fileExists(atPath: ConfigOptions.installedConfig) ? "on this host it exists and is read." : "on this host it does not exist."),
        valueName: "FILE"))
    var config: String?

    /// The config file the package installs and the unit runs with.
    static let installedConfig = "/etc/flowmeter/flowmeter.yaml"

    /// The config file every command reads: `--config`, else the installed
    /// one under `systemRoot` when it exists, else none.
    var configFile: String? {
        if let config { return config }
        let installed = (systemRoot.hasSuffix("/") ? String(systemRoot.dropLast()) : systemRoot) + ConfigOptions.installedConfig
        return FileManager.default.fileExists(atPath: installed) ? installed : nil
    }

    /// Tests point this at a temporary tree: where /etc/tor/torrc,
    /// /etc/tor/instances and /var/lib/flowmeter are looked for.
    @Option(name: .customLong("system-root"), help: .hidden)
    var systemRoot: String = ConfigOptions.defaultSystemRoot

    /// `/`, or FLOWMETER_SYSTEM_ROOT: the test suite sets it so every command
    /// it runs is hermetic without naming a root on each command line.
    static var defaultSystemRoot: String { ProcessInfo.processInfo.environment["FLOWMETER_SYSTEM_ROOT"] ?? "/" }

    /// Debian's tor layout under `systemRoot`, read when no --torrc is given.
    var torLayout: DebianTorLayout { DebianTorLayout(root: systemRoot) }

    /// Loads everything or fails (exit 2) naming file, line and problem.
    /// - Parameter warn: print warnings about what classification cannot tell apart.
    func load(warn: Bool = true) throws -> LoadedConfig {
        do {
            let loaded = try loadConfig()
            if warn { for w in loaded.warnings { Diagnostics.warn(w) } }
            return loaded
        } catch {
            throw CommandFailure.configuration("\(error)")
        }
    }

    /// Loads everything; the error names file, line and problem (for a
    /// caller that reports it its own way, as `check` does on one line).
    func loadConfig() throws(ConfigError) -> LoadedConfig {
        try ConfigLoader.load(torrcs: torrcs, consensus: consensus, config: configFile, layout: torLayout)
    }

    /// The store `run` writes with this config and no --db: `store.path`,
    /// else `state_directory/accounting.db` (docs/configuration.md, "store:").
    func defaultStorePath() throws -> String {
        do { return try storePath() } catch {
            throw CommandFailure.configuration("\(error)")
        }
    }

    /// `defaultStorePath()` with the error as a value.
    func storePath() throws(ConfigError) -> String {
        let file = try configFile.map { path throws(ConfigError) in try ConfigFile.load(path) }
        let name = file?.path ?? "-"
        let agent = try AgentSettings.parse(file?.sections["agent"], file: name)
        let store = try StoreSettings.parse(file?.sections["store"], file: name)
        return store.resolvedPath(stateDirectory: agent.effectiveStateDirectory(root: systemRoot))
    }

    /// The config file's `agent:`, `surge:` and `store:` sections as `run`
    /// reads them: `replay` checks them too, so a value `run` would refuse
    /// is refused the same way (exit 2) before any capture is read.
    func serviceSettings(_ loaded: LoadedConfig) throws(ConfigError) -> (agent: AgentSettings, surge: SurgeSettings, store: StoreSettings) {
        let file = loaded.configFile?.path ?? "-"
        return (try AgentSettings.parse(loaded.configFile?.sections["agent"], file: file),
                try SurgeSettings.parse(loaded.configFile?.sections["surge"], file: file),
                try StoreSettings.parse(loaded.configFile?.sections["store"], file: file))
    }
}
