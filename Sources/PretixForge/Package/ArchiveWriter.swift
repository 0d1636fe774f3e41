import CArchive
import Foundation

/// Writes reproducible tar.gz and zip archives through libarchive.
/// Every entry gets the same mtime, uid/gid 0, empty owner names and normalised modes;
/// callers pass entries in the order they must appear.
struct ArchiveWriter {
    enum Format {
        /// POSIX.1-2001 pax tar, gzip-compressed, with a gzip header that never varies.
        case tarGzip
        /// Deflate-compressed zip, as wheels use.
        case zip
    }

    struct Entry {
        var path: String
        var data: Data
        var executable: Bool = false
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func write(_ entries: [Entry], format: Format, mtime: Int, directories: [String] = []) throws(Failure) -> Data {
        guard let archive = archive_write_new() else { throw Failure(description: "libarchive: out of memory") }
        defer { archive_write_free(archive) }
        func check(_ status: Int32, _ what: String) throws(Failure) {
            if status != ARCHIVE_OK {
                let message = archive_error_string(archive).map { String(cString: $0) } ?? "status \(status)"
                throw Failure(description: "libarchive \(what): \(message)")
            }
        }
        switch format {
        case .tarGzip:
            try check(archive_write_set_format_pax_restricted(archive), "pax format")
            try check(archive_write_add_filter_gzip(archive), "gzip filter")
            // No timestamp (and no file name) in the gzip header: the bytes depend on content only.
            try check(archive_write_set_filter_option(archive, "gzip", "timestamp", nil), "gzip timestamp option")
            // Fast deflate: these archives are small (well under 1 MiB) and batch builds of many
            // variants spend most of their time compressing; level 1 costs about 15 % in size.
            try check(archive_write_set_filter_option(archive, "gzip", "compression-level", "1"), "gzip level")
        case .zip:
            try check(archive_write_set_format_zip(archive), "zip format")
            try check(archive_write_set_format_option(archive, "zip", "compression", "deflate"), "zip compression")
            try check(archive_write_set_format_option(archive, "zip", "compression-level", "1"), "zip level (see gzip)")
        }
        // Whole blocks of zeros would pad the tar; keep the archive as small as the content.
        if format == .tarGzip { try check(archive_write_set_bytes_in_last_block(archive, 1), "block size") }

        let output = OutputBuffer()
        let opaque = Unmanaged.passUnretained(output).toOpaque()
        try check(archive_write_open2(archive, opaque, nil, { _, context, buffer, length in
            guard let context, let buffer else { return -1 }
            Unmanaged<OutputBuffer>.fromOpaque(context).takeUnretainedValue().data.append(buffer.assumingMemoryBound(to: UInt8.self), count: length)
            return length
        }, nil, nil), "open")

        for directory in directories {
            try writeEntry(archive, path: directory, data: nil, mode: 0o040755, mtime: mtime, check: check)
        }
        for entry in entries {
            try writeEntry(archive, path: entry.path, data: entry.data, mode: entry.executable ? 0o100755 : 0o100644, mtime: mtime, check: check)
        }
        try check(archive_write_close(archive), "close")
        return output.data
    }

    private static func writeEntry(_ archive: OpaquePointer, path: String, data: Data?, mode: mode_t, mtime: Int,
                                   check: (Int32, String) throws(Failure) -> Void) throws(Failure) {
        guard let entry = archive_entry_new() else { throw Failure(description: "libarchive: out of memory") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname_utf8(entry, path)
        archive_entry_set_mode(entry, mode)
        archive_entry_set_size(entry, la_int64_t(data?.count ?? 0))
        archive_entry_set_mtime(entry, time_t(mtime), 0)
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        archive_entry_set_uname(entry, "")
        archive_entry_set_gname(entry, "")
        try check(archive_write_header(archive, entry), "header for \(path)")
        if let data, !data.isEmpty {
            let written = data.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
            if written != data.count {
                throw Failure(description: "libarchive: short write for \(path)")
            }
        }
    }

    private final class OutputBuffer {
        var data = Data()
    }
}
