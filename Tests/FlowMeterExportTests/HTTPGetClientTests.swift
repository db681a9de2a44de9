import Foundation
import Testing
@testable import FlowMeterExport
import FlowMeterTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The NIO GET client, against the agent's own listener on loopback: whole
/// answers, status codes, the token header, a size cap, and bounded waits
/// when nobody listens or nobody answers.
struct HTTPGetClientTests {
    static func server(token: String? = nil) throws -> MetricsServer {
        let body = Array(String(repeating: "flowmeter_bytes_total 1\n", count: 20_000).utf8)
        let endpoint = HTTPEndpoint(access: .init(policy: .loopbackOnly, token: token), metrics: { body },
                                    status: { Data("{\"ok\":true}".utf8) })
        return try MetricsServer(host: "127.0.0.1", port: 0, endpoint: endpoint)
    }

    @Test func endpointsAreHttpUrlsWithAnOptionalPortAndBasePath() {
        let e = HTTPGetClient.Endpoint(url: "http://10.0.0.1:8428/select/0/prometheus/")
        #expect(e == HTTPGetClient.Endpoint(url: "http://10.0.0.1:8428/select/0/prometheus"))
        #expect(e?.basePath == "/select/0/prometheus" && e?.port == 8428 && e?.host == "10.0.0.1")
        #expect(HTTPGetClient.Endpoint(url: "http://[::1]:9090")?.host == "::1")
        #expect(HTTPGetClient.Endpoint(url: "http://prom")?.port == 80)
        for bad in ["https://prom:9090", "prom:9090", "http://:9090", "http://prom:9090/?q=1", "http://u:p@prom:9090", "http://prom:99999"] {
            #expect(HTTPGetClient.Endpoint(url: bad) == nil, "\(bad)")
        }
    }

    @Test func aWholeAnswerArrivesWithItsStatusAndTheTokenIsSent() throws {
        let s = try Self.server(token: "t0k")
        defer { s.close() }
        let endpoint = HTTPGetClient.Endpoint(url: "http://127.0.0.1:\(s.boundPort)")!
        let refused = try HTTPGetClient(endpoint: endpoint).get("/metrics", timeout: 5)
        #expect(refused.status == 401)
        let client = HTTPGetClient(endpoint: endpoint, headers: [("authorization", "Bearer t0k")])
        let metrics = try client.get("/metrics", timeout: 5)
        #expect(metrics.status == 200 && metrics.body.count == 20_000 * 24)
        #expect(metrics.contentType?.hasPrefix("text/plain") == true)
        #expect(try client.get("/api/v1/status", timeout: 5).body == Array("{\"ok\":true}".utf8))
        #expect(try client.get("/nothing", timeout: 5).status == 404)
        var small = client
        small.maxBodyBytes = 1000
        #expect(throws: HTTPGetClient.Failure.self) { try small.get("/metrics", timeout: 5) }
    }

    @Test func nobodyListeningOrNobodyAnsweringFailsWithinTheTimeout() throws {
        // A listener that accepts and never answers: the connection opens, no answer comes.
        let mute = try LoopbackListener { _, listener in while !listener.isStopping { usleep(10_000) } }
        defer { mute.stop() }
        let silent = HTTPGetClient(endpoint: .init(url: "http://127.0.0.1:\(mute.port)")!)
        let start = Date()
        #expect(throws: HTTPGetClient.Failure.self) { try silent.get("/", timeout: 0.5) }
        #expect(Date().timeIntervalSince(start) < 3)

        let s = try Self.server()
        let port = s.boundPort
        s.close()
        do {
            _ = try HTTPGetClient(endpoint: .init(url: "http://127.0.0.1:\(port)")!).get("/", timeout: 2)
            Issue.record("a closed port answered")
        } catch {
            #expect("\(error)".contains("cannot connect"), "\(error)")
        }
    }
}
