import FlowMeterExport
import FlowMeterReports
import Foundation
import FuzzSupport

/// What `flowmeter top` reads from whatever answers at `--agent`, arbitrary
/// bytes: the HTTP answer (status line, headers, Content-Length), then its
/// body (or, when it is no HTTP answer, the bytes themselves) as a status
/// document, drawn as top draws it on two terminal sizes after a few keys. A
/// screen or an error, never a trap; and no control character, no line wider
/// and no more lines than the screen.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTopStatus(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let body = ((try? HTTPAnswer(bytes, closed: true)) ?? nil)?.body ?? bytes
    guard let status = try? TopView.Status.decode(Data(body)) else { return 0 }
    for (width, height) in [(80, 24), (40, 10)] {
        var screen = TopScreen(agent: "127.0.0.1:9477")
        screen.width = width
        screen.height = height
        for key in [nil, "s", "r", "r", "h"] as [Character?] {
            if let key { _ = screen.press(key.asciiValue!) }
            screen.observe(status)
            let lines = screen.lines()
            precondition(lines.count <= height, "\(lines.count) lines on a \(height)-line screen")
            for line in lines {
                precondition(line.count <= width, "a line wider than the screen: \(line.debugDescription)")
                for scalar in line.unicodeScalars {
                    switch scalar.properties.generalCategory {
                    case .control, .format, .lineSeparator, .paragraphSeparator:
                        preconditionFailure("a control character on the screen: \(line.debugDescription)")
                    default: break
                    }
                }
            }
        }
    }
    return 0
}
