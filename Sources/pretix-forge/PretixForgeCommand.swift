import ArgumentParser
import Foundation
import PretixForge

@main
struct PretixForgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretix-forge",
        abstract: "Generate, package and verify the NodeRails crypto-checkout payment plugin for pretix.",
        version: Pipeline.toolVersion,
        subcommands: [Init.self, Generate.self, Build.self, Check.self, Webhook.self, Demo.self]
    )

    /// Every failure exits 1 with a message on stderr; help and version exit 0.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as ForgeError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            Foundation.exit(1)
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(1)
        }
    }
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The TOML config. Without it, the embedded stock NodeRails config is used.", valueName: "file"))
    var config: String?
}

struct TemplatesOption: ParsableArguments {
    @Option(help: ArgumentHelp("Overlay folder: a file here replaces the built-in template at the same relative path.", valueName: "dir"))
    var templates: String?

    func templateSet() throws(ForgeError) -> TemplateSet {
        guard let templates else { return .embedded }
        return try TemplateSet.embedded.overlaid(with: templates)
    }
}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a commented starter config (the embedded default).")

    @Argument(help: "Where to write it.")
    var path: String = "forge.toml"

    @Flag(help: "Overwrite an existing file.")
    var force = false

    func run() throws {
        if FileManager.default.fileExists(atPath: path), !force {
            throw ForgeError("the file exists already", at: SourceLocation(file: path), fix: "pass --force to overwrite it, or choose another path")
        }
        do {
            try Data(ConfigLoader.defaultSource.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ForgeError("cannot write the file: \(error.localizedDescription)", at: SourceLocation(file: path))
        }
        print("wrote \(path); edit it, then run: pretix-forge generate --config \(Pipeline.shellQuoted(path))")
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Render the plugin source tree.")

    @OptionGroup var options: ConfigOption
    @OptionGroup var overlay: TemplatesOption

    @Option(help: ArgumentHelp("Output folder (replaced as a whole). Default: build/<name>-<version>.", valueName: "dir"))
    var out: String?

    func run() throws {
        let config = try Pipeline.loadConfig(options.config)
        let tree = try Pipeline.render(config, templates: try overlay.templateSet())
        let directory = out ?? Pipeline.defaultTreeDirectory(for: config)
        try AtomicOutput.replaceDirectory(directory, with: tree.files, marker: PluginRenderer.treeMarker)
        print("generated \(config.package.name) \(config.package.version): \(tree.files.count) files in \(directory)")
    }
}

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Build the reproducible sdist, wheel and SHA256SUMS of one variant or many.",
        discussion: "Repeat --config (or pass a folder of .toml files) to build many variants on all cores. A failing variant does not stop the others; every failure is reported at the end and the exit status is 1."
    )

    @Option(name: .customLong("config"), help: ArgumentHelp("A TOML config or a folder of them; repeatable. Default: the embedded stock config.", valueName: "file"))
    var configs: [String] = []

    @OptionGroup var overlay: TemplatesOption

    @Option(help: ArgumentHelp("Output folder; other files in it are kept.", valueName: "dir"))
    var out: String = "dist"

    func run() throws {
        let templates = try overlay.templateSet()
        let paths: [String?] = configs.isEmpty ? [nil] : try BatchBuilder.expandConfigPaths(configs)
        let reporter = ProgressReporter(labels: paths.map { $0 ?? ConfigLoader.embeddedDefaultName })
        let variants = BatchBuilder.build(configPaths: paths, templates: templates, environment: ProcessInfo.processInfo.environment) {
            reporter.update($0, $1)
        }
        let built = variants.compactMap { try? $0.result.get() }
        if !built.isEmpty {
            var files: [String: Data] = [:]
            for distribution in built {
                files[distribution.sdistName] = distribution.sdist
                files[distribution.wheelName] = distribution.wheel
            }
            files["SHA256SUMS"] = Data(built.map(\.checksums).joined().utf8)
            try AtomicOutput.update(out, with: files)
            for name in files.keys.sorted() { print("\(out)/\(name)") }
        }
        let failures = variants.compactMap { variant -> ForgeError? in
            guard case .failure(let error) = variant.result else { return nil }
            return error
        }
        if !failures.isEmpty {
            if paths.count > 1 {
                FileHandle.standardError.write(Data("\(failures.count) of \(paths.count) variants failed:\n".utf8))
            }
            throw ForgeError(failures.flatMap(\.diagnostics))
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a generated tree or released files against what the config produces now.",
        discussion: "Exit 0 when identical; 1 naming every added, removed and changed file and the command that repairs it."
    )

    @OptionGroup var options: ConfigOption
    @OptionGroup var overlay: TemplatesOption

    @Option(help: ArgumentHelp("A folder written by `generate --out`.", valueName: "dir"))
    var tree: String?

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Released files: the sdist, the wheel, SHA256SUMS.", valueName: "file"))
    var dist: [String] = []

    func validate() throws {
        guard (tree == nil) != dist.isEmpty else {
            throw ValidationError("pass either --tree DIR or --dist FILE…")
        }
    }

    func run() throws {
        let config = try Pipeline.loadConfig(options.config)
        let expectedTree = try Pipeline.render(config, templates: try overlay.templateSet())
        let configArgument = Pipeline.configArgument(options.config) + (overlay.templates.map { " --templates \(Pipeline.shellQuoted($0))" } ?? "")
        var reports: [DriftReport] = []
        if let tree {
            reports.append(DriftCheck.compare(
                expected: expectedTree.files, actual: try DriftCheck.readTree(tree), subject: tree,
                repairCommand: "pretix-forge generate\(configArgument) --out \(Pipeline.shellQuoted(tree))"))
        } else {
            let distribution = try Pipeline.distribution(config, tree: expectedTree, environment: ProcessInfo.processInfo.environment)
            for path in dist {
                let folder = URL(fileURLWithPath: path).deletingLastPathComponent().relativePath
                reports.append(try DriftCheck.compareArtifact(
                    path: path, expected: distribution,
                    repairCommand: "pretix-forge build\(configArgument) --out \(Pipeline.shellQuoted(folder))"))
            }
        }
        for report in reports { print(report, terminator: "") }
        if reports.contains(where: { !$0.isClean }) { throw ExitCode(1) }
    }
}
