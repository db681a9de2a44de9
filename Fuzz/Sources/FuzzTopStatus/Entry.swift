import FuzzSupport

@_cdecl("FuzzTopStatus_main")
public func mainFuzzTopStatus(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzTopStatus(data, size)
    }
}
