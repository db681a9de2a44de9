import FlowMeterExport
import FlowMeterReports
import Foundation
import FuzzSupport

/// What `flowmeter top` reads from whatever answers at `--agent`, arbitrary
/// bytes: the HTTP answer (status line, headers, Content-Length), then its
/// body (or, when it is no HTTP answer, the bytes themselves) as a status
/// document, drawn as top draws it. A screen or an error, never a trap; and
/// no control character and no line wider than the screen on it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTopStatus(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let body = ((try? HTTPAnswer(bytes, closed: true)) ?? nil)?.body ?? bytes
    guard let status = try? TopView.Status.decode(Data(body)) else { return 0 }
    for previous in [nil, status] {
        for line in TopView.lines(status, previous: previous, agent: "127.0.0.1:9477", width: 80) {
            precondition(line.count <= 80, "a line wider than the screen: \(line.debugDescription)")
            for scalar in line.unicodeScalars {
                switch scalar.properties.generalCategory {
                case .control, .format, .lineSeparator, .paragraphSeparator:
                    preconditionFailure("a control character on the screen: \(line.debugDescription)")
                default: break
                }
            }
        }
    }
    return 0
}
