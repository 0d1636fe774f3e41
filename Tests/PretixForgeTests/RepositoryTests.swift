import Foundation
import Testing
@testable import PretixForge

@Suite("Repository: manifest, in-place writes, kit, overlays")
struct RepositoryTests {
    static func stock() throws -> ForgeConfig { try ConfigLoader.loadDefault() }

    static func files(in folder: URL) throws -> [String: Data] {
        try DriftCheck.readTree(folder.path)
    }

    // MARK: Manifest

    @Test func manifestIsDeterministicSortedAndRoundTrips() throws {
        let config = try Self.stock()
        let tree = try Pipeline.render(config)
        let sources = TreeSources(configPath: nil, templatesPath: nil)
        let first = Pipeline.treeManifest(for: tree, config: config, templates: .embedded, sources: sources, directory: "t", previous: nil).manifest
        let second = Pipeline.treeManifest(for: try Pipeline.render(config), config: config, templates: .embedded, sources: sources,
                                           directory: "t", previous: nil).manifest
        #expect(first.data == second.data)
        let text = String(decoding: first.data, as: UTF8.self)
        #expect(text.contains("\"forge_version\": \"\(Pipeline.toolVersion)\"") && text.contains("\"from\": \"embedded\""))
        let keys = first.files.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let positions = keys.map { text.range(of: "\"\($0)\": ")!.lowerBound }
        #expect(positions == positions.sorted(), "managed paths must be written in byte order")
        #expect(try TreeManifest.decode(first.data, file: "m") == first)
        #expect(first.files[".github/workflows/tests.yml"] != nil && first.files[TreeManifest.fileName] == nil)
    }

    @Test(arguments: ["../outside", "/etc/passwd", ".git/config", "a//b", "./x"])
    func manifestListingAPathOutsideTheTreeIsRefused(_ path: String) throws {
        let config = try Self.stock()
        var manifest = Pipeline.treeManifest(for: PluginTree(files: ["a": Data()]), config: config, templates: .embedded,
                                             sources: .init(configPath: nil, templatesPath: nil), directory: "t", previous: nil).manifest
        manifest.files[path] = String(repeating: "0", count: 64)
        #expect(throws: ForgeError.self) { try TreeManifest.decode(manifest.data, file: "m") }
    }

    @Test func configDigestIgnoresCommentsButNotValues() throws {
        let plain = try ConfigLoader.load(source: config(), file: "a.toml", baseDirectory: nil)
        let commented = try ConfigLoader.load(source: "# a note\n" + config(), file: "b.toml", baseDirectory: nil)
        let changed = try ConfigLoader.load(source: config(replacing: ["poll_interval_seconds": "5"]), file: "c.toml", baseDirectory: nil)
        #expect(plain.digest == commented.digest)
        #expect(plain.digest != changed.digest)
    }

    @Test func canonicalJSONEscapesControlCharacters() {
        let data = CanonicalJSON.encode(.object(["b": .string("q\"\\\n\u{1}é"), "a": .array([.int(1), .null])]))
        #expect(String(decoding: data, as: UTF8.self) == "{\n  \"a\": [\n    1,\n    null\n  ],\n  \"b\": \"q\\\"\\\\\\n\\u0001é\"\n}\n")
        #expect(CanonicalJSON.decode(data) == .object(["b": .string("q\"\\\n\u{1}é"), "a": .array([.int(1), .null])]))
    }

    // MARK: Patterns and the repository kit

    @Test(arguments: [
        ("docs/**", "docs/index.md", true), ("docs/**", "docs/a/b/c.md", true), ("docs/**", "docsx/a.md", false),
        ("**/*.md", "README.md", true), ("**/*.md", "a/b/NOTES.md", true), ("*.md", "a/NOTES.md", false),
        ("CHANGELOG.md", "CHANGELOG.md", true), ("data/?.csv", "data/a.csv", true), ("data/?.csv", "data/ab.csv", false),
        ("**", "anything/at/all", true),
    ])
    func globsMatchLikeGitignore(_ pattern: String, _ path: String, _ expected: Bool) throws {
        #expect(try #require(PathGlob(pattern)).matches(path) == expected)
    }

