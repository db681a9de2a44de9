import FuzzSupport

@_cdecl("FuzzQuotaSpec_main")
public func mainFuzzQuotaSpec(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzQuotaSpec(data, size)
    }
}
