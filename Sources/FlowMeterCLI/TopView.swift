import FlowMeterFormat
import FlowMeterReports
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The screen of `flowmeter top`, built from two successive status
/// documents (rates are their difference over their `read_at`).
enum TopView {
    /// The part of `/api/v1/status` the view shows. Decoded with
    /// `.convertFromSnakeCase`, so it reads the document whether its keys are
    /// camelCase (schema 1) or snake_case; fields it does not know are ignored
    /// and every extra is optional.
    struct Status: Decodable {
        struct Cell: Decodable { var relay: String; var category: String; var direction: String; var bytes: UInt64 }
        struct Connections: Decodable {
            var relay: String; var category: String
            var active: UInt64?; var peak: UInt64?; var unansweredAttempts: UInt64?
        }
        struct Quota: Decodable {
            var name: String; var periodStart: String?; var periodEnd: String?
            var usedBytes: UInt64; var limitBytes: UInt64; var usedFraction: Double?
            var projectedLowBytes: Double?; var projectedHighBytes: Double?; var projectedExhaustion: String?
            var torSoftLimit: String?; var torHardLimit: String?; var torWakeup: String?
            var intervalSource: String?; var history: String?
        }
        struct Interface: Decodable { var name: String; var up: Bool }
        var readAt: String
        var lowerBound: Bool?
        var lowerBoundReasons: [String]?
        var categories: [Cell]
        var connections: [Connections]?
        var quotas: [Quota]?
        var interfaces: [Interface]?

        static func decode(_ data: Data) throws -> Status {
            let d = JSONDecoder()
            d.keyDecodingStrategy = .convertFromSnakeCase
            return try d.decode(Status.self, from: data)
        }

        var readSeconds: Double? {
            Format.parseISO8601(readAt)?.timeIntervalSince1970
        }
    }

    static func lines(_ s: Status, previous: Status?, agent: String, width: Int) -> [String] {
        var out: [String] = []
        let clock = String(s.readAt.prefix(19)).replacingOccurrences(of: "T", with: " ")
        out.append(fit("flowmeter top  \(agent)  \(clock) UTC  (q quits)", width))
        if let ifs = s.interfaces, !ifs.isEmpty {
            out.append(fit("capture: " + ifs.map { "\($0.name) \($0.up ? "up" : "DOWN")" }.joined(separator: ", "), width))
        }
        if s.lowerBound == true {
            out.append(fit("lower bound: " + (s.lowerBoundReasons ?? []).joined(separator: ", "), width))
        }
        out.append("")
        out.append(row(["relay", "category", "in/s", "out/s", "in total", "out total"]))
        let elapsed = previous.flatMap { p in s.readSeconds.flatMap { a in p.readSeconds.map { a - $0 } } } ?? 0
        func bytes(_ st: Status?, _ r: String, _ c: String, _ d: String) -> UInt64? {
            st?.categories.first { $0.relay == r && $0.category == c && $0.direction == d }?.bytes
        }
        var relays: [String] = []
        for c in s.categories where !relays.contains(c.relay) { relays.append(c.relay) }
        for relay in relays {
            var cats: [String] = []
            for c in s.categories where c.relay == relay && !cats.contains(c.category) { cats.append(c.category) }
            for cat in cats {
                let now = (bytes(s, relay, cat, "in") ?? 0, bytes(s, relay, cat, "out") ?? 0)
                func rate(_ d: String, _ v: UInt64) -> String {
                    guard elapsed > 0, let before = bytes(previous, relay, cat, d) else { return "…" }
                    return SVG.bytes(Double(v >= before ? v - before : 0) / elapsed, perSecond: true)
                }
                out.append(row([relay, cat, rate("in", now.0), rate("out", now.1),
                                SVG.bytes(Double(now.0)), SVG.bytes(Double(now.1))]))
            }
        }
        if let conns = s.connections, !conns.isEmpty {
            out.append("")
            for relay in relays {
                let mine = conns.filter { $0.relay == relay }
                guard !mine.isEmpty else { continue }
                let a = mine.reduce(0) { $0 + ($1.active ?? 0) }, p = mine.reduce(0) { $0 + ($1.peak ?? 0) }
                let u = mine.reduce(0) { $0 + ($1.unansweredAttempts ?? 0) }
                out.append(fit("connections \(relay): \(a) active, \(p) peak, \(u) unanswered attempts", width))
            }
        }
        for q in s.quotas ?? [] {
            out.append("")
            let pct = (q.usedFraction ?? (q.limitBytes == 0 ? 0 : Double(q.usedBytes) / Double(q.limitBytes))) * 100
            out.append(fit("quota \(q.name): \(SVG.bytes(Double(q.usedBytes))) of \(SVG.bytes(Double(q.limitBytes))) (\(String(format: "%.1f", pct)) %) \(bar(pct, 20))", width))
            if let lo = q.projectedLowBytes, let hi = q.projectedHighBytes {
                out.append(fit("  projected \(SVG.bytes(lo))–\(SVG.bytes(hi)) at \(short(q.periodEnd)); runs out: \(q.projectedExhaustion.map(short) ?? "no")", width))
            }
            let tor = [q.torSoftLimit.map { "soft limit \(short($0))" }, q.torHardLimit.map { "hard limit \(short($0))" },
                       q.torWakeup.map { "wake-up \(short($0))" }].compactMap { $0 }
            if !tor.isEmpty { out.append(fit("  Tor: " + tor.joined(separator: ", "), width)) }
            if let source = q.intervalSource { out.append(fit("  interval: \(source), since \(short(q.periodStart))", width)) }
            if let history = q.history { out.append(fit("  " + history, width)) }
        }
        return out
    }

