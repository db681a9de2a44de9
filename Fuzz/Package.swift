// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets, a separate package (like Benchmarks/) so that FlowMeter's
// own build never compiles them. Built and run by scripts/fuzz.sh:
//
//   scripts/fuzz.sh --list          # target names
//   scripts/fuzz.sh decoder 60      # one target for 60 s from its seed corpus
//
// Each target is a library-style file defining LLVMFuzzerTestOneInput and an
// entry that starts libFuzzer's driver through FuzzSupport (the code they
// share); `-sanitize=fuzzer,address -parse-as-library` links libFuzzer.
let flowMeter = { (name: String) in Target.Dependency.product(name: name, package: "FlowMeter") }
let targets: [(String, [Target.Dependency])] = [
    ("FuzzDecoder", [flowMeter("FlowMeterCore")]),
    ("FuzzPcapBuffered", [flowMeter("FlowMeterCore")]),
    ("FuzzPcapLibpcap", [flowMeter("FlowMeterCore")]),
    ("FuzzPcapng", [flowMeter("FlowMeterCore")]),
    ("FuzzTorrc", [flowMeter("FlowMeterConfig")]),
    ("FuzzConsensus", [flowMeter("FlowMeterConfig")]),
    ("FuzzConfigYAML", [flowMeter("FlowMeterConfig")]),
    ("FuzzQuotaSpec", [flowMeter("FlowMeterAccounting")]),
    ("FuzzVnstatJSON", [flowMeter("FlowMeterStore"), flowMeter("FlowMeterAccounting")]),
    ("FuzzVnstatDB", [flowMeter("FlowMeterStore"), flowMeter("FlowMeterAccounting"), .product(name: "GRDB", package: "GRDB.swift")]),
    ("FuzzTorState", [flowMeter("FlowMeterStore"), flowMeter("FlowMeterAccounting")]),
    ("FuzzStoreReader", [flowMeter("FlowMeterStore"), flowMeter("FlowMeterAccounting"), flowMeter("FlowMeterCore"), flowMeter("FlowMeterFormat"),
                         .product(name: "GRDB", package: "GRDB.swift")]),
    ("FuzzHTTPRequest", [flowMeter("FlowMeterExport"), flowMeter("FlowMeterCore"),
                         .product(name: "NIOCore", package: "swift-nio"),
                         .product(name: "NIOEmbedded", package: "swift-nio"),
                         .product(name: "NIOHTTP1", package: "swift-nio")]),
    ("FuzzTorControl", [flowMeter("FlowMeterTorControl"), flowMeter("FlowMeterConfig"), flowMeter("FlowMeterAccounting"),
                        .product(name: "Crypto", package: "swift-crypto")]),
    ("FuzzTopStatus", [flowMeter("FlowMeterReports")]),
    ("FuzzCheckOptions", [flowMeter("FlowMeterReports")]),
    ("FuzzSpillFile", [flowMeter("FlowMeterStore"), .product(name: "Logging", package: "swift-log")]),
    ("FuzzPromQuery", [flowMeter("FlowMeterFleet")]),
]
let package = Package(
    name: "FlowMeterFuzz",
    dependencies: [
        .package(name: "FlowMeter", path: "../"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(name: "FuzzSupport", dependencies: [flowMeter("FlowMeterCore")], path: "Sources/FuzzSupport",
                swiftSettings: [.swiftLanguageMode(.v6)]),
    ] + targets.map { name, dependencies in
        .executableTarget(name: name, dependencies: dependencies + ["FuzzSupport"],
                          path: "Sources/\(name)", swiftSettings: [.swiftLanguageMode(.v6)])
    }
)
