import FoundationEssentials

/// Verify stage: reads a wheel the way the strictest installers do and lists everything on
/// which two zip readers could disagree. uv and PyPI's upload check walk the local headers
/// from the start of the file; pip reads the central directory from its end. A wheel passes
/// only when both walks find the same members with the same bytes, and nothing else.
public enum ZipConformance {
    public static func problems(in data: Data) -> [String] {
        let bytes = [UInt8](data)
        let end: ZipRecords.EndRecord, directory: [ZipRecords.CentralEntry]
        do {
            end = try ZipRecords.endRecord(in: bytes)
            directory = try ZipRecords.centralDirectory(in: bytes, end: end)
        } catch {
            return [error.description]
        }
        var problems = endRecordProblems(end, fileSize: bytes.count)
        problems += nameProblems(directory)
        problems += localHeaderProblems(bytes, directory: directory, end: end)
        return problems
    }

    private static func endRecordProblems(_ end: ZipRecords.EndRecord, fileSize: Int) -> [String] {
        var problems: [String] = []
        if end.end < fileSize {
            problems.append("\(fileSize - end.end) bytes follow the end-of-central-directory record")
        }
        if end.commentLength > 0 {
            problems.append("the archive carries a comment of \(end.commentLength) bytes")
        }
        if end.entriesOnDisk != end.entries {
            problems.append("the end record describes a multi-part archive")
        }
        if Int(end.directoryOffset) + Int(end.directorySize) != end.offset {
            problems.append("the central directory (byte \(end.directoryOffset), \(end.directorySize) bytes) does not end where the end record starts (byte \(end.offset))")
        }
        return problems
    }

    private static func nameProblems(_ directory: [ZipRecords.CentralEntry]) -> [String] {
        var problems: [String] = []
        var seen = Set<[UInt8]>()
        for entry in directory {
            let shown = displayName(entry.fields.name)
            if !seen.insert(entry.fields.name).inserted {
                problems.append("\(shown): the name appears twice")
            }
            if entry.commentLength > 0 {
                problems.append("\(shown): the central directory entry carries a comment")
            }
            guard let name = String(bytes: entry.fields.name, encoding: .utf8) else {
                problems.append("\(shown): the name is not UTF-8")
                continue
            }
            if name.hasPrefix("/") || name.hasPrefix("\\") || (name.count > 1 && name.dropFirst().hasPrefix(":")) {
                problems.append("\(shown): the name is absolute")
            }
            if name.split(separator: "/", omittingEmptySubsequences: false).contains("..") {
                problems.append("\(shown): the name climbs out of the install folder with ..")
            }
            if name.contains("\\") || name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                problems.append("\(shown): the name holds a backslash or a control character")
            }
        }
        return problems
    }

    /// Walks the members from byte 0, as a streaming reader does, and holds each local header
    /// against its central directory entry.
    private static func localHeaderProblems(_ bytes: [UInt8], directory: [ZipRecords.CentralEntry],
                                            end: ZipRecords.EndRecord) -> [String] {
        var problems: [String] = []
        var offset = 0
        for entry in directory {
            let shown = displayName(entry.fields.name)
            if Int(entry.localHeaderOffset) != offset {
                problems.append("\(shown): the central directory puts its local header at byte \(entry.localHeaderOffset), a reader walking the file finds one at byte \(offset)")
            }
            let local: ZipRecords.LocalHeader
            do {
                local = try ZipRecords.localHeader(in: bytes, at: offset)
            } catch {
                problems.append("\(shown): \(error.description)")
                return problems
            }
            problems += fieldMismatches(local.fields, entry.fields).map { "\(shown): the local header's \($0) differs from the central directory's" }
            if local.fields.flags & ZipRecords.dataDescriptorFlag != 0 {
                problems.append("\(shown): uses a data descriptor (CRC-32 and sizes after the data, not in the local header)")
            }
            offset = local.offset + local.length + Int(entry.fields.compressedSize)
            if entry.fields.flags & ZipRecords.dataDescriptorFlag != 0 {
                offset += ZipRecords.hasSignature(ZipRecords.dataDescriptorSignature, in: bytes, at: offset) ? 16 : 12
            }
        }
        if offset != Int(end.directoryOffset) {
            problems.append("\(Int(end.directoryOffset) - offset) unexplained bytes lie between the last member and the central directory")
        }
        return problems
    }

    private static func fieldMismatches(_ local: ZipRecords.EntryFields, _ central: ZipRecords.EntryFields) -> [String] {
        var fields: [String] = []
        if local.name != central.name { fields.append("name (\(displayName(local.name)))") }
        if local.flags != central.flags { fields.append("flags") }
        if local.method != central.method { fields.append("compression method") }
        if local.crc32 != central.crc32 { fields.append("CRC-32") }
        if local.compressedSize != central.compressedSize { fields.append("compressed size") }
        if local.uncompressedSize != central.uncompressedSize { fields.append("uncompressed size") }
        return fields
    }

    private static func displayName(_ name: [UInt8]) -> String {
        String(decoding: name, as: UTF8.self)
    }
}
