// swift-tools-version: 6.1
import PackageDescription

// The targets are the architecture (docs/architecture.md): a hot-path core
// that imports no Foundation, NIO, GRDB, Yams or Logging, and control-plane
// targets that depend on it, never the other way. Dependencies are chosen for
// their cold-build cost on a 2-core CI machine (BENCHMARKS.md, "Build costs").
let v6: [SwiftSetting] = [.swiftLanguageMode(.v6)]
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")

let package = Package(
    name: "FlowMeter",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "FlowMeterCore", targets: ["FlowMeterCore"]),
        // For the Fuzz/ package's parser targets only.
        .library(name: "FlowMeterConfig", targets: ["FlowMeterConfig"]),
        .library(name: "FlowMeterAccounting", targets: ["FlowMeterAccounting"]),
        .library(name: "FlowMeterStore", targets: ["FlowMeterStore"]),
        .library(name: "FlowMeterExport", targets: ["FlowMeterExport"]),
        .library(name: "FlowMeterTorControl", targets: ["FlowMeterTorControl"]),
        .library(name: "FlowMeterReports", targets: ["FlowMeterReports"]),
        .library(name: "FlowMeterFleet", targets: ["FlowMeterFleet"]),
        .library(name: "FlowMeterFormat", targets: ["FlowMeterFormat"]),
        .executable(name: "flowmeter", targets: ["FlowMeterCLI"]),
    ],
    // Pinned to the minor versions the project is built and tested with: a new
    // minor is taken on purpose, with its tests run (Package.resolved stays out of
    // git, since a mirror's commit ids are not upstream's).
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", .upToNextMinor(from: "1.8.2")),
        .package(url: "https://github.com/apple/swift-log", .upToNextMinor(from: "1.16.2")),
        .package(url: "https://github.com/jpsim/Yams", .upToNextMinor(from: "6.2.2")),
        // The agent's HTTP endpoint (/metrics, /api/v1/status): bare NIO HTTP/1
        // with one small channel handler. +115 CPU-s cold; Hummingbird would add
        // ~300 more for routing we do not need.
        .package(url: "https://github.com/apple/swift-nio", .upToNextMinor(from: "2.101.2")),
        // The accounting store (docs/storage.md): migrations, WAL pools, read-only
        // readers; on Linux it links the system SQLite (libsqlite3-dev), ~57 CPU-s cold.
        .package(url: "https://github.com/groue/GRDB.swift", .upToNextMinor(from: "7.10.0")),
        // SHA-1 for Tor's hibernation wake-up digest (Insecure.SHA1); BoringSSL's
        // C sources make it the costliest dependency to build cold.
        .package(url: "https://github.com/apple/swift-crypto", .upToNextMinor(from: "3.12.3")),
    ],
    targets: [
        // C and nothing else: what Swift cannot import from libpcap (macros).
        .target(name: "CPcapShim", linkerSettings: [.linkedLibrary("pcap")]),
        // C and nothing else: Linux calls Swift cannot make directly (socket
        // options, prctl/capset, affinity) and the flow table's SIMD scans.
        .target(name: "CLinuxShim"),

        // Hot path: decode → classify → ring → count, the flow table, the
        // offline readers and the live capture callback, the replay driver.
        // No Foundation, NIO, GRDB, Yams or Logging. The whole per-packet chain
        // lives here, so nothing on it crosses a module boundary.
        .target(name: "FlowMeterCore", dependencies: ["CPcapShim", "CLinuxShim"], swiftSettings: v6),

        // Control plane.
        // The one formatting module: ISO-8601 instants, byte counts, text tables, the JSON style.
        .target(name: "FlowMeterFormat", swiftSettings: v6),
        .target(name: "FlowMeterCapture", dependencies: ["FlowMeterCore", "CPcapShim"], swiftSettings: v6),
        .target(name: "FlowMeterConfig",
                dependencies: ["FlowMeterCore", "FlowMeterFormat", .product(name: "Yams", package: "Yams")], swiftSettings: v6),
        .target(name: "FlowMeterAccounting",
                dependencies: ["FlowMeterCore", "FlowMeterConfig", "FlowMeterFormat",
                               .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: v6),
        // Tor's control port, client side: the reply grammar, the choice of
        // authentication, a bounded blocking client and the agent's poller
        // (docs/quotas.md, "Tor's own figures").
        .target(name: "FlowMeterTorControl",
                dependencies: ["FlowMeterConfig", "FlowMeterAccounting", "FlowMeterFormat", logging,
                               .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: v6),
        .target(name: "FlowMeterStore",
                dependencies: ["FlowMeterCore", "FlowMeterAccounting", "FlowMeterFormat", logging,
                               .product(name: "GRDB", package: "GRDB.swift")], swiftSettings: v6),
        .target(name: "FlowMeterReports",
                dependencies: ["FlowMeterCore", "FlowMeterConfig", "FlowMeterAccounting", "FlowMeterStore", "FlowMeterFormat"],
                swiftSettings: v6),
        .target(name: "FlowMeterExport",
                dependencies: ["FlowMeterCore", "FlowMeterCapture", "FlowMeterAccounting", "FlowMeterReports", "FlowMeterFormat",
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio")], swiftSettings: v6),
        // Pooled quotas of many hosts, evaluated from a central Prometheus-compatible
        // store (`flowmeter fleet`): its query API over Export's NIO HTTP client.
        .target(name: "FlowMeterFleet",
                dependencies: ["FlowMeterCore", "FlowMeterConfig", "FlowMeterAccounting", "FlowMeterFormat",
                               "FlowMeterReports", "FlowMeterExport", .product(name: "Yams", package: "Yams")],
                swiftSettings: v6),
        // The composition root: wires capture, store, export and accounting.
        .target(name: "FlowMeterAgent",
                dependencies: ["FlowMeterCore", "FlowMeterCapture", "FlowMeterConfig", "FlowMeterAccounting",
                               "FlowMeterStore", "FlowMeterReports", "FlowMeterExport", "FlowMeterTorControl", "FlowMeterFormat", "CLinuxShim", logging,
                               .product(name: "NIOCore", package: "swift-nio"), .product(name: "Yams", package: "Yams")],
                swiftSettings: v6),
        // The thin `flowmeter` executable.
        .executableTarget(name: "FlowMeterCLI",
                          dependencies: ["FlowMeterCore", "FlowMeterCapture", "FlowMeterConfig", "FlowMeterAccounting",
                                         "FlowMeterStore", "FlowMeterReports", "FlowMeterExport", "FlowMeterAgent", "FlowMeterFormat",
                                         "FlowMeterFleet", "FlowMeterTorControl",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Yams", package: "Yams"), logging],
                          swiftSettings: v6),

        // Tests mirror the targets. Fixtures come in layers, as the code does:
        // Core's (captures with a known truth, the corpus, processes) depend on
        // Core alone; the control plane's build on them.
        .target(name: "FlowMeterCoreTestSupport", dependencies: ["FlowMeterCore"], path: "Tests/FlowMeterCoreTestSupport",
                swiftSettings: v6),
        .target(name: "FlowMeterTestSupport", dependencies: allLibraries + ["FlowMeterCoreTestSupport", logging],
                path: "Tests/FlowMeterTestSupport", swiftSettings: v6),
        .testTarget(name: "FlowMeterCoreTests", dependencies: ["FlowMeterCore", "FlowMeterCoreTestSupport"], swiftSettings: v6),
        .testTarget(name: "FlowMeterFormatTests", dependencies: ["FlowMeterFormat"], swiftSettings: v6),
    ] + ["Capture", "Config", "Accounting", "Store", "Reports", "Export", "Agent", "Fleet", "CLI", "TorControl"].map { name in
        .testTarget(name: "FlowMeter\(name)Tests",
                    dependencies: allLibraries + ["FlowMeterTestSupport",
                                                  .product(name: "NIOHTTP1", package: "swift-nio"),
                                                  .product(name: "GRDB", package: "GRDB.swift"),
                                                  .product(name: "Yams", package: "Yams")],
                    exclude: name == "Export" ? ["Golden"] : [],
                    swiftSettings: v6)
    }
)

var allLibraries: [Target.Dependency] {
    ["FlowMeterCore", "FlowMeterCapture", "FlowMeterConfig", "FlowMeterAccounting", "FlowMeterStore",
     "FlowMeterReports", "FlowMeterExport", "FlowMeterAgent", "FlowMeterFormat", "FlowMeterFleet", "FlowMeterTorControl"]
}
