import FoundationEssentials

/// The files that make the tree a repository of its own rather than a plugin: `.gitignore`,
/// the GitHub workflows and the composite action they share, and the manifest. They are
/// rendered with the plugin and committed with it, but never shipped in the sdist.
public enum RepositoryKit {
    public static let gitignore = ".gitignore"
    public static let githubFolder = ".github/"

    public static func isRepositoryOnly(_ path: String) -> Bool {
        path == gitignore || path.hasPrefix(githubFolder) || path == TreeManifest.fileName
    }

    /// Drops the parts of the kit the config switches off, and refuses a render that would
    /// claim a path the config declares the maintainer's own.
    static func apply(_ settings: ForgeConfig.Repository, to tree: inout PluginTree) throws(ForgeError) {
        if !settings.gitignore { tree.files[gitignore] = nil }
        if !settings.workflows {
            // Only the built-in ones: a workflow the maintainer adds through an overlay stays.
            for path in tree.files.keys where builtInGitHubFiles.contains(path) {
                tree.files[path] = nil
            }
        }
        var problems: [Diagnostic] = []
        for path in tree.sortedPaths {
            guard let glob = settings.unmanaged.first(where: { $0.matches(path) }) else { continue }
            problems.append(Diagnostic("the pattern '\(glob)' matches \(path), which pretix-forge writes", at: settings.unmanagedLocation,
                                       keyPath: "repository.unmanaged",
                                       fix: "narrow the pattern so it leaves the generated files alone"
                                           + (tree.overlayDigest == nil ? "" : " (or, if your overlay adds \(path), remove it from the overlay)")))
        }
        if !problems.isEmpty { throw ForgeError(problems) }
    }

    /// The workflows and the action they share, as `Templates/` has them.
    static let builtInGitHubFiles = Set(EmbeddedFiles.folder("Templates").keys.filter { $0.hasPrefix(githubFolder) })
}
