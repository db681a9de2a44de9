import FuzzSupport

@_cdecl("FuzzTorControl_main")
public func mainFuzzTorControl(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzTorControl(data, size)
    }
}
