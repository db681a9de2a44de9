import FuzzSupport

@_cdecl("FuzzConsensus_main")
public func mainFuzzConsensus(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzConsensus(data, size)
    }
}
