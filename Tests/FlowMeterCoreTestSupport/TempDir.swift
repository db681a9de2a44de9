import Foundation

public struct TempDir {
    public let url: URL
    public init() throws {
        url = URL(fileURLWithPath: makeTemporaryDirectory("store"))
    }
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    public func cleanup() { try? FileManager.default.removeItem(at: url) }
}
