/// A pcapng file whose interfaces have different link types, read through
/// libpcap (`--reader libpcap`; the automatic reader, `PcapngReader`, counts
/// every record under its own interface's link type).
///
/// libpcap (1.10) gives one link type per file, that of the first Interface
/// Description Block, and hands over records without their interface. When
/// it meets a later IDB of another link type it stops reading with "an
/// interface has a type N different from the type of the first interface"
/// (sf-pcapng.c). So FlowMeter counts every record before that block, under
/// the first link type; the records after it are not read, and the file is
/// reported as cut short (`cutShort`, with the packets counted). Usually the
/// IDBs all come first (tshark and dumpcap write them so), and then no
/// record is counted. This names both link types and says what to do.
extension OfflineCapture {
    static func explainDamage(_ message: String, firstLinkType: LinkType) -> String {
        let prefix = "an interface has a type "
        guard message.hasPrefix(prefix) else { return message }
        let digits = message.dropFirst(prefix.count).prefix { $0 >= "0" && $0 <= "9" }
        guard let raw = Int32(digits) else { return message }
        // The number is the file's LINKTYPE_ value; libpcap names DLT_ values,
        // which differ for a few (pcap-common.c `linktype_to_dlt`).
        let second = LinkType(rawValue: linkTypeToDLT[raw] ?? raw)
        return "a second interface has link type \(second.pcapName) (LINKTYPE \(raw)), the first "
            + "\(firstLinkType.pcapName) (DLT \(firstLinkType.rawValue)); libpcap reads a pcapng file of one link "
            + "type only, so records after that interface's description are not counted: replay it with the "
            + "automatic reader (FlowMeter's own, which counts every link type), or split the file per "
            + "interface (e.g. tshark -r FILE -Y 'frame.interface_id == 1' -w PART) and replay the parts"
    }

    /// libpcap's `linktype_to_dlt` where LINKTYPE_ and DLT_ values differ.
    static let linkTypeToDLT: [Int32: Int32] = [100: 11, 101: 12, 102: 15, 103: 16, 106: 19]
}
