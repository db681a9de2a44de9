import FuzzSupport

@_cdecl("FuzzPcapng_main")
public func mainFuzzPcapng(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzPcapng(data, size)
    }
}
