import ArgumentParser
import FlowMeterAgent
import FlowMeterExport
import FlowMeterTorControl
import FlowMeterReports
import FlowMeterStore
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterCapture
import FlowMeterCore
import Logging

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Count live traffic per category and serve it to Prometheus (docs/agent.md).",
        discussion: """
        Captures headers only on the named interfaces (default: those that carry the \
        configured addresses), drops to --user once the capture handles are open, and \
        serves /metrics and /api/v1/status (default 127.0.0.1:\(AgentSettings.defaultPort), \
        loopback clients only). SIGHUP reloads relays and the access policy; SIGTERM or \
        SIGINT stops and writes the final counters. With no flags it reads Debian's tor \
        layout (/etc/tor/torrc, /etc/tor/instances/*/torrc) and keeps hourly history in \
        STATE_DIRECTORY/accounting.db. Exit status: 0 after a clean stop; 1 when it cannot \
        start (interface, CAP_NET_RAW, listen address, token file, user, store); 2 for a \
        configuration error (file, line and problem are named).
        """
    )

    @OptionGroup var configOptions: ConfigOptions

    @Option(name: [.customShort("i"), .customLong("interface")],
            help: ArgumentHelp("Capture on this interface (repeat for more). Overrides agent.interfaces.", valueName: "IFACE"))
    var interfaces: [String] = []

    @Option(help: ArgumentHelp("Where to serve /metrics; overrides agent.listen.", valueName: "ADDR:PORT"))
    var listen: String?

    @Option(help: ArgumentHelp("Become this user once capture handles are open; overrides agent.user.", valueName: "NAME"))
    var user: String?

    @Option(name: .customLong("capture-threads"),
            help: ArgumentHelp("Capture handles per interface in one PACKET_FANOUT group (0: one per CPU); overrides agent.capture_threads.", valueName: "N"))
    var captureThreads: Int?

    @Option(help: ArgumentHelp("Accounting store (SQLite); overrides store.path. Default: STATE_DIRECTORY/accounting.db (docs/storage.md).", valueName: "FILE"))
    var db: String?

    @Flag(name: .customLong("no-db"), help: "Keep no history: count and serve /metrics only.")
    var noDB = false

    @Option(name: .customLong("quota"), help: ArgumentHelp("A quota exported on /metrics (as for forecast), besides the config's and the torrcs'. Repeatable.", valueName: "SPEC"))
    var quotas: [String] = []

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error or critical; overrides agent.log_level.", valueName: "LEVEL"))
    var logLevel: String?

    /// Command-line values the config file would also reject: exit 2, like it.
    func checkOptions() throws(ConfigError) {
        if noDB && (db != nil || !quotas.isEmpty) {
            throw ConfigError(file: "--no-db", "cannot be combined with --db or --quota: quotas are measured from the accounting store")
        }
        if let listen, AgentSettings.parseListen(listen) == nil {
            throw ConfigError(file: "--listen", "\(listen): expected ADDRESS:PORT, e.g. 127.0.0.1:\(AgentSettings.defaultPort) or [::1]:\(AgentSettings.defaultPort)")
        }
        if let n = captureThreads, !(0...64).contains(n) { throw ConfigError(file: "--capture-threads", "must be 0 to 64, got \(n)") }
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ConfigError(file: "--log-level", "'\(logLevel)': expected \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    /// The configuration with the command line's overrides applied; used at
    /// start and again on every SIGHUP. Errors name file, line and problem.
    func loadConfiguration() throws(ConfigError) -> (AgentConfiguration, warnings: [String]) {
        try checkOptions()
        let loaded = try ConfigLoader.load(torrcs: configOptions.torrcs, consensus: configOptions.consensus,
                                           config: configOptions.configFile, layout: configOptions.torLayout)
        let sections = try configOptions.serviceSettings(loaded)
        var settings = sections.agent
        settings.surge = sections.surge
        let storeSettings = sections.store
        applyOverrides(&settings)
        let stateDirectory = settings.effectiveStateDirectory(root: configOptions.systemRoot)
        let database = noDB ? nil : db ?? storeSettings.resolvedPath(stateDirectory: stateDirectory)
        let quotaList = database == nil ? [] : try QuotaOptions.quotaList(specs: quotas, loaded: loaded, zone: .current)
        var configuration = AgentConfiguration(model: loaded.model, settings: settings, database: database, quotas: quotaList,
                                               torControl: loaded.torInstances.compactMap(TorControlTarget.init))
        configuration.storeConfiguration = storeSettings.configuration
        configuration.stateDirectory = stateDirectory
        return (configuration, loaded.warnings)
    }

    private func applyOverrides(_ settings: inout AgentSettings) {
        if !interfaces.isEmpty { settings.interfaces = interfaces }
        if let listen, let (host, port) = AgentSettings.parseListen(listen) {
            settings.listenHost = host
            settings.listenPort = port
        }
        if let user { settings.user = user }
        if let captureThreads { settings.captureThreads = captureThreads }
        if let logLevel, let level = Logger.Level(rawValue: logLevel) { settings.logLevel = level }
    }

    func run() throws {
        let configuration: AgentConfiguration
        let warnings: [String]
        do { (configuration, warnings) = try loadConfiguration() } catch {
            throw CommandFailure.configuration("\(error)")
        }
        let logger = FlowMeterLogHandler.logger(level: configuration.settings.logLevel)
        for w in warnings { logger.warning("\(w)") }
        let reload: Agent.Loader = { [self] in try loadConfiguration().0 }
        do {
            let agent = try Agent(configuration: configuration, loader: reload, logger: logger)
            _ = try agent.run()
        } catch {
            logger.error("\(error)")
            throw ExitCode(1)
        }
    }
}