    @Test func kitCanBeSwitchedOff() throws {
        let source = config(replacing: ["gitignore": "false", "workflows": "false"])
        let tree = try Pipeline.render(try ConfigLoader.load(source: source, file: "forge.toml", baseDirectory: nil))
        #expect(tree.files[".gitignore"] == nil)
        #expect(!tree.files.keys.contains { $0.hasPrefix(".github/") })
        let full = try Pipeline.render(try Self.stock())
        #expect(full.files[".gitignore"] != nil && full.files[".github/workflows/release.yml"] != nil
                && full.files[".github/actions/pretix-forge/action.yml"] != nil)
    }

    @Test func gitignoreNeverIgnoresAShippedFile() throws {
        let tree = try Pipeline.render(try Self.stock())
        let gitignore = String(decoding: try #require(tree.files[".gitignore"]), as: UTF8.self)
        let rules = gitignore.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        #expect(!rules.contains { $0.contains("*.mo") || $0 == "locale/" || $0.hasSuffix(".json") })
    }

    @Test func anUnmanagedPatternMayNotClaimAGeneratedFile() throws {
        let source = config(replacing: ["unmanaged": "[\"docs/**\", \"README.md\"]"])
        let config = try ConfigLoader.load(source: source, file: "forge.toml", baseDirectory: nil)
        do {
            _ = try Pipeline.render(config)
            Issue.record("rendering should fail")
        } catch {
            let diagnostic = try #require(error.diagnostics.first)
            #expect(diagnostic.keyPath == "repository.unmanaged" && diagnostic.location.line != nil && diagnostic.location.file == "forge.toml")
            #expect(diagnostic.message.contains("README.md"))
        }
    }

    @Test func sdistCarriesAManifestButNotTheRepositoryKit() throws {
        let config = try Self.stock()
        let dist = try Pipeline.distribution(config, tree: try Pipeline.render(config), environment: [:])
        let members = try ArchiveReader.members(of: dist.sdist)
        #expect(!members.keys.contains { $0.contains("/.github/") || $0.hasSuffix("/.gitignore") })
        let manifest = try TreeManifest.decode(try #require(members["pretix_noderails-1.0.0/.pretix-forge.json"]), file: "m")
        #expect(manifest.forgeVersion == Pipeline.toolVersion && manifest.config.origin == .unrecorded)
        #expect(DriftCheck.forgeVersion(ofArtifact: dist.sdist, name: dist.sdistName) == Pipeline.toolVersion)
        #expect(DriftCheck.forgeVersion(ofArtifact: dist.wheel, name: dist.wheelName) == Pipeline.toolVersion)
    }

    // MARK: Overlays

    @Test func overlayAddsFilesRefusesNearMissesAndConflictMarkers() throws {
        let folder = try Repo.temporaryDirectory()
        func write(_ path: String, _ text: String) throws {
            let url = folder.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        try write("CHANGELOG.md", "# <% package.name %>\n")
        try write("__module__/locale/fr/LC_MESSAGES/django.po", "msgid \"\"\nmsgstr \"Content-Type: text/plain; charset=UTF-8\\n\"\n")
        try write("README.md", "replaced\n")
        let overlay = try Overlay.load(folder.path, over: .embedded)
        #expect(overlay.added == ["CHANGELOG.md", "__module__/locale/fr/LC_MESSAGES/django.po"] && overlay.replaced == ["README.md"])
        let tree = try Pipeline.render(try Self.stock(), templates: TemplateSet.embedded.overlaid(with: overlay))
        #expect(tree.files["CHANGELOG.md"] == Data("# pretix-noderails\n".utf8))
        #expect(tree.files["pretix_noderails/locale/fr/LC_MESSAGES/django.mo"] != nil, "an added catalogue is compiled too")

        try write("__module__/paymnet.py", "x = 1\n")
        #expect { try Overlay.load(folder.path, over: .embedded) } throws: { ($0 as? ForgeError)?.description.contains("__module__/payment.py") == true }
        try FileManager.default.removeItem(at: folder.appendingPathComponent("__module__/paymnet.py"))
        try write("README.md", "<<<<<<< yours\na\n=======\nb\n>>>>>>> theirs\n")
        #expect { try Overlay.load(folder.path, over: .embedded) } throws: { ($0 as? ForgeError)?.description.contains("README.md:1") == true }
    }

    // MARK: Writing into an existing tree

    @Test func planTouchesOnlyManagedFilesAndRefusesHandEdits() throws {
        let folder = try Repo.temporaryDirectory()
        let old = ["a.txt": Data("a1\n".utf8), "b.txt": Data("b1\n".utf8), "gone.txt": Data("g\n".utf8)]
        for (path, data) in old { try data.write(to: folder.appendingPathComponent(path)) }
        try Data("mine\n".utf8).write(to: folder.appendingPathComponent("mine.txt"))
        let previous = TreeManifest(forgeVersion: "0.0.1", config: .init(digest: "x", origin: .embedded), overlay: nil,
                                    files: old.mapValues { Digest.sha256($0).hexString })
        let new = ["a.txt": Data("a2\n".utf8), "b.txt": Data("b1\n".utf8), "new.txt": Data("n\n".utf8)]
        let clean = TreeUpdate.plan(root: try TreeRoot(folder.path), files: new, previous: previous, force: false)
        #expect(clean.refusals.isEmpty)
        #expect(Set(clean.change.writes.keys) == ["a.txt", "new.txt"] && Array(clean.change.removals.keys) == ["gone.txt"])

        try Data("a1 edited\n".utf8).write(to: folder.appendingPathComponent("a.txt"))
        try Data("in the way\n".utf8).write(to: folder.appendingPathComponent("new.txt"))
        let refused = TreeUpdate.plan(root: try TreeRoot(folder.path), files: new, previous: previous, force: false)
        #expect(refused.refusals.map(\.path) == ["a.txt", "new.txt"])
        let message = refused.refusalError(root: try TreeRoot(folder.path), module: "m").description
        #expect(message.contains("a.txt: error: edited by hand") && message.contains("-a1 edited") && message.contains("--force"))
        let forced = TreeUpdate.plan(root: try TreeRoot(folder.path), files: new, previous: previous, force: true)
        #expect(forced.refusals.isEmpty && Set(forced.change.writes.keys) == ["a.txt", "new.txt"])
        #expect(!forced.change.writes.keys.contains("mine.txt") && !forced.change.removals.keys.contains("mine.txt"))
    }

    /// What a run killed after its commit point leaves: a sealed staging folder holding `staged`
    /// and a sealed journal naming them and `removals`.
    private static func interruptedRun(in root: TreeRoot, staged: [String: Data], removals: [String: String]) throws {
        let seal = try MachineSeal.load()
        try root.makeFolder(TreeTransaction.stagingFolder)
        let parts = TreeTransaction.stagingSealParts(root, root.identity(of: TreeTransaction.stagingFolder)!)
        try root.writeFile(TreeTransaction.stagingFolder + "/" + TreeTransaction.stagingSeal, Data(seal.seal(parts).utf8), durable: false)
        for (path, data) in staged { try root.writeFile(TreeTransaction.stagingFolder + "/" + path, data, durable: false) }
        let journal = TreeTransaction.Journal(install: staged.keys.sorted().map { ($0, Digest.sha256(staged[$0]!).hexString) },
                                              remove: removals, tree: root.identity)
        try root.writeFile(TreeTransaction.journalFile, journal.data(sealedWith: seal), durable: false)
    }

    @Test func journalRollsForwardAndStagingAloneRollsBack() throws {
        let folder = try Repo.temporaryDirectory()
        let root = try TreeRoot(folder.path)
        try Data("old\n".utf8).write(to: folder.appendingPathComponent("a.txt"))
        try Data("remove me\n".utf8).write(to: folder.appendingPathComponent("b.txt"))
        try Self.interruptedRun(in: root, staged: ["a.txt": Data("new\n".utf8), "sub/c.txt": Data("added\n".utf8)],
                                removals: ["b.txt": Digest.sha256(Data("remove me\n".utf8)).hexString])
        #expect(try TreeTransaction.recover(in: root) == .completed)
        #expect(try Self.files(in: folder) == ["a.txt": Data("new\n".utf8), "sub/c.txt": Data("added\n".utf8)])

        // A run killed while staging: the tree is left as it was.
        try Self.interruptedRun(in: root, staged: ["a.txt": Data("half\n".utf8)], removals: [:])
        try FileManager.default.removeItem(at: folder.appendingPathComponent(TreeTransaction.journalFile))
        #expect(try TreeTransaction.recover(in: root) == .rolledBack)
        #expect(try Self.files(in: folder) == ["a.txt": Data("new\n".utf8), "sub/c.txt": Data("added\n".utf8)])
        #expect(try TreeTransaction.recover(in: root) == nil)
    }

    @Test func aJournalOrStagingFolderWithoutThisMachinesSealIsRefusedAndKept() throws {
        let folder = try Repo.temporaryDirectory()
        let root = try TreeRoot(folder.path)
        try Data("old\n".utf8).write(to: folder.appendingPathComponent("a.txt"))
        // A staged file changed after the journal sealed its digest.
        try Self.interruptedRun(in: root, staged: ["a.txt": Data("new\n".utf8)], removals: [:])
        try Data("swapped\n".utf8).write(to: folder.appendingPathComponent(TreeTransaction.stagingFolder + "/a.txt"))
        #expect(throws: ForgeError.self) { try TreeTransaction.recover(in: root) }
        #expect(try Data(contentsOf: folder.appendingPathComponent("a.txt")) == Data("old\n".utf8))

        // The same journal in another folder (copied, or committed and checked out elsewhere).
        let elsewhere = try Repo.temporaryDirectory()
        try FileManager.default.copyItem(at: folder.appendingPathComponent(TreeTransaction.journalFile),
                                         to: elsewhere.appendingPathComponent(TreeTransaction.journalFile))
        let refused = #expect(throws: ForgeError.self) { try TreeTransaction.recover(in: try TreeRoot(elsewhere.path)) }
        #expect(refused?.description.contains("not left by an interrupted pretix-forge run on this machine") == true)
        #expect(FileManager.default.fileExists(atPath: elsewhere.appendingPathComponent(TreeTransaction.journalFile).path))

        // A staging folder with no seal, without a journal.
        let unsealed = try Repo.temporaryDirectory()
        try FileManager.default.createDirectory(at: unsealed.appendingPathComponent(TreeTransaction.stagingFolder + "/x"),
                                                withIntermediateDirectories: true)
        try Data("mine\n".utf8).write(to: unsealed.appendingPathComponent(TreeTransaction.stagingFolder + "/x/notes.md"))
        #expect(throws: ForgeError.self) { try TreeTransaction.recover(in: try TreeRoot(unsealed.path)) }
        #expect(FileManager.default.fileExists(atPath: unsealed.appendingPathComponent(TreeTransaction.stagingFolder + "/x/notes.md").path))
    }
}
