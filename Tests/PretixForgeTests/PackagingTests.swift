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
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["old.whl"])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.deletingLastPathComponent().path)
        #expect(leftovers == ["dist"], "staging folders must be cleaned up: \(leftovers)")
    }

    @Test func updateKeepsUnrelatedFilesAndReplaceDoesNot() throws {
        let folder = try Repo.temporaryDirectory().appendingPathComponent("out")
        try AtomicOutput.update(folder.path, with: ["keep.txt": Data("k".utf8)])
        try AtomicOutput.update(folder.path, with: ["new.txt": Data("n".utf8)])
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)) == ["keep.txt", "new.txt"])
        #expect(throws: ForgeError.self) { try AtomicOutput.replaceDirectory(folder.path, with: ["only.txt": Data()], marker: "pretixplugin.toml") }
        try AtomicOutput.update(folder.path, with: ["pretixplugin.toml": Data()])
        try AtomicOutput.replaceDirectory(folder.path, with: ["only.txt": Data("o".utf8)], marker: "pretixplugin.toml")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["only.txt"])
    }
}
