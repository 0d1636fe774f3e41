import Dispatch
import FoundationEssentials

/// The stages in order — Config → Render → Package → Verify — as the CLI runs them.
/// Nothing is written to disk before every stage that can fail has succeeded.
public enum Pipeline {
    public static let toolVersion = "0.1.0"
    public static var generator: String { "pretix-forge \(toolVersion)" }
    /// pretix-forge's own source: the tool wheel's Source URL and the default the plugin
    /// repository's workflows fetch from.
    public static let sourceRepository = "https://github.com/noderails/pretix-forge"

    /// Starts, on another thread, what every command that renders needs first and no argument
    /// changes: the built-in templates compiled (with the stock config that defines their
    /// variables) and OpenSSL set up. Called before the arguments are parsed, which takes as
    /// long and leaves the second core idle; a command that needs either waits for it. The
    /// process must not exit before the group is done.
    public static func prepare() -> DispatchGroup {
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            _ = PluginRenderer.builtIn
            Digest.prepare()
        }
        return group
    }

    /// The config at `path`, or the embedded stock config when nil; `confinement` for a tree's own.
    public static func loadConfig(_ path: String?, confinedTo confinement: ConfigConfinement? = nil) throws(ForgeError) -> ForgeConfig {
        guard let path else { return try ConfigLoader.loadDefault() }
        return try ConfigLoader.load(file: path, confinedTo: confinement)
    }

    /// The built-in templates, with the overlay in `directory` applied when given.
    public static func templates(_ directory: String?) throws(ForgeError) -> TemplateSet {
        guard let directory else { return .embedded }
        return try TemplateSet.embedded.overlaid(with: directory)
    }

    public static func defaultTreeDirectory(for config: ForgeConfig) -> String {
        "build/\(config.package.name)-\(config.package.version)"
    }

    public static func render(_ config: ForgeConfig, templates: TemplateSet = .embedded) throws(ForgeError) -> PluginTree {
        try PluginRenderer.compiled(templates).render(config)
    }

    /// The sdist holds the plugin source and a manifest naming the forge version that built it;
    /// the repository kit (.gitignore, .github/) stays in the repository.
    public static func distribution(_ config: ForgeConfig, tree: PluginTree, environment: [String: String]) throws(ForgeError) -> Distribution {
        let builder = DistributionBuilder(timestamp: try DistributionBuilder.timestamp(from: environment), generator: generator)
        let source = PluginTree(files: tree.files.filter { !RepositoryKit.isRepositoryOnly($0.key) })
        let overlayDigest = tree.overlayDigest, configDigest = config.digest
        return try builder.build(source, config: config) {
            let manifest = TreeManifest(
                forgeVersion: toolVersion, config: .init(digest: configDigest, origin: .unrecorded),
                overlay: overlayDigest.map { .init(input: .init(digest: $0, origin: .unrecorded), bases: [:], added: []) },
                files: source.files.mapValues { Digest.sha256($0).hexString })
            return [TreeManifest.fileName: manifest.data]
        }
    }

    // MARK: Trees in repositories

    /// The manifest `generate` writes for `tree` into `directory`. Overlay bases are carried
    /// over from `previous`: a base changes only when `overlay update` moves the overlay onto
    /// a new built-in template, so a newer forge's change stays visible until then.
    public static func treeManifest(for tree: PluginTree, config: ForgeConfig, templates: TemplateSet, sources: TreeSources,
                                    directory: String, previous: TreeManifest?) -> (manifest: TreeManifest, warnings: [String]) {
        let origins = sources.origins(relativeTo: directory)
        var warnings: [String] = []
        var overlayRecord: TreeManifest.OverlayRecord?
        if let overlay = templates.overlay {
            var bases: [String: TreeManifest.Base] = [:]
            for path in overlay.replaced {
                if let base = previous?.overlay?.bases[path] {
                    bases[path] = base
                } else if previous?.overlay?.added.contains(path) == true {
                    // The overlay's own file now hides a template this forge version brings: merge
                    // against an empty base, so `overlay update` shows both sides.
                    bases[path] = TreeManifest.Base(Data(), forgeVersion: previous?.forgeVersion ?? toolVersion)
                    warnings.append("warning: \(overlay.directory)/\(path) was a file of the overlay's own; pretix-forge \(toolVersion) "
                                    + "has a built-in template of that name, which it now hides. Run `pretix-forge overlay update` to merge them.")
                } else if let builtin = TemplateSet.embedded.files[path] {
                    bases[path] = TreeManifest.Base(builtin, forgeVersion: toolVersion)
                }
            }
            overlayRecord = .init(input: .init(digest: overlay.digest, origin: origins.overlay ?? .outsideTree), bases: bases, added: overlay.added)
        }
        let manifest = TreeManifest(forgeVersion: toolVersion, config: .init(digest: config.digest, origin: origins.config),
                                    overlay: overlayRecord, files: tree.files.mapValues { Digest.sha256($0).hexString })
        return (manifest, warnings)
    }

    /// Overlay files whose built-in template changed since they were written against it: the
    /// overlay hides that change (maybe a security fix) until `overlay update` merges it.
    public static func staleOverlayWarnings(_ manifest: TreeManifest, tree directory: String) -> [String] {
        guard let overlay = manifest.overlay else { return [] }
        let folder: String
        if case .inTree(let path) = overlay.input.origin { folder = path } else { folder = "the overlay" }
        var warnings: [String] = []
        for (path, base) in overlay.bases.sorted(by: { $0.key < $1.key }) {
            let current = TemplateSet.embedded.files[path]
            guard current.map({ Digest.sha256($0).hexString }) != base.sha256 else { continue }
            if current == nil {
                warnings.append("warning: \(folder)/\(path) replaces a built-in template that pretix-forge \(toolVersion) no longer has; "
                                + "it is now a file of the overlay's own. Check it still belongs in the plugin.")
            } else {
                warnings.append("warning: the built-in template \(path) changed since \(folder)/\(path) was written against it "
                                + "(pretix-forge \(base.forgeVersion) → \(toolVersion)); the overlay hides the change. "
                                + "Merge it with `pretix-forge overlay update --tree \(shellQuoted(directory))`.")
            }
        }
        return warnings
    }

    public struct GenerateResult: Sendable {
        public var directory: String
        public var summary: String
        /// Notes and warnings for stderr.
        public var messages: [String]
    }

    /// `generate`: renders and writes the tree, into an existing folder only what it manages.
    public static func generate(config explicitConfig: String?, templates explicitTemplates: String?, out: String?,
                                force: Bool, adopt: Bool) throws(ForgeError) -> GenerateResult {
        var messages: [String] = []
        var session: TreeSession?
        if let out, FileManager.default.fileExists(atPath: out) {
            session = try TreeSession(directory: out, access: .write)
            if let note = session?.recoveryNote { messages.append(note) }
        }
        let sources = try session?.sources(config: explicitConfig, templates: explicitTemplates)
            ?? TreeSources(configPath: explicitConfig, templatesPath: explicitTemplates)
        messages += sources.notes
        let config = try loadConfig(sources.configPath, confinedTo: sources.configConfinement)
        let templates = try self.templates(sources.templatesPath)
        let tree = try render(config, templates: templates)
        let directory = out ?? defaultTreeDirectory(for: config)
        if session == nil, FileManager.default.fileExists(atPath: directory) {
            session = try TreeSession(directory: directory, access: .write)
        }
        let previous = session?.manifest
        let (manifest, manifestWarnings) = treeManifest(for: tree, config: config, templates: templates, sources: sources,
                                                        directory: directory, previous: previous)
        messages += manifestWarnings + staleOverlayWarnings(manifest, tree: directory)
        messages += outsideTreeWarnings(sources, directory: directory)
        var files = tree.files
        files[TreeManifest.fileName] = manifest.data
        let name = "\(config.package.name) \(config.package.version)"

        guard let session else {
            try AtomicOutput.createDirectory(directory, with: files)
            return GenerateResult(directory: directory, summary: "generated \(name): \(tree.files.count) files in \(directory)", messages: messages)
        }
        if previous == nil && !session.isEffectivelyEmpty(apart: sources) && !adopt {
            let legacy = FileManager.default.fileExists(atPath: URL(fileURLWithPath: directory).appendingPathComponent(PluginRenderer.treeMarker).path)
            throw ForgeError("the folder holds files but no \(TreeManifest.fileName), so pretix-forge cannot tell which of them it wrote"
                             + (legacy ? " (it looks like a tree from an earlier pretix-forge, which kept no manifest)" : ""),
                             at: SourceLocation(file: directory),
                             fix: "pass --adopt to take it over (files equal to the render are adopted, others refused unless --force; "
                                + "nothing else is touched), or choose a new or empty folder")
        }
        let update = TreeUpdate.plan(root: session.root, files: files, previous: previous, force: force)
        if !update.refusals.isEmpty {
            throw update.refusalError(root: session.root, module: config.package.module)
        }
        try TreeTransaction.commit(update.change, in: session.root)
        var counts: [String] = []
        for (count, label) in [(update.added.count, "added"), (update.replaced.count, "changed"), (update.removed.count, "removed"),
                               (update.restored.count, "restored"), (update.adopted.count, "adopted")] where count > 0 {
            counts.append("\(count) \(label)")
        }
        for path in update.restored {
            messages.append("note: \(path) had been deleted and was written again; to leave a file out for good, "
                            + "switch it off in [repository] or drop it with an overlay")
        }
        let what = counts.isEmpty ? "up to date" : counts.joined(separator: ", ")
        return GenerateResult(directory: directory, summary: "generated \(name) in \(directory): \(what) (\(tree.files.count) managed files)",
                              messages: messages)
    }

    /// A config or overlay outside a git work tree's folder cannot be found by its CI.
    static func outsideTreeWarnings(_ sources: TreeSources, directory: String) -> [String] {
        guard FileManager.default.fileExists(atPath: URL(fileURLWithPath: directory).appendingPathComponent(".git").path) else { return [] }
        let origins = sources.origins(relativeTo: directory)
        var warnings: [String] = []
        if origins.config == .outsideTree, let path = sources.configPath {
            warnings.append("warning: the config \(path) lies outside the repository \(directory); its workflows cannot find it. "
                            + "Keep it in the repository (e.g. \(directory)/forge.toml).")
        }
        if origins.overlay == .outsideTree, let path = sources.templatesPath {
            warnings.append("warning: the overlay \(path) lies outside the repository \(directory); its workflows cannot find it. "
                            + "Keep it in the repository.")
        }
        return warnings
    }

    /// `check` arguments that reproduce the same output, for repair hints.
    public static func configArgument(_ path: String?) -> String {
        path.map { " --config \(shellQuoted($0))" } ?? ""
    }

    public static func shellQuoted(_ text: String) -> String {
        text.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:@".contains($0) } ? text : "'" + text.replacing("'", with: "'\\''") + "'"
    }
}