    /// relay 12, category 12, four numbers right-aligned 12 each: 76 columns.
    private static func row(_ f: [String]) -> String {
        func pad(_ s: String, _ n: Int, right: Bool) -> String {
            let t = s.count > n ? String(s.prefix(n - 1)) + "…" : s
            let space = String(repeating: " ", count: n - t.count)
            return right ? space + t : t + space
        }
        return pad(f[0], 12, right: false) + " " + pad(f[1], 11, right: false)
            + f[2...].map { pad($0, 12, right: true) }.joined(separator: " ")
    }

    private static func fit(_ s: String, _ width: Int) -> String { s.count > width ? String(s.prefix(width - 1)) + "…" : s }
    private static func short(_ iso: String?) -> String {
        guard let iso else { return "?" }
        return String(iso.prefix(16)).replacingOccurrences(of: "T", with: " ")
    }
    private static func bar(_ percent: Double, _ n: Int) -> String {
        let filled = max(0, min(n, Int((percent / 100 * Double(n)).rounded())))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: n - filled) + "]"
    }
}

/// GET /api/v1/status over a plain TCP connection (the agent's listener
/// speaks HTTP/1.1 without TLS and closes after each answer).
struct StatusClient {
    let host: String
    let port: UInt16
    let token: String?

    init?(agent: String, token: String?) {
        guard let colon = agent.lastIndex(of: ":"), let p = UInt16(agent[agent.index(after: colon)...]) else { return nil }
        var h = String(agent[..<colon])
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        guard !h.isEmpty else { return nil }
        host = h; port = p; self.token = token
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    func fetch() throws -> TopView.Status {
        let (code, body) = try get("/api/v1/status")
        guard code == 200 else {
            throw Failure(description: code == 401 ? "a valid token is required (--token-file)" : "HTTP \(code): \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        do { return try TopView.Status.decode(body) } catch {
            throw Failure(description: "the status document could not be read: \(error)")
        }
    }

    private func get(_ path: String) throws -> (Int, Data) {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        // Safe: getaddrinfo's list is read only until freeaddrinfo (deferred below).
        var list: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw Failure(description: "cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            throw Failure(description: "cannot connect: \(String(cString: strerror(errno)))")
        }
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\nAccept: application/json\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        // Safe: send/recv get the buffers' own pointers and counts, valid for the call.
        guard bytes.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else {
            throw Failure(description: "send: \(String(cString: strerror(errno)))")
        }
        var response = Data()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while response.count < 64 << 20 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            response.append(contentsOf: buffer[0..<n])
        }
        guard let split = response.range(of: Data("\r\n\r\n".utf8)) else { throw Failure(description: "no HTTP answer") }
        let head = String(decoding: response[..<split.lowerBound], as: UTF8.self)
        let code = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (code, Data(response[split.upperBound...]))
    }
}
