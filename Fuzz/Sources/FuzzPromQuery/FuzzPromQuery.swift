import FlowMeterFleet
import FuzzSupport

/// What `flowmeter fleet` reads from a central store that is hostile or
/// broken (the HTTP is SwiftNIO's): the first byte picks the HTTP status, the
/// rest is the body. Series or a QueryError, never a trap; the error goes to
/// the operator's terminal, so its text is printable and short whatever the
/// store sent.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPromQuery(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let statuses = [200, 400, 422, 500, 503]
    let status = statuses[Int(data[0]) % statuses.count]
    let body = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    do {
        _ = try QueryAnswer.decode(body, status: status, expr: "sum(flowmeter_bytes_total)")
    } catch let error as QueryError {
        let text = error.description
        precondition(text.count <= 500, "an error of \(text.count) characters")
        for scalar in text.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate:
                preconditionFailure("a control character in the error: \(text.debugDescription)")
            default: break
            }
        }
    } catch {
        preconditionFailure("not a QueryError: \(error)")
    }
    return 0
}
