import Foundation
import PackagePlugin

/// Embeds the top-level Templates/, the shared HMAC vectors, the license texts and the demo's
/// Python (Demo/, the NodeRails simulator) into the PretixForge library, so the CLI never reads them from disk at run time.
@main
struct EmbedResources: BuildToolPlugin {
    /// Logical name inside the binary → path relative to the package root.
    static let roots: [(String, String)] = [
        ("Templates", "Templates"),
        ("Vectors/webhook-signatures.json", "Tests/Vectors/webhook-signatures.json"),
        ("Licenses", "Licenses"),
        // `pretix-forge demo` writes these out and runs them with the pretix interpreter.
        ("Demo/forge_demo", "Demo/forge_demo"),
        ("Demo/requirements.txt", "Demo/requirements.txt"),
        ("Simulator/noderails_sim", "Simulator/noderails_sim"),
    ]

    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let packageRoot = context.package.directoryURL
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedResources.swift")
        var inputs: [URL] = []
        var arguments = [output.path]
        for (name, relative) in Self.roots {
            let url = packageRoot.appending(path: relative)
            arguments.append("\(name)=\(url.path)")
            inputs += Self.files(under: url)
        }
        return [
            .buildCommand(
                displayName: "Embedding templates and resources",
                executable: try context.tool(named: "embed-resources").url,
                arguments: arguments,
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }

    static func files(under url: URL) -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { return [url] }
        // The folder itself is an input too, so adding or removing a template re-runs the embed.
        var result = [url]
        // Hidden files too: Templates/.gitignore and Templates/.github/ are templates.
        let enumerator = FileManager.default.enumerator(at: url, includingPropertiesForKeys: nil)
        while let item = enumerator?.nextObject() as? URL { result.append(item) }
        return result
    }
}
