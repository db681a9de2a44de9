// swift-tools-version: 6.1
import PackageDescription

// Dependencies are chosen for their cold-build cost on a 2-core CI machine
// (see ../shared/docs/swift-notes.md): argument-parser + swift-log + system
// libpcap cost ~46 CPU-s; Yams (config files with line numbers) is small.
let package = Package(
    name: "FlowMeter",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "FlowMeter", targets: ["FlowMeter"]),
        .executable(name: "flowmeter", targets: ["FlowMeterCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The agent's HTTP endpoint (/metrics, /api/v1/status): bare NIO HTTP/1
        // with one small channel handler. +115 CPU-s cold; Hummingbird would add
        // ~300 more for routing we do not need (two GET paths).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // The accounting store (docs/storage.md): migrations, WAL pools, read-only
        // readers; on Linux it links the system SQLite (libsqlite3-dev), ~57 CPU-s cold.
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // SHA-1 for Tor's hibernation wake-up digest (Insecure.SHA1). It brings BoringSSL's C
        // sources: a cold debug build of the package with it took 256 s wall on the shared 2-core box.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // C and nothing else: what Swift cannot import from libpcap and Linux.
        .target(
            name: "CPcapShim",
            linkerSettings: [.linkedLibrary("pcap")]
        ),
        .target(
            name: "FlowMeter",
            dependencies: [
                "CPcapShim",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "FlowMeterCLI",
            dependencies: [
                "FlowMeter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "FlowMeterTests",
            dependencies: ["FlowMeter"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
