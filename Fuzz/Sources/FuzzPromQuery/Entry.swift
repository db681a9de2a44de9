import FuzzSupport

@_cdecl("FuzzPromQuery_main")
public func mainFuzzPromQuery(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzPromQuery(data, size)
    }
}
