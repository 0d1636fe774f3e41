import FoundationEssentials

/// What `generate --out DIR` does to a folder that exists, decided before anything is written:
/// add, replace or remove managed files only, and refuse to overwrite what pretix-forge did not
/// write — a managed file edited by hand, or a file of the maintainer's standing where a new
/// managed file would go.
public struct TreeUpdate: Sendable {
    public enum Refusal: Sendable {
        /// A managed file changed since pretix-forge wrote it.
        case editedByHand(path: String, diff: String?, removing: Bool)
        /// A file the manifest does not list stands where a managed file would go.
        case notWrittenByForge(path: String, diff: String?)
        /// A folder stands where a managed file would go.
        case folderInTheWay(path: String)
        /// The path cannot be written or removed safely (a link, a mount point, `.git`): refused
        /// even with --force.
        case unsafe(TreeRoot.Failure)

        public var path: String {
            switch self {
            case .editedByHand(let path, _, _), .notWrittenByForge(let path, _), .folderInTheWay(let path): return path
            case .unsafe(let failure): return failure.path
            }
        }
    }

    public var change = TreeTransaction.Change(writes: [:], removals: [:])
    public var added: [String] = []
    public var replaced: [String] = []
    public var removed: [String] = []
    /// Managed files that had been deleted and are written again.
    public var restored: [String] = []
    /// Files already equal to the render that `--adopt` takes over.
    public var adopted: [String] = []
    public var refusals: [Refusal] = []

    /// - Parameters:
    ///   - files: the render plus the new manifest.
    ///   - previous: the manifest on disk; nil for an empty folder or one being adopted.
    ///   - force: overwrite refused files instead of stopping.
    public static func plan(root: TreeRoot, files: [String: Data], previous: TreeManifest?, force: Bool) -> TreeUpdate {
        var update = TreeUpdate()
        let managed = previous?.files ?? [:]
        for path in files.keys.sorted() {
            let wanted = files[path]!
            let onDisk: Data
            do {
                switch try root.entry(path) {
                case .missing:
                    update.change.writes[path] = wanted
                    if managed[path] != nil { update.restored.append(path) } else if path != TreeManifest.fileName { update.added.append(path) }
                    continue
                case .folder:
                    update.refusals.append(.folderInTheWay(path: path))
                    continue
                case .symlink, .special:
                    update.refusals.append(.unsafe(notAFile(path)))
                    continue
                case .file(let data):
                    onDisk = data
                }
            } catch {
                update.refusals.append(.unsafe(error))
                continue
            }
            if onDisk == wanted {
                if managed[path] == nil && path != TreeManifest.fileName { update.adopted.append(path) }
                continue
            }
            if path == TreeManifest.fileName {
                update.change.writes[path] = wanted  // pretix-forge's own record, rewritten every time
                continue
            }
            let diff = LineDiff.unifiedIfText(old: onDisk, new: wanted, oldName: "\(path) (on disk)", newName: "\(path) (pretix-forge)")
            if let recorded = managed[path] {
                if recorded != Digest.sha256(onDisk).hexString, !force {
                    update.refusals.append(.editedByHand(path: path, diff: diff, removing: false))
                    continue
                }
            } else if !force {
                update.refusals.append(.notWrittenByForge(path: path, diff: diff))
                continue
            }
            update.change.writes[path] = wanted
            update.replaced.append(path)
        }
        for (path, recorded) in managed.sorted(by: { $0.key < $1.key }) where files[path] == nil {
            let onDisk: Data
            do {
                switch try root.entry(path) {
                case .missing, .folder: continue  // nothing of pretix-forge's is left to remove
                case .file(let data): onDisk = data
                case .symlink, .special:
                    update.refusals.append(.unsafe(notAFile(path)))
                    continue
                }
            } catch {
                update.refusals.append(.unsafe(error))
                continue
            }
            let current = Digest.sha256(onDisk).hexString
            if current != recorded, !force {
                update.refusals.append(.editedByHand(path: path, diff: nil, removing: true))
                continue
            }
            update.change.removals[path] = current
            update.removed.append(path)
        }
        return update
    }

    private static func notAFile(_ path: String) -> TreeRoot.Failure {
        TreeRoot.Failure(path: path, message: "is a symbolic link or a special file where pretix-forge manages a regular file; "
                         + "pretix-forge never writes through or removes it, even with --force",
                         fix: "remove it (`git rm \(path)`), then run the command again")
    }

    /// The refusals as one error, each naming its file and showing what would be lost.
    public func refusalError(root: TreeRoot, module: String) -> ForgeError {
        let diagnostics = refusals.map { refusal -> Diagnostic in
            let location = SourceLocation(file: root.join(refusal.path))
            let overlayPath = refusal.path.split(separator: "/", omittingEmptySubsequences: false)
                .map { $0 == module ? "__module__" : String($0) }.joined(separator: "/")
            switch refusal {
            case .editedByHand(_, let diff, let removing):
                let what = removing ? "the config no longer produces it, but it was edited by hand since pretix-forge wrote it"
                    : "edited by hand since pretix-forge wrote it; generate would overwrite the edit"
                return Diagnostic(what + Self.indented(diff), at: location,
                                  fix: "keep the edit in an overlay (the file as OVERLAY/\(overlayPath), passed with --templates OVERLAY), "
                                      + "or pass --force to \(removing ? "remove" : "overwrite") it")
            case .notWrittenByForge(_, let diff):
                return Diagnostic("pretix-forge did not write this file, but would write one here" + Self.indented(diff), at: location,
                                  fix: "move it away, list it in [repository] unmanaged if it must stay yours, or pass --force to overwrite it")
            case .folderInTheWay:
                return Diagnostic("is a folder, where pretix-forge would write a file", at: location, fix: "move the folder away")
            case .unsafe(let failure):
                return failure.diagnostic(in: root)
            }
        }
        return ForgeError(diagnostics)
    }

    private static func indented(_ diff: String?) -> String {
        guard let diff, !diff.isEmpty else { return "" }
        return "\n" + diff.split(separator: "\n", omittingEmptySubsequences: false).dropLast(diff.hasSuffix("\n") ? 1 : 0)
            .map { "      " + $0 }.joined(separator: "\n")
    }
}

extension LineDiff {
    /// A unified diff when both sides are UTF-8 text, nil for binary files.
    static func unifiedIfText(old: Data, new: Data, oldName: String, newName: String) -> String? {
        guard let oldText = String(data: old, encoding: .utf8), let newText = String(data: new, encoding: .utf8) else { return nil }
        return unified(old: oldText, new: newText, oldName: oldName, newName: newName)
    }
}
