import FoundationEssentials

/// Verify stage: compares what the config produces now with a committed tree or released files.
public struct DriftReport: Sendable, CustomStringConvertible {
    public enum Change: Sendable, Equatable {
        /// Present in the expected output, missing on disk.
        case missing(String)
        /// On disk, not part of the expected output.
        case unexpected(String)
        case changed(String, diff: String?)
        /// A wheel that strict zip readers refuse or read differently from pip.
        case unreadable(String)
    }

    public var subject: String
    public var changes: [Change]
    public var repairCommand: String
    /// Said before the differences: what explains them (another forge version, a changed config).
    public var notes: [String] = []
    /// Said after them, not counted as drift: files the tree holds that pretix-forge does not manage.
    public var information: [String] = []

    public var isClean: Bool { changes.isEmpty }

    public var description: String {
        var text = notes.map { "\(subject): \($0)\n" }.joined()
        guard !isClean else { return text + "\(subject): up to date\n" + information.joined() }
        text += "\(subject): \(changes.count) difference\(changes.count == 1 ? "" : "s") from what the config produces\n"
        for change in changes {
            switch change {
            case .missing(let path): text += "  removed:  \(path) (the config produces it)\n"
            case .unexpected(let path): text += "  added:    \(path) (the config does not produce it)\n"
            case .changed(let path, let diff):
                text += "  changed:  \(path)\n"
                if let diff { text += diff.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n") + "\n" }
            case .unreadable(let problem): text += "  invalid:  \(problem)\n"
            }
        }
        text += "to repair: \(repairCommand)\n"
        return text + information.joined()
    }
}

public enum DriftCheck {
    /// Files a tool, a test run or the desktop leaves in a tree (or an overlay), which are not part of it.
    static func isIgnoredLocalFile(_ path: String) -> Bool {
        path.split(separator: "/").contains { $0 == "__pycache__" || $0 == ".pytest_cache" || $0.hasSuffix(".egg-info") }
            || path.hasSuffix(".pyc") || path == ".DS_Store" || path.hasSuffix("/.DS_Store")
    }

    public static func compare(expected: [String: Data], actual: [String: Data], subject: String, repairCommand: String) -> DriftReport {
        var changes: [DriftReport.Change] = []
        let paths = Set(expected.keys).union(actual.keys).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        for path in paths {
            switch (expected[path], actual[path]) {
            case (_?, nil): changes.append(.missing(path))
            case (nil, _?): changes.append(.unexpected(path))
            case (let want?, let have?) where want != have:
                var diff: String?
                if let old = String(data: have, encoding: .utf8), let new = String(data: want, encoding: .utf8) {
                    diff = LineDiff.unified(old: old, new: new, oldName: "\(path) (on disk)", newName: "\(path) (from config)")
                }
                changes.append(.changed(path, diff: diff))
            default: break
            }
        }
        return DriftReport(subject: subject, changes: changes, repairCommand: repairCommand)
    }

    /// Reads every regular file under `directory`, keyed by relative path. A folder of
    /// templates may hold no symlink: a link would pull a file from outside it into the plugin.
    public static func readTree(_ directory: String) throws(ForgeError) -> [String: Data] {
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory else {
            throw ForgeError("no such folder", at: SourceLocation(file: directory), fix: "pass the folder of your template overlay to --templates")
        }
        let root = try TreeRoot(directory)
        // The folder may be a git repository of its own: its .git holds no templates.
        let (paths, links) = root.walk(skipping: [".git"])
        if let link = links.first(where: { !isIgnoredLocalFile($0) }) {
            throw ForgeError("is a symbolic link; a template folder holds plain files only", at: SourceLocation(file: root.join(link)),
                             fix: "replace the link with a copy of the file it points to")
        }
        var files: [String: Data] = [:]
        for relative in paths where !isIgnoredLocalFile(relative) {
            do {
                guard case .file(let data) = try root.ownEntry(relative) else { continue }
                files[relative] = data
            } catch {
                throw error.error(in: root)
            }
        }
        return files
    }

    /// Compares a released file with the artifact of the same name built now; archives that
    /// differ are opened so the report names the members. Any wheel, built here or elsewhere,
    /// must also pass the strict zip reading of `ZipConformance`.
    public static func compareArtifact(path: String, expected: Distribution, repairCommand: String) throws(ForgeError) -> DriftReport {
        let name = URL(fileURLWithPath: path).lastPathComponent
        guard let actual = FileManager.default.contents(atPath: path) else {
            throw ForgeError("cannot read the file", at: SourceLocation(file: path))
        }
        var report = compareBytes(name: name, path: path, actual: actual, expected: expected, repairCommand: repairCommand)
        if name.hasSuffix(".whl") {
            report.changes = ZipConformance.problems(in: actual).map { .unreadable($0) } + report.changes
        }
        return report
    }

    private static func compareBytes(name: String, path: String, actual: Data, expected: Distribution, repairCommand: String) -> DriftReport {
        guard let want = expected.files.first(where: { $0.name == name })?.data else {
            let names = expected.files.map(\.name).joined(separator: ", ")
            return DriftReport(subject: path, changes: [.unexpected(name)],
                               repairCommand: "\(repairCommand)  (the config produces \(names))")
        }
        guard want != actual else { return DriftReport(subject: path, changes: [], repairCommand: repairCommand) }
        var report = compareArchives(name: name, want: want, actual: actual, subject: path, repairCommand: repairCommand)
        if let builtBy = forgeVersion(ofArtifact: actual, name: name), builtBy != Pipeline.toolVersion {
            report.notes.insert("built by pretix-forge \(builtBy); this is pretix-forge \(Pipeline.toolVersion). Differences may come "
                                + "from the forge version: check with pretix-forge \(builtBy), or rebuild with \(Pipeline.toolVersion).", at: 0)
        }
        return report
    }

    /// The forge version an sdist or wheel records: the wheel's `Generator:` line, the sdist's manifest.
    static func forgeVersion(ofArtifact data: Data, name: String) -> String? {
        guard name.hasSuffix(".whl") || name.hasSuffix(".tar.gz"), let members = try? ArchiveReader.members(of: data) else { return nil }
        if name.hasSuffix(".whl") {
            guard let wheel = members.first(where: { $0.key.hasSuffix(".dist-info/WHEEL") })?.value else { return nil }
            let prefix = "Generator: pretix-forge "
            return String(decoding: wheel, as: UTF8.self).split(separator: "\n")
                .first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)).trimming(.whitespaces) }
        }
        let manifestName = members.keys.first { $0.split(separator: "/").count == 2 && $0.hasSuffix("/" + TreeManifest.fileName) }
        guard let manifestName, let data = members[manifestName] else { return nil }
        return (try? TreeManifest.decode(data, file: manifestName))?.forgeVersion
    }

    private static func compareArchives(name: String, want: Data, actual: Data, subject path: String,
                                        repairCommand: String) -> DriftReport {
        guard name != "SHA256SUMS",
              let wantMembers = try? ArchiveReader.members(of: want),
              let haveMembers = try? ArchiveReader.members(of: actual) else {
            return compare(expected: [name: want], actual: [name: actual], subject: path, repairCommand: repairCommand)
        }
        var report = compare(expected: wantMembers, actual: haveMembers, subject: path, repairCommand: repairCommand)
        if report.isClean {
            // Same members, different bytes: timestamps, order or compression differ.
            report.changes = [.changed(name, diff: "same members, different archive bytes (timestamps, modes or order)")]
        }
        return report
    }
}
