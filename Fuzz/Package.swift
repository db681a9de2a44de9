// swift-tools-version: 6.1
import PackageDescription

// libFuzzer targets, a separate package (like Benchmarks/) so that FlowMeter's
// own build never compiles them. Built and run by scripts/fuzz.sh:
//
//   scripts/fuzz.sh --list          # target names
//   scripts/fuzz.sh decoder 60      # one target for 60 s from its seed corpus
//
// Each target is a library-style file defining LLVMFuzzerTestOneInput;
// `-sanitize=fuzzer,address -parse-as-library` links libFuzzer's main.
let package = Package(
    name: "FlowMeterFuzz",
    dependencies: [.package(name: "FlowMeter", path: "../")],
    targets: ["FuzzDecoder", "FuzzPcapBuffered", "FuzzPcapLibpcap"].map { name in
        .executableTarget(name: name, dependencies: [.product(name: "FlowMeterCore", package: "FlowMeter")],
                          path: "Sources/\(name)", swiftSettings: [.swiftLanguageMode(.v6)])
    }
)
