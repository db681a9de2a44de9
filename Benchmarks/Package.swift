// swift-tools-version: 6.1
import PackageDescription

// A separate package (as swift-nio does) so that `swift build` and `swift test`
// of FlowMeter never compile package-benchmark (~80 CPU-s). ordo-one/benchmark
// resolves here only with the MallocInterposer trait (BENCHMARKS.md, "Build costs").
//
//   cd Benchmarks && swift package benchmark   # run and print
//   scripts/check_allocations.sh                # gate: 0 allocations per packet
let package = Package(
    name: "FlowMeterBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "FlowMeter", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "EngineBenchmarks",
            dependencies: [
                .product(name: "FlowMeterCore", package: "FlowMeter"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/EngineBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
