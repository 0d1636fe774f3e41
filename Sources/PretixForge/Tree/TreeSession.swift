import FoundationEssentials

/// An existing tree opened by a command: locked against concurrent runs, its manifest read, and
/// what an interrupted run left either finished (commands that write the tree) or reported
/// (commands that only read it).
public final class TreeSession {
    public enum Access: Sendable {
        /// `check --tree`, `build --tree`: nothing in the tree is created, changed or removed; a
        /// tree an interrupted run left is refused, naming `recover`.
        case read
        /// `generate`, `overlay update`, `recover`: an interrupted run of this machine is
        /// completed or undone first.
        case write
    }

    public let root: TreeRoot
    public var directory: String { root.path }
    public let manifest: TreeManifest?
    /// What was done about an interrupted run, for the command to report.
    public let recovery: TreeTransaction.Recovery?

    public init(directory: String, access: Access) throws(ForgeError) {
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw ForgeError("no such folder", at: SourceLocation(file: directory), fix: "pass the folder that `generate --out` wrote")
        }
        guard isDirectory else {
            throw ForgeError("exists and is not a folder", at: SourceLocation(file: directory), fix: "choose a new or empty folder")
        }
        root = try TreeRoot(directory)
        root.lock(exclusive: access == .write)
        switch access {
        case .read:
            let leftovers = TreeTransaction.leftovers(in: root)
            guard leftovers.isEmpty else { throw TreeTransaction.leftoverError(leftovers, in: root) }
            recovery = nil
        case .write:
            recovery = try TreeTransaction.recover(in: root)
        }
        manifest = try TreeManifest.read(in: root)
    }

    public var recoveryNote: String? {
        switch recovery {
        case .completed?: return "completed an interrupted pretix-forge run in \(directory) (its journal was committed)"
        case .rolledBack?: return "discarded the staged files of an interrupted pretix-forge run in \(directory) (nothing had changed)"
        case nil: return nil
        }
    }

    /// The folder holds nothing but a git repository and this run's own config and overlay:
    /// `git init`, `pretix-forge init forge.toml`, then `generate --config forge.toml --out .`.
    public func isEffectivelyEmpty(apart sources: TreeSources) -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let inputs = [sources.configPath, sources.templatesPath].compactMap { path -> String? in
            guard let path, case .inTree(let relative) = TreeSources.origin(of: path, in: directory) else { return nil }
            return relative.split(separator: "/").first.map(String.init)
        }
        return names.allSatisfy { $0 == ".git" || inputs.contains($0) }
    }

    /// The config and overlay to use: those given on the command line, else those the manifest
    /// records (paths inside the tree, reached without following a link), so `check --tree .` in
    /// CI needs no arguments.
    public func sources(config explicitConfig: String?, templates explicitTemplates: String?) throws(ForgeError) -> TreeSources {
        var sources = TreeSources(configPath: explicitConfig, templatesPath: explicitTemplates)
        if explicitConfig == nil, let origin = manifest?.config.origin {
            sources.configPath = try recorded(origin, what: "config", option: "--config FILE", notes: &sources.notes)
            if case .inTree(let path) = origin {
                let folder = path.split(separator: "/").dropLast().joined(separator: "/")
                sources.configConfinement = ConfigConfinement(treeDirectory: directory, configFolder: folder)
            }
        }
        if explicitTemplates == nil, let origin = manifest?.overlay?.input.origin {
            sources.templatesPath = try recorded(origin, what: "overlay", option: "--templates DIR", notes: &sources.notes)
        }
        return sources
    }

    /// What `build --tree` builds from: `sources`, where a folder without a manifest must be given its
    /// config; the stock plugin built in its place would pass for a build of that folder.
    public func buildSources(config explicitConfig: String?, templates explicitTemplates: String?) throws(ForgeError) -> TreeSources {
        guard manifest != nil || explicitConfig != nil else {
            throw ForgeError("no \(TreeManifest.fileName): nothing records which config built this folder",
                             at: SourceLocation(file: directory), fix: "pass --config FILE, or --tree a folder that `generate --out` wrote")
        }
        return try sources(config: explicitConfig, templates: explicitTemplates)
    }

    private func recorded(_ origin: TreeManifest.Origin, what: String, option: String, notes: inout [String]) throws(ForgeError) -> String? {
        switch origin {
        case .inTree(let path):
            let entry: TreeRoot.Entry
            do { entry = try root.entry(path) } catch { throw error.error(in: root) }
            switch (what, entry) {
            case ("config", .file), ("overlay", .folder): break
            case (_, .missing):
                throw ForgeError("the \(what) the manifest records is missing", at: SourceLocation(file: join(path)), fix: "restore it, or pass \(option)")
            default:
                throw ForgeError("the \(what) the manifest records is not a \(what == "config" ? "regular file" : "folder") "
                                 + "(pretix-forge reads no \(what) through a link)", at: SourceLocation(file: join(path)),
                                 fix: "restore it as a plain \(what == "config" ? "file" : "folder"), or pass \(option)")
            }
            notes.append("\(what): \(join(path)) (recorded in \(join(TreeManifest.fileName)))")
            return join(path)
        case .outsideTree:
            throw ForgeError("the tree was generated with a \(what) outside it, which the manifest cannot name",
                             at: SourceLocation(file: join(TreeManifest.fileName)),
                             fix: "pass \(option) (keep the \(what) inside the tree, so CI can find it)")
        case .embedded, .unrecorded:
            return nil
        }
    }

    /// A path inside the tree, spelled from the folder as the user gave it.
    public func join(_ relative: String) -> String {
        root.join(relative)
    }
}

/// Where a command's config and overlay come from.
public struct TreeSources: Sendable {
    /// nil: the embedded stock config.
    public var configPath: String?
    public var templatesPath: String?
    /// Set when the config is the one the tree's manifest records: the tree's, not the user's.
    public var configConfinement: ConfigConfinement?
    /// "config: …" lines saying what was taken from the manifest.
    public var notes: [String] = []

    public init(configPath: String?, templatesPath: String?) {
        self.configPath = configPath
        self.templatesPath = templatesPath
    }

    /// How the manifest of a tree in `directory` records these inputs.
    func origins(relativeTo directory: String) -> (config: TreeManifest.Origin, overlay: TreeManifest.Origin?) {
        (configPath.map { Self.origin(of: $0, in: directory) } ?? .embedded, templatesPath.map { Self.origin(of: $0, in: directory) })
    }

    static func origin(of path: String, in directory: String) -> TreeManifest.Origin {
        let file = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        let root = URL(fileURLWithPath: directory).standardizedFileURL.resolvingSymlinksInPath().path
        guard file.hasPrefix(root + "/") else { return .outsideTree }
        return .inTree(String(file.dropFirst(root.count + 1)))
    }
}
