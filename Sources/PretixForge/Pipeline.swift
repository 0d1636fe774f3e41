import Foundation

/// The stages in order — Config → Render → Package → Verify — as the CLI runs them.
/// Nothing is written to disk before every stage that can fail has succeeded.
public enum Pipeline {
    public static let toolVersion = "0.1.0"
    public static var generator: String { "pretix-forge \(toolVersion)" }

    /// The config at `path`, or the embedded stock config when nil.
    public static func loadConfig(_ path: String?) throws(ForgeError) -> ForgeConfig {
        guard let path else { return try ConfigLoader.loadDefault() }
        return try ConfigLoader.load(file: path)
    }

    public static func defaultTreeDirectory(for config: ForgeConfig) -> String {
        "build/\(config.package.name)-\(config.package.version)"
    }

    public static func render(_ config: ForgeConfig, templates: TemplateSet = .embedded) throws(ForgeError) -> PluginTree {
        try PluginRenderer(templates: templates).render(config)
    }

    public static func distribution(_ config: ForgeConfig, tree: PluginTree, environment: [String: String]) throws(ForgeError) -> Distribution {
        let builder = DistributionBuilder(timestamp: try DistributionBuilder.timestamp(from: environment), generator: generator)
        return try builder.build(tree, config: config)
    }

    /// `check` arguments that reproduce the same output, for repair hints.
    public static func configArgument(_ path: String?) -> String {
        path.map { " --config \(shellQuoted($0))" } ?? ""
    }

    public static func shellQuoted(_ text: String) -> String {
        text.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:@".contains($0) } ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
