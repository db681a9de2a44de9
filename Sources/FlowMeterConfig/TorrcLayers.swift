import FlowMeterCore

extension Torrc {
    /// What a line does to an option already set (tor's confline.c): `Key`
    /// sets it, `+Key value` appends to it, `/Key` clears it.
    enum LineCommand: Equatable { case set, append, clear }

    /// `+ORPort` → (.append, "ORPort"); `/ORPort` → (.clear, "ORPort").
    static func command(of keyword: String) -> (LineCommand, String) {
        if keyword.hasPrefix("+") { return (.append, String(keyword.dropFirst())) }
        if keyword.hasPrefix("/") { return (.clear, String(keyword.dropFirst())) }
        return (.set, keyword)
    }

    /// The options tor ends up with after reading `layers` in order (the
    /// `--defaults-torrc` file, then the torrc), as tor's config_assign
    /// combines them:
    ///
    /// - Within one layer, lines of a list option (ORPort, ControlSocket…)
    ///   add up, and the last value of a single option wins (the builder
    ///   keeps the last), so lines are kept in order.
    /// - A layer's first `Key` line replaces whatever earlier layers set for
    ///   Key (tor marks those lists "fragile"); `+Key value` appends to them
    ///   instead; `/Key` clears Key, whichever layer set it.
    ///
    /// The result has no `+` or `/` prefixes left.
    static func layered(_ layers: [[TorrcEntry]]) -> [TorrcEntry] {
        var out: [TorrcEntry] = []
        for layer in layers {
            var fragile = Set(out.map(\.key))
            for var e in layer {
                let (command, keyword) = Self.command(of: e.keyword)
                e.keyword = keyword
                switch command {
                case .clear:
                    out.removeAll { $0.key == e.key }
                    fragile.remove(e.key)
                    continue
                case .append:
                    fragile.remove(e.key)
                case .set:
                    if fragile.remove(e.key) != nil { out.removeAll { $0.key == e.key } }
                }
                out.append(e)
            }
        }
        return out
    }
}
