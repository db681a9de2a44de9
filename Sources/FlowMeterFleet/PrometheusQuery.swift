import FlowMeterExport
import FlowMeterFormat
import Foundation

/// One series of a query answer: its labels and its samples, oldest first.
public struct PromSeries: Sendable, Equatable {
    public var labels: [String: String]
    public var samples: [PromSample]
    public init(labels: [String: String], samples: [PromSample]) { self.labels = labels; self.samples = samples }
    public subscript(label: String) -> String? { labels[label] }
}

public struct PromSample: Sendable, Equatable {
    /// Seconds since 1970.
    public var time: Double
    public var value: Double
    public init(_ time: Double, _ value: Double) { self.time = time; self.value = value }
}

/// What `flowmeter fleet` asks a central store: the Prometheus HTTP query
/// API (`/api/v1/query`, `/api/v1/query_range`), which Prometheus and
/// VictoriaMetrics (single-node, or vmselect's `/select/N/prometheus`) serve
/// alike. A protocol so the evaluation is tested without a server.
public protocol PrometheusQuerying {
    /// An instant query at `time`: one sample per series, or every raw
    /// sample of a range selector (`metric[5m]`).
    func instant(_ expr: String, at time: Date) throws -> [PromSeries]
    /// A range query: samples at `start`, `start + step`, … up to `end`.
    func range(_ expr: String, start: Date, end: Date, step: TimeInterval) throws -> [PromSeries]
}

/// The query API over HTTP (`HTTPGetClient`), each request bounded by
/// what is left of an overall deadline.
public struct PrometheusQueryClient: PrometheusQuerying {
    public let http: HTTPGetClient
    public let deadline: Date

    /// `url`: the endpoint's base (`http://10.0.0.1:8428`, `http://prom:9090`);
    /// `bearerToken`: sent as `Authorization: Bearer …` when given.
    public init(url: String, bearerToken: String? = nil, deadline: Date) throws {
        guard let endpoint = HTTPGetClient.Endpoint(url: url) else {
            throw QueryError("--url '\(url)' is not http://HOST[:PORT][/PATH] (TLS is not spoken: use a tunnel or a local proxy)")
        }
        http = HTTPGetClient(endpoint: endpoint, headers: bearerToken.map { [("authorization", "Bearer \($0)")] } ?? [])
        self.deadline = deadline
    }

    public func instant(_ expr: String, at time: Date) throws -> [PromSeries] {
        try get("/api/v1/query", ["query": expr, "time": Self.seconds(time)])
    }

    public func range(_ expr: String, start: Date, end: Date, step: TimeInterval) throws -> [PromSeries] {
        // nocache: VictoriaMetrics would answer older ranges from its result
        // cache, which misses samples a vmagent replayed after an outage
        // (Prometheus ignores the parameter).
        try get("/api/v1/query_range", ["query": expr, "start": Self.seconds(start), "end": Self.seconds(end),
                                        "step": String(Int(step.rounded())), "nocache": "1"])
    }

    private func get(_ path: String, _ parameters: KeyValuePairs<String, String>) throws -> [PromSeries] {
        let left = deadline.timeIntervalSinceNow
        guard left > 0 else { throw QueryError("out of time before asking \(http.endpoint)") }
        let query = parameters.map { "\($0.key)=\(Self.formEncoded($0.value))" }.joined(separator: "&")
        let response: HTTPGetClient.Response
        do { response = try http.get("\(path)?\(query)", timeout: left) } catch {
            throw QueryError("\(error)")
        }
        return try QueryAnswer.decode(response.body, status: response.status, expr: parameters.first?.value ?? "")
    }

    static func seconds(_ d: Date) -> String { String(format: "%.3f", d.timeIntervalSince1970) }

    /// `application/x-www-form-urlencoded`: everything but unreserved characters escaped.
    static func formEncoded(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(b)))
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }
}

/// A query the store refused or could not answer; the text says which.
public struct QueryError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The query API's JSON answer (`{"status":"success","data":{"resultType":…,"result":…}}`).
/// Public for the Fuzz/ package's `prom-query` target: the body is whatever
/// the central store sent.
public enum QueryAnswer {
    /// The series of an answer, or a QueryError saying what the store sent.
    /// The error goes to the operator's terminal: what it quotes of the store
    /// is made printable and cut short, whatever the store sent.
    public static func decode(_ body: [UInt8], status: Int, expr: String) throws -> [PromSeries] {
        let answer: Answer
        do { answer = try JSONDecoder().decode(Answer.self, from: Data(body)) } catch {
            let text = Format.printable(String(decoding: body.prefix(200), as: UTF8.self), limit: 120)
            throw QueryError("HTTP \(status), not a query API answer: \(text)")
        }
        guard answer.status == "success", let data = answer.data else {
            let type = Format.printable(answer.errorType ?? "error", limit: 40)
            let reason = Format.printable(answer.error ?? "HTTP \(status)", limit: 300)
            throw QueryError("the store refused `\(expr)`: \(type): \(reason)")
        }
        return data.series
    }

    struct Answer: Decodable {
        var status: String
        var data: Payload?
        var errorType: String?
        var error: String?
    }

    struct Payload: Decodable {
        var series: [PromSeries]

        enum Keys: String, CodingKey { case resultType, result }
        struct Item: Decodable {
            var metric: [String: String]?
            var value: Pair?
            var values: [Pair]?
        }
        /// `[seconds, "value"]`: the value is a string so NaN and ±Inf survive.
        struct Pair: Decodable {
            var sample: PromSample
            init(from decoder: Decoder) throws {
                var c = try decoder.unkeyedContainer()
                let t = try c.decode(Double.self)
                let text = try c.decode(String.self)
                guard let v = Double(text) else {
                    throw DecodingError.dataCorruptedError(in: c, debugDescription: "'\(text)' is not a number")
                }
                sample = PromSample(t, v)
            }
        }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            switch try c.decode(String.self, forKey: .resultType) {
            case "vector", "matrix":
                series = try c.decode([Item].self, forKey: .result).map {
                    PromSeries(labels: $0.metric ?? [:], samples: ($0.values ?? $0.value.map { [$0] } ?? []).map(\.sample))
                }
            case "scalar":
                series = [PromSeries(labels: [:], samples: [try c.decode(Pair.self, forKey: .result).sample])]
            case let other:
                throw DecodingError.dataCorruptedError(forKey: .resultType, in: c, debugDescription: "result type \(other)")
            }
        }
    }
}

/// PromQL text built from values: label matchers with escaped strings.
public enum PromQL {
    /// A double-quoted PromQL string.
    public static func string(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\"" 
    }

    /// A regular expression matching exactly one of `values` (PromQL anchors it).
    public static func alternation(_ values: [String]) -> String {
        values.map { v in
            var out = ""
            for ch in v {
                if "\\.^$|?*+()[]{}".contains(ch) { out.append("\\") }
                out.append(ch)
            }
            return out
        }.joined(separator: "|")
    }

    /// `{host=~"a|b",category=~"…",relay="R"}` for a pool's members and scope.
    public static func selector(hosts: [String], categories: Set<String>?, relay: String?) -> String {
        var m = ["host=~" + string(alternation(hosts))]
        if let c = categories { m.append("category=~" + string(alternation(c.sorted()))) }
        if let r = relay { m.append("relay=" + string(r)) }
        return "{" + m.joined(separator: ",") + "}"
    }
}
