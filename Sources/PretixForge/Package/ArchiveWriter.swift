import CArchive
import CDeflate
import Dispatch
import FoundationEssentials
import Glibc
import Synchronization

/// Writes reproducible tar.gz and zip archives through libarchive; libdeflate compresses
/// the tar's gzip stream and the zip's members.
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
        let streamed = try libarchiveOutput(entries, format: format, mtime: mtime, directories: directories)
        guard format == .zip else { return try gzip(streamed) }
        do {
            return Data(try deflatingMembersWithSizesInLocalHeaders(streamed))
        } catch {
            throw Failure(description: "libarchive wrote a zip this tool cannot lay out: \(error)")
        }
    }

    /// The archive exactly as libarchive streams it. As bytes, which the zip rewrite reads and
    /// gzip compresses, without a copy to convert them (each copy of a fresh buffer is a page
    /// fault every 4 KiB).
    static func libarchiveOutput(_ entries: [Entry], format: Format, mtime: Int, directories: [String]) throws(Failure) -> [UInt8] {
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
            // The tar only: `gzip` compresses it.
            try check(archive_write_set_format_pax_restricted(archive), "pax format")
        case .zip:
            // Members stored: `deflatingMembersWithSizesInLocalHeaders` compresses them.
            try check(archive_write_set_format_zip(archive), "zip format")
            try check(archive_write_set_format_option(archive, "zip", "compression", "store"), "zip compression")
        }
        // libarchive pads its output to whole 10 KiB blocks, as tape drives wanted. Inside the
        // gzip stream that only costs size; after a zip's end record it is trailing garbage that
        // strict readers (uv, PyPI's upload check) refuse.
        try check(archive_write_set_bytes_in_last_block(archive, 1), "block size")

        let output = OutputBuffer()
        // Room for the whole archive up front: growing it copied the archive again and again.
        output.bytes.reserveCapacity(entries.reduce(0) { $0 + $1.data.count + 2048 } + 1024 * directories.count + 65536)
        let opaque = Unmanaged.passUnretained(output).toOpaque()
        try check(archive_write_open2(archive, opaque, nil, { _, context, buffer, length in
            guard let context, let buffer else { return -1 }
            let written = UnsafeRawBufferPointer(start: buffer, count: length)
            Unmanaged<OutputBuffer>.fromOpaque(context).takeUnretainedValue().bytes.append(contentsOf: written)
            return length
        }, nil, nil), "open")

        for directory in directories {
            try writeEntry(archive, path: directory, data: nil, mode: 0o040755, mtime: mtime, check: check)
        }
        for entry in entries {
            try writeEntry(archive, path: entry.path, data: entry.data, mode: entry.executable ? 0o100755 : 0o100644, mtime: mtime, check: check)
        }
        try check(archive_write_close(archive), "close")
        return output.bytes
    }

    /// Compression is libdeflate's at its fastest level. Archives here are small (well under
    /// 1 MiB), batch builds of many variants spend most of their time compressing, and
    /// libarchive's own (zlib at level 1) took twice as long for larger files (make bench).
    static let compressionLevel: Int32 = 1

    /// `tar` as one gzip member. libdeflate's header holds no timestamp and no file name, so the
    /// bytes depend on the content only.
    static func gzip(_ tar: [UInt8]) throws(Failure) -> Data {
        guard let compressor = libdeflate_alloc_compressor(compressionLevel) else { throw Failure(description: "libdeflate: out of memory") }
        defer { libdeflate_free_compressor(compressor) }
        // Room for the bound, of which only what is written gets touched (a zeroed buffer of the
        // bound's size was a page fault every 4 KiB of it); the Data frees it.
        let bound = libdeflate_gzip_compress_bound(compressor, tar.count)
        guard let output = malloc(bound) else { throw Failure(description: "out of memory") }
        let written = tar.withUnsafeBytes { input in
            libdeflate_gzip_compress(compressor, input.baseAddress, input.count, output, bound)
        }
        guard written > 0 else {
            free(output)
            throw Failure(description: "libdeflate: the gzip stream did not fit its bound")
        }
        return Data(bytesNoCopy: output, count: written, deallocator: .free)
    }

    /// libarchive writes zips as a stream and cannot seek back, so every member's CRC-32 and
    /// size follow its data in a data descriptor, with zeros in the local header. Readers that
    /// walk the local headers (uv, PyPI's upload check, which refuses data descriptors outright)
    /// then see other values than readers of the central directory. This rewrites the archive
    /// as a seekable writer would have: each stored member deflated (libdeflate, raw deflate,
    /// method 8), the values from the central directory in each local header, flag bit 3
    /// cleared, descriptors dropped, offsets moved. libarchive's names, times, modes and extra
    /// fields stay as they are.
    static func deflatingMembersWithSizesInLocalHeaders(_ bytes: [UInt8]) throws(ZipRecords.Malformed) -> [UInt8] {
        let end = try ZipRecords.endRecord(in: bytes)
        let entries = try ZipRecords.centralDirectory(in: bytes, end: end)
        var members: [(local: ZipRecords.LocalHeader, data: Range<Int>)] = []
        for entry in entries {
            let local = try ZipRecords.localHeader(in: bytes, at: Int(entry.localHeaderOffset))
            guard local.fields.name == entry.fields.name else {
                throw ZipRecords.Malformed(description: "local header at byte \(local.offset) names another member than its directory entry")
            }
            guard entry.fields.method == ZipRecords.storedMethod, entry.fields.compressedSize == entry.fields.uncompressedSize else {
                throw ZipRecords.Malformed(description: "member at byte \(local.offset) is not stored as it is")
            }
            let dataStart = local.offset + local.length, dataEnd = dataStart + Int(entry.fields.compressedSize)
            guard dataEnd <= bytes.count else {
                throw ZipRecords.Malformed(description: "member at byte \(local.offset) runs past the end of the file")
            }
            members.append((local, dataStart ..< dataEnd))
        }
        let deflated = try deflateEach(members.map(\.data), of: bytes)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var offsets: [Int] = []
        for (entry, (member, data)) in zip(entries, zip(members, deflated)) {
            offsets.append(output.count)
            var header = Array(bytes[member.local.offset ..< member.local.offset + member.local.length])
            ZipRecords.put(ZipRecords.deflateVersion, into: &header, at: 4)
            ZipRecords.put(entry.fields.flags & ~ZipRecords.dataDescriptorFlag, into: &header, at: 6)
            ZipRecords.put(ZipRecords.deflatedMethod, into: &header, at: 8)
            ZipRecords.put(entry.fields.crc32, into: &header, at: 14)
            ZipRecords.put(UInt32(data.count), into: &header, at: 18)
            ZipRecords.put(entry.fields.uncompressedSize, into: &header, at: 22)
            output += header
            output += data
        }
        let directoryOffset = output.count
        for (entry, (offset, data)) in zip(entries, zip(offsets, deflated)) {
            var record = Array(bytes[entry.offset ..< entry.offset + entry.length])
            // "Made by": the APPNOTE version in the low byte (stored members said 1.0), the
            // system whose file modes the external attributes hold in the high byte, kept.
            record[4] = UInt8(ZipRecords.deflateVersion)
            ZipRecords.put(ZipRecords.deflateVersion, into: &record, at: 6)
            ZipRecords.put(entry.fields.flags & ~ZipRecords.dataDescriptorFlag, into: &record, at: 8)
            ZipRecords.put(ZipRecords.deflatedMethod, into: &record, at: 10)
            ZipRecords.put(UInt32(data.count), into: &record, at: 20)
            ZipRecords.put(UInt32(offset), into: &record, at: 42)
            output += record
        }
        var endRecord = Array(bytes[end.offset ..< end.end])
        ZipRecords.put(UInt32(output.count - directoryOffset), into: &endRecord, at: 12)
        ZipRecords.put(UInt32(directoryOffset), into: &endRecord, at: 16)
        output += endRecord
        return output
    }

    /// Each range of `bytes` as a raw deflate stream (zip's method 8). Members are independent,
    /// so they are compressed on all cores: the sdist, built beside the wheel, is done first and
    /// its core would otherwise wait for the wheel's last members. A libdeflate compressor serves
    /// one thread at a time; each iteration takes one from a pool.
    private static func deflateEach(_ ranges: [Range<Int>], of bytes: [UInt8]) throws(ZipRecords.Malformed) -> [[UInt8]] {
        let results = ConcurrentSlots<[UInt8]>(count: ranges.count)
        let pool = CompressorPool()
        let input = SharedBytes(bytes: bytes)
        DispatchQueue.concurrentPerform(iterations: ranges.count) { index in
            guard let compressor = pool.take() else { return }
            defer { pool.give(compressor) }
            results.set(index, deflate(input.bytes[ranges[index]], with: compressor.pointer))
        }
        let deflated = results.values.compactMap { $0 }
        guard deflated.count == ranges.count else { throw ZipRecords.Malformed(description: "libdeflate: out of memory") }
        return deflated
    }

    /// The archive the compressing threads read, and only read.
    private struct SharedBytes: @unchecked Sendable {
        let bytes: [UInt8]
    }

    /// libdeflate compressors, each used by one thread at a time, freed with the pool.
    private final class CompressorPool: Sendable {
        struct Compressor: @unchecked Sendable {
            let pointer: OpaquePointer
        }

        private let idle = Mutex<[Compressor]>([])

        func take() -> Compressor? {
            if let compressor = idle.withLock({ $0.popLast() }) { return compressor }
            return libdeflate_alloc_compressor(compressionLevel).map(Compressor.init)
        }

        func give(_ compressor: Compressor) {
            idle.withLock { $0.append(compressor) }
        }

        deinit {
            for compressor in idle.withLock({ $0 }) { libdeflate_free_compressor(compressor.pointer) }
        }
    }

    /// A raw deflate stream of `data`, as zip's method 8 holds it.
    private static func deflate(_ data: ArraySlice<UInt8>, with compressor: OpaquePointer) -> [UInt8] {
        let bound = libdeflate_deflate_compress_bound(compressor, data.count)
        return data.withUnsafeBytes { input in
            [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
                // The bound always fits (libdeflate's contract), so 0 cannot come back.
                count = libdeflate_deflate_compress(compressor, input.baseAddress, input.count, buffer.baseAddress, bound)
            }
        }
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
        var bytes: [UInt8] = []
    }
}
