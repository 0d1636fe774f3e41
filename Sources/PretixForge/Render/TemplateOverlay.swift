import FoundationEssentials

/// A folder of the maintainer's templates: a file at the path of a built-in template replaces
/// it, any other file is added to the tree (a CHANGELOG.md, a third language's .po, an extra
/// module). Added files are templates too, rendered with the same variables.
public struct Overlay: Sendable {
    /// The folder as given on the command line.
    public var directory: String
    public var files: [String: Data]
    /// Overlay paths that replace a built-in template, and those that add a file of their own.
    public var replaced: [String]
    public var added: [String]

    /// SHA-256 over every file's path and content, recorded in the manifest so `check` can say
    /// that the overlay changed since the tree was generated.
    public var digest: String {
        Digest.sha256(CanonicalJSON.encode(.object(files.mapValues { .string(Digest.sha256($0).hexString) }))).hexString
    }

    public static func load(_ directory: String, over builtins: TemplateSet) throws(ForgeError) -> Overlay {
        let files = try DriftCheck.readTree(directory)
        var problems: [Diagnostic] = []
        var replaced: [String] = [], added: [String] = []
        for (path, data) in files.sorted(by: { $0.key < $1.key }) {
            let location = SourceLocation(file: "\(directory)/\(path)")
            if let name = reservedName(in: path) {
                problems.append(Diagnostic("would be written to \(name), which belongs to git or to pretix-forge, never to a template",
                                           at: location, fix: "remove it from the overlay folder"))
                continue
            }
            if let line = conflictMarkerLine(in: data) {
                problems.append(Diagnostic("holds an unresolved merge conflict (a <<<<<<< or >>>>>>> line)",
                                           at: SourceLocation(file: location.file, line: line),
                                           fix: "resolve the conflict that `pretix-forge overlay update` marked, then remove the marker lines"))
                continue
            }
            if builtins.files[path] != nil {
                replaced.append(path)
            } else if let near = nearMiss(path, in: builtins) {
                problems.append(Diagnostic("adds a new file whose name is a letter or two away from the built-in template \(near)",
                                           at: location, fix: "name it \(near) to replace that template; give a new file a clearly different name"))
            } else {
                added.append(path)
            }
        }
        if !problems.isEmpty { throw ForgeError(problems) }
        return Overlay(directory: directory, files: files, replaced: replaced, added: added)
    }

    /// A name in `path` the rendered tree must not get from a template: git's folder (a hook there
    /// runs on the maintainer's next commit) or pretix-forge's own bookkeeping. Compared without case,
    /// as the file systems of macOS and Windows do.
    static func reservedName(in path: String) -> String? {
        let components = path.split(separator: "/").map(String.init)
        if let git = components.first(where: { $0.lowercased() == ".git" }) { return git }
        let ownNames = [TreeManifest.fileName, TreeTransaction.journalFile, TreeTransaction.journalTemporary,
                        TreeTransaction.stagingFolder].map { $0.lowercased() }
        return components.first.flatMap { ownNames.contains($0.lowercased()) ? $0 : nil }
    }

    /// The line of the first merge-conflict marker, if any; such a file must never be rendered.
    static func conflictMarkerLine(in data: Data) -> Int? {
        guard let text = String(data: data, encoding: .utf8) else { return nil }
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where line.hasPrefix("<<<<<<< ") || line.hasPrefix(">>>>>>> ") || line == "<<<<<<<" || line == ">>>>>>>" {
            return index + 1
        }
        return nil
    }

    /// A built-in template in the same folder, with the same extension, whose file name differs
    /// by one or two letters: `__module__/paymnet.py` is a typo, not a new module.
    static func nearMiss(_ path: String, in builtins: TemplateSet) -> String? {
        let url = URL(fileURLWithPath: "/" + path)
        let folder = url.deletingLastPathComponent().path, name = url.deletingPathExtension().lastPathComponent
        guard name.count >= 4 else { return nil }
        return builtins.files.keys.sorted().first { candidate in
            let other = URL(fileURLWithPath: "/" + candidate)
            return other.deletingLastPathComponent().path == folder && other.pathExtension == url.pathExtension
                && Suggestions.editDistance(name, other.deletingPathExtension().lastPathComponent) <= 2
        }
    }
}

extension TemplateSet {
    /// The built-in templates with the overlay in `directory` applied.
    public func overlaid(with directory: String) throws(ForgeError) -> TemplateSet {
        try overlaid(with: Overlay.load(directory, over: self))
    }

    public func overlaid(with overlay: Overlay) -> TemplateSet {
        var files = self.files
        files.merge(overlay.files) { _, mine in mine }
        var result = TemplateSet(files: files)
        result.overlay = overlay
        return result
    }
}
