import CArchive
import FoundationEssentials

/// Reads the regular-file members of a tar.gz or zip (libarchive detects which).
///
/// Only the formats sdists and wheels use are enabled: each further libarchive reader would
/// pull its own compression or XML library into the statically linked binary.
enum ArchiveReader {
    /// AE_IFREG; the C macro is not imported into Swift.
    static let regularFileType: mode_t = 0o100000

    static func members(of data: Data) throws(ArchiveWriter.Failure) -> [String: Data] {
        guard let archive = archive_read_new() else { throw ArchiveWriter.Failure(description: "libarchive: out of memory") }
        defer { archive_read_free(archive) }
        archive_read_support_filter_gzip(archive)
        archive_read_support_format_tar(archive)
        archive_read_support_format_zip(archive)
        var members: [String: Data] = [:]
        let status = data.withUnsafeBytes { buffer -> Int32 in
            guard archive_read_open_memory(archive, buffer.baseAddress, buffer.count) == ARCHIVE_OK else { return ARCHIVE_FATAL }
            var entry: OpaquePointer?
            while true {
                let result = archive_read_next_header(archive, &entry)
                if result == ARCHIVE_EOF { return ARCHIVE_OK }
                guard result == ARCHIVE_OK || result == ARCHIVE_WARN, let entry else { return result }
                guard archive_entry_filetype(entry) == regularFileType, let name = archive_entry_pathname_utf8(entry) ?? archive_entry_pathname(entry) else {
                    continue
                }
                var contents = Data()
                var chunk = [UInt8](repeating: 0, count: 65536)
                while true {
                    let count = archive_read_data(archive, &chunk, chunk.count)
                    if count < 0 { return ARCHIVE_FATAL }
                    if count == 0 { break }
                    contents.append(chunk, count: count)
                }
                members[String(cString: name)] = contents
            }
        }
        guard status == ARCHIVE_OK else {
            let message = archive_error_string(archive).map { String(cString: $0) } ?? "not a readable archive"
            throw ArchiveWriter.Failure(description: message)
        }
        return members
    }
}
