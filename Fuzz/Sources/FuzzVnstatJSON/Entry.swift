import FuzzSupport

@_cdecl("FuzzVnstatJSON_main")
public func mainFuzzVnstatJSON(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzVnstatJSON(data, size)
    }
}
