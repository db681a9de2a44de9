import FuzzSupport

@_cdecl("FuzzConfigYAML_main")
public func mainFuzzConfigYAML(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzConfigYAML(data, size)
    }
}
