import FoundationEssentials

/// The fixed-size records of a zip file (PKWARE APPNOTE 4.3), read and written little-endian.
/// Shared by the wheel writer, which rewrites libarchive's output, and the strict reader of
/// `check --dist`; neither needs ZIP64 (wheels here are far below 4 GiB), so both refuse it.
enum ZipRecords {
    static let localHeaderSignature: UInt32 = 0x0403_4b50
    static let centralHeaderSignature: UInt32 = 0x0201_4b50
    static let endRecordSignature: UInt32 = 0x0605_4b50
    static let dataDescriptorSignature: UInt32 = 0x0807_4b50
    static let zip64EndRecordSignature: UInt32 = 0x0606_4b50

    static let localHeaderSize = 30
    static let centralHeaderSize = 46
    static let endRecordSize = 22
    /// General-purpose flag bit 3: CRC-32 and sizes follow the data instead of sitting in the
    /// local header.
    static let dataDescriptorFlag: UInt16 = 0x0008
    static let storedMethod: UInt16 = 0
    static let deflatedMethod: UInt16 = 8
    /// "Version needed to extract" for deflated members: 2.0.
    static let deflateVersion: UInt16 = 20
    static let zip64Marker: UInt32 = 0xFFFF_FFFF

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    /// The fields a local header and its central directory entry both carry.
    struct EntryFields: Equatable {
        var flags: UInt16
        var method: UInt16
        var crc32: UInt32
        var compressedSize: UInt32
        var uncompressedSize: UInt32
        var name: [UInt8]
    }

    struct LocalHeader {
        var offset: Int
        var fields: EntryFields
        var extraLength: Int
        /// Header, name and extra field: where the member's data starts.
        var length: Int { ZipRecords.localHeaderSize + fields.name.count + extraLength }
    }

    struct CentralEntry {
        var offset: Int
        var fields: EntryFields
        var localHeaderOffset: UInt32
        var extraLength: Int
        var commentLength: Int
        var length: Int { ZipRecords.centralHeaderSize + fields.name.count + extraLength + commentLength }
    }

    struct EndRecord {
        var offset: Int
        var entriesOnDisk: UInt16
        var entries: UInt16
        var directorySize: UInt32
        var directoryOffset: UInt32
        var commentLength: Int
        var end: Int { offset + ZipRecords.endRecordSize + commentLength }
    }

    static func uint16(_ bytes: [UInt8], _ at: Int) -> UInt16 {
        UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
    }

    static func uint32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(uint16(bytes, at)) | UInt32(uint16(bytes, at + 2)) << 16
    }

    static func put(_ value: UInt16, into bytes: inout [UInt8], at: Int) {
        bytes[at] = UInt8(truncatingIfNeeded: value)
        bytes[at + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }

    static func put(_ value: UInt32, into bytes: inout [UInt8], at: Int) {
        put(UInt16(truncatingIfNeeded: value), into: &bytes, at: at)
        put(UInt16(truncatingIfNeeded: value >> 16), into: &bytes, at: at + 2)
    }

    static func hasSignature(_ signature: UInt32, in bytes: [UInt8], at offset: Int) -> Bool {
        offset >= 0 && offset + 4 <= bytes.count && uint32(bytes, offset) == signature
    }

    static func localHeader(in bytes: [UInt8], at offset: Int) throws(Malformed) -> LocalHeader {
        guard offset + localHeaderSize <= bytes.count, hasSignature(localHeaderSignature, in: bytes, at: offset) else {
            throw Malformed(description: "no local file header at byte \(offset)")
        }
        let nameLength = Int(uint16(bytes, offset + 26)), extraLength = Int(uint16(bytes, offset + 28))
        let nameStart = offset + localHeaderSize
        guard nameStart + nameLength + extraLength <= bytes.count else {
            throw Malformed(description: "local file header at byte \(offset) runs past the end of the file")
        }
        let fields = EntryFields(flags: uint16(bytes, offset + 6), method: uint16(bytes, offset + 8),
                                 crc32: uint32(bytes, offset + 14), compressedSize: uint32(bytes, offset + 18),
                                 uncompressedSize: uint32(bytes, offset + 22),
                                 name: Array(bytes[nameStart ..< nameStart + nameLength]))
        return LocalHeader(offset: offset, fields: fields, extraLength: extraLength)
    }

    static func centralEntry(in bytes: [UInt8], at offset: Int) throws(Malformed) -> CentralEntry {
        guard offset + centralHeaderSize <= bytes.count, hasSignature(centralHeaderSignature, in: bytes, at: offset) else {
            throw Malformed(description: "no central directory entry at byte \(offset)")
        }
        let nameLength = Int(uint16(bytes, offset + 28)), extraLength = Int(uint16(bytes, offset + 30))
        let commentLength = Int(uint16(bytes, offset + 32))
        let nameStart = offset + centralHeaderSize
        guard nameStart + nameLength + extraLength + commentLength <= bytes.count else {
            throw Malformed(description: "central directory entry at byte \(offset) runs past the end of the file")
        }
        let fields = EntryFields(flags: uint16(bytes, offset + 8), method: uint16(bytes, offset + 10),
                                 crc32: uint32(bytes, offset + 16), compressedSize: uint32(bytes, offset + 20),
                                 uncompressedSize: uint32(bytes, offset + 24),
                                 name: Array(bytes[nameStart ..< nameStart + nameLength]))
        return CentralEntry(offset: offset, fields: fields, localHeaderOffset: uint32(bytes, offset + 42),
                            extraLength: extraLength, commentLength: commentLength)
    }

    /// The end-of-central-directory record: the last one in the file, wherever it sits, so
    /// that a reader can tell how many bytes follow it.
    static func endRecord(in bytes: [UInt8]) throws(Malformed) -> EndRecord {
        // The record is 22 bytes plus a comment of at most 65535.
        let lowest = max(0, bytes.count - endRecordSize - 0xFFFF)
        var offset = bytes.count - endRecordSize
        while offset >= lowest {
            if hasSignature(endRecordSignature, in: bytes, at: offset) {
                return EndRecord(offset: offset, entriesOnDisk: uint16(bytes, offset + 8), entries: uint16(bytes, offset + 10),
                                 directorySize: uint32(bytes, offset + 12), directoryOffset: uint32(bytes, offset + 16),
                                 commentLength: Int(uint16(bytes, offset + 20)))
            }
            offset -= 1
        }
        throw Malformed(description: "no end-of-central-directory record: not a zip file")
    }

    /// The central directory entries the end record points to, in their order.
    static func centralDirectory(in bytes: [UInt8], end: EndRecord) throws(Malformed) -> [CentralEntry] {
        if end.directoryOffset == zip64Marker || end.entries == 0xFFFF || hasSignature(zip64EndRecordSignature, in: bytes, at: end.offset - 56) {
            throw Malformed(description: "uses ZIP64 records, which no wheel of this size needs")
        }
        var entries: [CentralEntry] = []
        var offset = Int(end.directoryOffset)
        for _ in 0 ..< Int(end.entries) {
            let entry = try centralEntry(in: bytes, at: offset)
            entries.append(entry)
            offset += entry.length
        }
        return entries
    }
}
