import FuzzSupport

@_cdecl("FuzzCheckOptions_main")
public func mainFuzzCheckOptions(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzCheckOptions(data, size)
    }
}
