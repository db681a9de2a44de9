import ArgumentParser
import FlowMeterAccounting
import FlowMeterConfig
import FlowMeterExport
import FlowMeterFleet
import FlowMeterFormat
import FlowMeterReports
import Foundation

/// `flowmeter fleet`: pooled quotas of many hosts, read from the central
/// store their series are sent to (deploy/fleet/README.md). The pools are the
/// config file's `pools:` list (docs/quotas.md, "Pooled quotas").
struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet",
        abstract: "Pooled quotas of a fleet of hosts, from the central Prometheus-compatible store.",
        discussion: "Pools are declared once, in the config file's pools: list. report, forecast and check ask --url's query API; rules prints the recording and alert rules for vmalert or Prometheus.",
        subcommands: [FleetReport.self, FleetForecast.self, FleetCheck.self, FleetRules.self])
}

/// What every `fleet` subcommand that reads the central store shares.
struct FleetOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The central store's query endpoint: http://HOST:PORT[/PATH] (VictoriaMetrics, vmselect's /select/0/prometheus, or Prometheus).",
                               valueName: "URL"))
    var url: String

    @OptionGroup var pools: FleetPoolOptions

    @Option(help: ArgumentHelp("A file holding a bearer token for the endpoint.", valueName: "FILE"))
    var bearerTokenFile: String?

    /// Tests evaluate at a fixed instant.
    @Option(help: .hidden) var now: String?

    func validate() throws {
        if HTTPGetClient.Endpoint(url: url) == nil { throw ValidationError("--url '\(url)' is not http://HOST[:PORT][/PATH]") }
        if let now, Format.parseISO8601(now) == nil { throw ValidationError("--now '\(now)' is not an ISO-8601 instant") }
    }

    var instant: Date { now.flatMap(Format.parseISO8601) ?? Date() }

    /// The client, bounded by `deadline`; an unreadable token file is a configuration error.
    func client(deadline: Date) throws -> PrometheusQueryClient {
        var token: String? = nil
        if let bearerTokenFile {
            do { token = try String(contentsOfFile: bearerTokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
                throw FleetFailure.configuration("\(bearerTokenFile): cannot be read")
            }
        }
        return try PrometheusQueryClient(url: url, bearerToken: token, deadline: deadline)
    }

    /// Every selected pool evaluated at `instant`.
    func evaluate(deadline: Date) throws -> [PoolStatus] {
        let list = try pools.load()
        let api = try client(deadline: deadline)
        let at = instant
        do { return try list.map { try PoolStatus.evaluate($0, api: api, now: at) } } catch let e as QueryError {
            throw FleetFailure.store("\(e)")
        }
    }
}

/// The config file and the pool selection (`rules` needs no store).
struct FleetPoolOptions: ParsableArguments {
    @Option(help: ArgumentHelp("FlowMeter config file with the pools: list.", valueName: "FILE"))
    var config: String = "/etc/flowmeter/flowmeter.yaml"

    @Option(help: ArgumentHelp("Only this pool (default: every pool).", valueName: "NAME"))
    var pool: String?

    @Option(help: ArgumentHelp("Zone for pool periods without tz= (default: this host's).", valueName: "ZONE"))
    var tz: String?

    func load() throws -> [PooledQuota] {
        let zone = tz.flatMap(TimeZone.init(identifier:)) ?? .current
        let all: [PooledQuota]
        do { all = try PooledQuota.load(try ConfigFile.load(config), defaultZone: zone) } catch {
            throw FleetFailure.configuration("\(error)")
        }
        guard !all.isEmpty else { throw FleetFailure.configuration("\(config): no pool (declare pools: in the config file, docs/quotas.md)") }
        guard let pool else { return all }
        guard let one = all.first(where: { $0.name == pool }) else {
            throw FleetFailure.configuration("no pool '\(pool)' in \(config); pools: \(all.map(\.name).joined(separator: ", "))")
        }
        return [one]
    }
}

/// Why a fleet command stops: configuration (exit 2) or the store (exit 3).
enum FleetFailure: Error, CustomStringConvertible {
    case configuration(String), store(String)
    var description: String {
        switch self {
        case .configuration(let m), .store(let m): return m
        }
    }

    /// Runs `body`, turning failures into a message and the exit code.
    static func exiting<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let f as FleetFailure {
            switch f {
            case .configuration(let m): throw CommandFailure.configuration(m)
            case .store(let m): throw CommandFailure.data(m)
            }
        } catch let e as QueryError {
            throw CommandFailure.data("\(e)")
        }
    }
}

struct FleetReport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Each pool's use this period, and each member host's part of it.")
    @OptionGroup var options: FleetOptions
    @Flag(help: "Print JSON: a list of pool objects (docs/quotas.md).") var json = false

    func run() throws {
        let pools = try FleetFailure.exiting { try options.evaluate(deadline: Date().addingTimeInterval(60)) }
        if json { print(try JSONStyle.string(pools.map(\.json))); return }
        print(pools.map(PoolText.report).joined(separator: "\n"), terminator: "")
    }
}

struct FleetForecast: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forecast",
        abstract: "Project each pool to the end of its period with FlowMeter's forecaster, on the pooled series.",
        discussion: "No projection exists before 30 minutes of data. Method and range are named in the output (docs/quotas.md).")
    @OptionGroup var options: FleetOptions
    @Flag(help: "Print JSON: a list of pool objects (docs/quotas.md).") var json = false

    func run() throws {
        let pools = try FleetFailure.exiting { try options.evaluate(deadline: Date().addingTimeInterval(60)) }
        if json { print(try JSONStyle.string(pools.map(\.json))); return }
        print(pools.map(PoolText.forecast).joined(separator: "\n"), terminator: "")
    }
}

struct FleetRules: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Print recording and alert rules for the pools (vmalert or Prometheus rule file).",
        discussion: "The rules hold each pool's period edges for about 100 periods; FlowMeterPoolRulesExpiring says when to run this again.")
    @OptionGroup var pools: FleetPoolOptions
    @Option(help: ArgumentHelp("Evaluation interval and resolution of the rules (e.g. 5m, 1m, 30s).", valueName: "DURATION"))
    var step: String = "5m"
    @Option(help: .hidden) var now: String?

    func validate() throws {
        guard let s = try? CheckPlugin.parseDuration(step), s >= 1, s == s.rounded() else {
            throw ValidationError("--step '\(step)' is not a whole number of seconds ≥ 1 (e.g. 5m, 30s)")
        }
    }

    func run() throws {
        let list = try FleetFailure.exiting { try pools.load() }
        let seconds = Int(try CheckPlugin.parseDuration(step))
        let at = now.flatMap(Format.parseISO8601) ?? Date()
        print(PoolRules.render(list, options: .init(stepSeconds: seconds, now: at, source: pools.config)), terminator: "")
    }
}
