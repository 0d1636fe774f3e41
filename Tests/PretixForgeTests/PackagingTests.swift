import Foundation
import Testing
@testable import PretixForge

@Suite("Package: reproducible sdist and wheel")
struct PackagingTests {
    static func distribution(epoch: String? = nil) throws -> Distribution {
        let config = try ConfigLoader.loadDefault()
        let tree = try Pipeline.render(config)
        return try Pipeline.distribution(config, tree: tree, environment: epoch.map { ["SOURCE_DATE_EPOCH": $0] } ?? [:])
    }

    @Test func namesFollowPep625AndTheWheelSpec() throws {
        let dist = try Self.distribution()
        #expect(dist.sdistName == "pretix_noderails-1.0.0.tar.gz")
        #expect(dist.wheelName == "pretix_noderails-1.0.0-py3-none-any.whl")
        #expect(dist.checksums.split(separator: "\n").count == 2)
    }

    @Test func twoBuildsAreByteIdentical() throws {
        let first = try Self.distribution(), second = try Self.distribution()
        #expect(first.sdist == second.sdist)
        #expect(first.wheel == second.wheel)
    }

    @Test func sourceDateEpochChangesOnlyTimestamps() throws {
        let early = try Self.distribution(epoch: "1600000000"), late = try Self.distribution(epoch: "1700000000")
        #expect(early.sdist != late.sdist)
        #expect(early.wheel != late.wheel)
        #expect(try ArchiveReader.members(of: early.sdist) == ArchiveReader.members(of: late.sdist))
        #expect(try ArchiveReader.members(of: early.wheel) == ArchiveReader.members(of: late.wheel))
    }

    @Test func badSourceDateEpochIsAClearError() {
        #expect(throws: ForgeError.self) { try Self.distribution(epoch: "yesterday") }
    }

    @Test func sdistHasOneTopDirectoryAndPkgInfo() throws {
        let members = try ArchiveReader.members(of: try Self.distribution().sdist)
        #expect(members.keys.allSatisfy { $0.hasPrefix("pretix_noderails-1.0.0/") })
        let pkgInfo = String(decoding: members["pretix_noderails-1.0.0/PKG-INFO"] ?? Data(), as: UTF8.self)
        for field in ["Metadata-Version: 2.4\n", "Name: pretix-noderails\n", "Version: 1.0.0\n", "License-Expression: Apache-2.0\n",
                      "License-File: LICENSE\n", "Description-Content-Type: text/markdown\n", "Author-email: "] {
            #expect(pkgInfo.contains(field), "PKG-INFO lacks \(field)")
        }
        #expect(members["pretix_noderails-1.0.0/pretix_noderails/locale/de/LC_MESSAGES/django.mo"] != nil)
    }

    @Test func wheelRecordListsEveryFileWithItsDigest() throws {
        let members = try ArchiveReader.members(of: try Self.distribution().wheel)
        let record = String(decoding: members["pretix_noderails-1.0.0.dist-info/RECORD"] ?? Data(), as: UTF8.self)
        let lines = record.split(separator: "\n")
        #expect(lines.count == members.count)
        for line in lines where !line.hasSuffix(",,") {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let data = try #require(members[fields[0]])
            #expect(fields[1] == "sha256=" + Digest.sha256(data).urlSafeBase64NoPadding)
            #expect(fields[2] == String(data.count))
        }
        let entryPoints = String(decoding: members["pretix_noderails-1.0.0.dist-info/entry_points.txt"] ?? Data(), as: UTF8.self)
        #expect(entryPoints.contains("[pretix.plugin]"))
        #expect(members.keys.contains("pretix_noderails-1.0.0.dist-info/licenses/LICENSE"))
        #expect(!members.keys.contains { $0.hasPrefix("tests/") })
    }

    @Test func failedPublishLeavesTheOldOutputUntouched() throws {
        let folder = try Repo.temporaryDirectory().appendingPathComponent("dist")
        try AtomicOutput.update(folder.path, with: ["old.whl": Data("old".utf8)])
        // "a" as a file and "a/b" below it cannot both be written: staging fails halfway.
        #expect(throws: ForgeError.self) {
            try AtomicOutput.update(folder.path, with: ["a": Data("1".utf8), "a/b": Data("2".utf8), "new.whl": Data("new".utf8)])
        }
        // The record of what pretix-forge wrote there (OutputRecord) beside it.
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)) == ["old.whl", OutputRecord.fileName])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.deletingLastPathComponent().path)
        #expect(leftovers == ["dist"], "staging folders must be cleaned up: \(leftovers)")
    }

    @Test func updateKeepsUnrelatedFilesAndCreateNeverReplaces() throws {
        let folder = try Repo.temporaryDirectory().appendingPathComponent("out")
        try AtomicOutput.update(folder.path, with: ["keep.txt": Data("k".utf8)])
        try AtomicOutput.update(folder.path, with: ["new.txt": Data("n".utf8)])
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)) == ["keep.txt", "new.txt", OutputRecord.fileName])
        // A folder with contents that appeared meanwhile is never replaced by a new tree.
        #expect(throws: ForgeError.self) { try AtomicOutput.createDirectory(folder.path, with: ["only.txt": Data()]) }
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)) == ["keep.txt", "new.txt", OutputRecord.fileName])
        let fresh = folder.deletingLastPathComponent().appendingPathComponent("fresh")
        try AtomicOutput.createDirectory(fresh.path, with: ["only.txt": Data("o".utf8)])
        #expect(try FileManager.default.contentsOfDirectory(atPath: fresh.path) == ["only.txt"])
    }
}

