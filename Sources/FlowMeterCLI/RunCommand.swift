import ArgumentParser
import FlowMeterAgent
import FlowMeterExport
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
        SIGINT stops and writes the final counters. Exit status: 0 after a clean stop; \
        1 when it cannot start (listen address, token file, user); 2 for a configuration error.
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

    @Option(help: ArgumentHelp("Accounting store (SQLite): counts per hour, flushed every 60 s and on stop (docs/storage.md).", valueName: "FILE"))
    var db: String?

    @Option(name: .customLong("quota"), help: ArgumentHelp("A quota exported on /metrics (as for forecast; needs --db). Repeatable.", valueName: "SPEC"))
    var quotas: [String] = []

    func validate() throws {
        if !quotas.isEmpty && db == nil { throw ValidationError("--quota needs --db: quotas are measured from the accounting store") }
        if let listen, AgentSettings.parseListen(listen) == nil {
            throw ValidationError("--listen \(listen): expected ADDRESS:PORT, e.g. 127.0.0.1:\(AgentSettings.defaultPort) or [::1]:\(AgentSettings.defaultPort)")
        }
        if let n = captureThreads, !(0...64).contains(n) { throw ValidationError("--capture-threads must be 0 to 64") }
    }

    /// The configuration with the command line's overrides applied; used at
    /// start and again on every SIGHUP.
    func loadConfiguration() throws -> AgentConfiguration {
        let loaded = try configOptions.load()
        var settings: AgentSettings
        do {
            settings = try AgentSettings.parse(loaded.configFile?.sections["agent"], file: configOptions.config ?? "-")
        } catch {
            Diagnostics.error("configuration: \(error)")
            throw ExitCode(2)
        }
        if !interfaces.isEmpty { settings.interfaces = interfaces }
        if let listen, let (host, port) = AgentSettings.parseListen(listen) {
            settings.listenHost = host
            settings.listenPort = port
        }
        if let user { settings.user = user }
        if let captureThreads { settings.captureThreads = captureThreads }
        let quotaList = db == nil ? [] : try QuotaOptions.loadQuotas(specs: quotas, configOptions: configOptions,
                                                                    zone: .current, required: false)
        return AgentConfiguration(model: loaded.model, settings: settings, database: db, quotas: quotaList,
                                  torControl: loaded.torInstances.compactMap(TorControlTarget.init))
    }

    func run() throws {
        let logger = Logger(label: "flowmeter", factory: { label in StreamLogHandler.standardError(label: label) })
        let configuration = try loadConfiguration()
        let reload: Agent.Loader = { [self] in try loadConfiguration() }
        do {
            let agent = try Agent(configuration: configuration, loader: reload, logger: logger)
            _ = try agent.run()
        } catch {
            Diagnostics.error("\(error)")
            throw ExitCode(1)
        }
    }
}
