import FlowMeterFleet
import FuzzSupport

/// What `flowmeter fleet` reads from a central store that is hostile or
/// broken (the HTTP is SwiftNIO's): the first byte picks the HTTP status, the
/// rest is the body. Series or a QueryError, never a trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPromQuery(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let statuses = [200, 400, 422, 500, 503]
    let status = statuses[Int(data[0]) % statuses.count]
    let body = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    do {
        _ = try QueryAnswer.decode(body, status: status, expr: "sum(flowmeter_bytes_total)")
    } catch let error as QueryError {
        _ = error.description
    } catch {
        preconditionFailure("not a QueryError: \(error)")
    }
    return 0
}