@Suite("Package: wheels every zip reader reads alike")
struct ZipConformanceTests {
    static let mtime = 1_600_000_000
    static let entries = [
        ArchiveWriter.Entry(path: "pkg/__init__.py", data: Data()),
        ArchiveWriter.Entry(path: "pkg/views.py", data: Data(String(repeating: "x = 1\n", count: 400).utf8)),
    ]

    @Test func ourWheelPassesTheStrictReading() throws {
        #expect(ZipConformance.problems(in: try PackagingTests.distribution().wheel) == [])
    }

    @Test func libarchiveAloneStreamsDataDescriptorsAndPadding() throws {
        let streamed = try ArchiveWriter.libarchiveOutput(Self.entries, format: .zip, mtime: Self.mtime, directories: [])
        let problems = ZipConformance.problems(in: Data(streamed))
        #expect(problems.contains("pkg/views.py: uses a data descriptor (CRC-32 and sizes after the data, not in the local header)"))
        #expect(problems.contains("pkg/views.py: the local header's CRC-32 differs from the central directory's"))
        let written = try ArchiveWriter.write(Self.entries, format: .zip, mtime: Self.mtime)
        #expect(ZipConformance.problems(in: written) == [])
        #expect(try ArchiveReader.members(of: written) == Dictionary(uniqueKeysWithValues: Self.entries.map { ($0.path, $0.data) }))
        // libarchive stores the members; each one is deflated (method 8) in the archive written.
        let bytes = [UInt8](written), streamedBytes = streamed
        let methods = try ZipRecords.centralDirectory(in: bytes, end: ZipRecords.endRecord(in: bytes)).map(\.fields.method)
        let streamedMethods = try ZipRecords.centralDirectory(in: streamedBytes, end: ZipRecords.endRecord(in: streamedBytes)).map(\.fields.method)
        #expect(streamedMethods == [0, 0] && methods == [8, 8])
        #expect(written.count < streamed.count)
    }

    @Test func bytesAfterTheEndRecordAreNamed() throws {
        let wheel = try ArchiveWriter.write(Self.entries, format: .zip, mtime: Self.mtime)
        #expect(ZipConformance.problems(in: wheel + Data(count: 6006)) == ["6006 bytes follow the end-of-central-directory record"])
        var commented = [UInt8](wheel)
        ZipRecords.put(UInt16(4), into: &commented, at: commented.count - 2)
        #expect(ZipConformance.problems(in: Data(commented + Array("note".utf8))) == ["the archive carries a comment of 4 bytes"])
    }

    @Test func namesThatEscapeOrRepeatAreNamed() throws {
        let hostile = ["pkg/a.py", "pkg/a.py", "/etc/cron.d/x", "pkg/../../evil.py"].map { ArchiveWriter.Entry(path: $0, data: Data("1".utf8)) }
        let problems = ZipConformance.problems(in: try ArchiveWriter.write(hostile, format: .zip, mtime: Self.mtime))
        #expect(problems.contains("pkg/a.py: the name appears twice"))
        #expect(problems.contains("/etc/cron.d/x: the name is absolute"))
        #expect(problems.contains("pkg/../../evil.py: the name climbs out of the install folder with .."))
    }

    @Test func aLocalHeaderThatDisagreesIsNamed() throws {
        var bytes = [UInt8](try ArchiveWriter.write(Self.entries, format: .zip, mtime: Self.mtime))
        // The second member's local header claims another uncompressed size.
        let second = Int(try ZipRecords.centralDirectory(in: bytes, end: ZipRecords.endRecord(in: bytes))[1].localHeaderOffset)
        ZipRecords.put(UInt32(1), into: &bytes, at: second + 22)
        #expect(ZipConformance.problems(in: Data(bytes)) == ["pkg/views.py: the local header's uncompressed size differs from the central directory's"])
    }
}
