import FlowMeterConfig

extension GeneratedRelayHost {
    func load() throws -> LoadedConfig {
        let torrcs = (args["torrc"] as! [String]).map(path)
        return try ConfigLoader.load(torrcs: torrcs, consensus: (args["consensus"] as? String).map(path),
                                     config: (args["config"] as? String).map(path))
    }
}
