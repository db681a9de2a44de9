import FuzzSupport

@_cdecl("FuzzTorState_main")
public func mainFuzzTorState(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzTorState(data, size)
    }
}
