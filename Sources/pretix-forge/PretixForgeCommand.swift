import ArgumentParser
import Dispatch
import FoundationEssentials
import Glibc
import PretixForge

@main
struct PretixForgeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pretix-forge",
        abstract: "Generate, package and verify the NodeRails crypto-checkout payment plugin for pretix.",
        version: Pipeline.toolVersion,
        subcommands: [Init.self, Reference.self, Generate.self, Build.self, Check.self, Recover.self, OverlayCommand.self, Webhook.self, Demo.self,
                      PackageSelf.self]
    )

    /// The commands that render the plugin: they have `Pipeline.prepare` run while their
    /// arguments are parsed.
    static let renderingCommands: Set = ["generate", "build", "check", "demo"]

    /// Every failure exits 1 with a message on stderr; help and version exit 0. Every way out
    /// first waits for `Pipeline.prepare`: exit() runs OpenSSL's and the C++ runtime's clean-up,
    /// which crashed the process (one `build --help` in twenty) while the other thread was
    /// still inside them.
    static func main() {
        let preparation = CommandLine.arguments.dropFirst().first.flatMap { renderingCommands.contains($0) ? Pipeline.prepare() : nil }
        do {
            var command = try parseAsRoot()
            try command.run()
            preparation?.wait()
        } catch let error as ForgeError {
            preparation?.wait()
            StandardStream.error.write(error.description + "\n")
            Glibc.exit(1)
        } catch {
            preparation?.wait()
            if exitCode(for: error) == .success { exit(withError: error) }
            StandardStream.error.write(fullMessage(for: error) + "\n")
            Glibc.exit(1)
        }
    }
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The TOML config. Without it, the embedded stock NodeRails config is used.", valueName: "file"))
    var config: String?
}

struct TemplatesOption: ParsableArguments {
    @Option(help: ArgumentHelp("Overlay folder: a file here replaces the built-in template at the same relative path; other files are added.",
                               valueName: "dir"))
    var templates: String?
}

/// Notes and warnings go to stderr, so stdout stays the command's result.
func printToStandardError(_ lines: [String]) {
    for line in lines { StandardStream.error.write(line + "\n") }
}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "init", abstract: "Write a commented starter config (the embedded default).")

    @Argument(help: "Where to write it.")
    var path: String = "forge.toml"

    @Flag(help: "Overwrite an existing file.")
    var force = false

    func run() throws {
        // lstat, not fileExists: a link whose target is missing is the user's too.
        var entry = stat()
        if lstat(path, &entry) == 0 {
            if entry.st_mode & S_IFMT == S_IFDIR {
                throw ForgeError("is a folder", at: SourceLocation(file: path), fix: "give the path of the config file to write, such as \(path)/forge.toml")
            }
            if !force {
                throw ForgeError("the file exists already", at: SourceLocation(file: path), fix: "pass --force to overwrite it, or choose another path")
            }
        }
        do {
            try Data(ConfigLoader.defaultSource.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw ForgeError("cannot write the file: \(describe(error))", at: SourceLocation(file: path))
        }
        print("wrote \(path); edit it, then run: pretix-forge generate --config \(Pipeline.shellQuoted(path))")
    }
}

struct Reference: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reference",
        abstract: "Print the config reference in Markdown: every key, its default and its rules (the README's table).")

    func run() {
        print(ConfigSchema.markdownReference, terminator: "")
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Render the plugin source tree.",
        discussion: """
            A new folder is written whole. In a folder generate wrote before (it holds .pretix-forge.json), only the files \
            the manifest lists are added, replaced or removed; .git/ and every other file stay as they are. Without --config \
            and --templates, the config and overlay the manifest records are used.
            """
    )

    @OptionGroup var options: ConfigOption
    @OptionGroup var overlay: TemplatesOption

    @Option(help: ArgumentHelp("Output folder. Default: build/<name>-<version>.", valueName: "dir"))
    var out: String?

    @Flag(help: "Overwrite managed files edited by hand, and files standing where a new managed file goes.")
    var force = false

    @Flag(help: "Take over a folder that holds files but no .pretix-forge.json: files equal to the render become managed.")
    var adopt = false

    func run() throws {
        let result = try Pipeline.generate(config: options.config, templates: overlay.templates, out: out, force: force, adopt: adopt)
        printToStandardError(result.messages)
        print(result.summary)
    }
}

struct Build: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build the reproducible sdist, wheel and SHA256SUMS of one variant or many.",
        discussion: "Repeat --config (or pass a folder of .toml files) to build many variants on all cores. Every variant is built, and every failure reported at the end; if any variant fails, nothing is written and the exit status is 1."
    )

    @Option(name: .customLong("config"), help: ArgumentHelp("A TOML config or a folder of them; repeatable. Default: the embedded stock config.", valueName: "file"))
    var configs: [String] = []

    @OptionGroup var overlay: TemplatesOption

    @Option(help: ArgumentHelp("Output folder; other files in it are kept.", valueName: "dir"))
    var out: String = "dist"

    @Option(help: ArgumentHelp("A tree written by `generate --out`: build from the config and overlay its manifest records.", valueName: "dir"))
    var tree: String?

    func run() throws {
        var templatesPath = overlay.templates
        var paths: [String?] = configs.isEmpty ? [nil] : try BatchBuilder.expandConfigPaths(configs)
        var confinement: ConfigConfinement?
        if let tree {
            guard paths.count == 1 else { throw ValidationError("--tree builds one variant; pass at most one --config") }
            let sources = try TreeSession(directory: tree, access: .read).buildSources(config: configs.first, templates: overlay.templates)
            printToStandardError(sources.notes)
            paths = [sources.configPath]
            confinement = sources.configConfinement
            templatesPath = sources.templatesPath
        }
        let templates = try Pipeline.templates(templatesPath)
        let reporter = ProgressReporter(labels: paths.map { $0 ?? ConfigLoader.embeddedDefaultName })
        let (variants, written) = try BatchBuilder.build(into: out, configPaths: paths, confinedTo: confinement, templates: templates,
                                                         environment: ProcessInfo.processInfo.environment) { reporter.update($0, $1) }
        for name in written.sorted() { print("\(out)/\(name)") }
        let failures = variants.compactMap { variant -> ForgeError? in
            guard case .failure(let error) = variant.result else { return nil }
            return error
        }
        if !failures.isEmpty {
            if paths.count > 1 {
                StandardStream.error.write("\(failures.count) of \(paths.count) variants failed:\n")
            }
            throw ForgeError(failures.flatMap(\.diagnostics))
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a generated tree or released files against what the config produces now.",
        discussion: """
            Exit 0 when identical; 1 naming every added, removed and changed file and the command that repairs it. \
            --tree compares the files the tree's manifest manages; other files are listed as information. With --tree and \
            without --config/--templates, the config and overlay the manifest records are used (for --dist too).
            """
    )

    @OptionGroup var options: ConfigOption
    @OptionGroup var overlay: TemplatesOption

    @Option(help: ArgumentHelp("A folder written by `generate --out`.", valueName: "dir"))
    var tree: String?

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Released files: the sdist, the wheel, SHA256SUMS.", valueName: "file"))
    var dist: [String] = []

    func validate() throws {
        guard tree != nil || !dist.isEmpty else {
            throw ValidationError("pass --tree DIR, --dist FILE…, or both")
        }
    }

    func run() throws {
        let session = try tree.map { path throws(ForgeError) in try TreeSession(directory: path, access: .read) }
        let sources = try session?.sources(config: options.config, templates: overlay.templates)
            ?? TreeSources(configPath: options.config, templatesPath: overlay.templates)
        printToStandardError(sources.notes)
        let config = try Pipeline.loadConfig(sources.configPath, confinedTo: sources.configConfinement)
        let templates = try Pipeline.templates(sources.templatesPath)
        let expectedTree = try Pipeline.render(config, templates: templates)
        let configArgument = Pipeline.configArgument(options.config) + (overlay.templates.map { " --templates \(Pipeline.shellQuoted($0))" } ?? "")
        var reports: [DriftReport] = []
        if let session {
            let (manifest, _) = Pipeline.treeManifest(for: expectedTree, config: config, templates: templates, sources: sources,
                                                      directory: session.directory, previous: session.manifest)
            var expected = expectedTree.files
            expected[TreeManifest.fileName] = manifest.data
            if let recorded = session.manifest {
                printToStandardError(Pipeline.staleOverlayWarnings(recorded, tree: session.directory))
            }
            reports.append(TreeCheck.compare(
                root: session.root, manifest: session.manifest, expected: expected, config: config, inputs: sources,
                repairCommand: "pretix-forge generate\(configArgument) --out \(Pipeline.shellQuoted(session.directory))"))
        }
        if !dist.isEmpty {
            let distribution = try Pipeline.distribution(config, tree: expectedTree, environment: ProcessInfo.processInfo.environment)
            let treeArgument = tree.map { " --tree \(Pipeline.shellQuoted($0))" } ?? ""
            for path in dist {
                let folder = URL(fileURLWithPath: path).deletingLastPathComponent().relativePath
                reports.append(try DriftCheck.compareArtifact(
                    path: path, expected: distribution,
                    repairCommand: "pretix-forge build\(configArgument)\(treeArgument) --out \(Pipeline.shellQuoted(folder))"))
            }
        }
        for report in reports { print(report, terminator: "") }
        if reports.contains(where: { !$0.isClean }) { throw ExitCode(1) }
    }
}

struct Recover: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Finish a pretix-forge run that was interrupted while writing a tree.",
        discussion: """
            Completes the run if it had committed (its journal exists), else discards its staged files; then stops. Only what \
            pretix-forge on this machine left is acted on (it seals its journal and staging folder); anything else is refused \
            and named. `check --tree` and `build --tree` refuse a tree an interrupted run left and name this command.
            """
    )

    @Option(help: ArgumentHelp("The tree.", valueName: "dir"))
    var tree: String = "."

    func run() throws {
        let session = try TreeSession(directory: tree, access: .write)
        print(session.recoveryNote ?? "nothing to recover in \(tree): no interrupted pretix-forge run left anything")
    }
}

struct OverlayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overlay", abstract: "Maintain a template overlay across pretix-forge upgrades.", subcommands: [OverlayUpdateCommand.self])
}

struct OverlayUpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Merge changes of the built-in templates into the overlay files that replace them.",
        discussion: """
            A 3-way merge (git merge-file) of the built-in template the overlay was written against (recorded in the \
            tree's .pretix-forge.json), the built-in template of this pretix-forge, and the overlay file. Clean merges are \
            written into the overlay; conflicts are written with <<<<<<< ======= >>>>>>> markers, named, and make the exit \
            status 1. Then run `pretix-forge generate --out DIR`.
            """
    )

    @Option(help: ArgumentHelp("The tree whose manifest records the overlay's bases.", valueName: "dir"))
    var tree: String = "."

    @OptionGroup var overlay: TemplatesOption

    func run() throws {
        let git = try OverlayUpdate.gitExecutable()
        let session = try TreeSession(directory: tree, access: .write)
        if let note = session.recoveryNote { printToStandardError([note]) }
        let manifestPath = session.join(TreeManifest.fileName)
        guard let manifest = session.manifest, manifest.overlay != nil else {
            throw ForgeError(session.manifest == nil ? "no \(TreeManifest.fileName): nothing records what the overlay was written against"
                                                     : "the tree was generated without an overlay",
                             at: SourceLocation(file: manifestPath),
                             fix: "generate the tree with --templates DIR first; overlay update merges later forge versions' changes into it")
        }
        let sources = try session.sources(config: nil, templates: overlay.templates)
        guard let folder = sources.templatesPath else {
            throw ValidationError("pass --templates DIR")
        }
        let outcome = try OverlayUpdate.run(manifest: manifest, overlay: try Overlay.load(folder, over: .embedded), git: git)
        // Each file replaced whole, inside its folder, without following a link.
        let overlayRoot = try TreeRoot(folder)
        for (path, data) in outcome.overlayWrites.sorted(by: { $0.key < $1.key }) {
            do throws(TreeRoot.Failure) { try overlayRoot.replaceFile(path, data) } catch { throw error.error(in: overlayRoot) }
        }
        // After the overlay files: a kill in between leaves the old bases, and merging again is harmless.
        if outcome.manifest != manifest {
            do throws(TreeRoot.Failure) { try session.root.replaceFile(TreeManifest.fileName, outcome.manifest.data) } catch { throw error.error(in: session.root) }
        }
        for result in outcome.results {
            switch result {
            case .upToDate(let path): print("up to date: \(folder)/\(path)")
            case .merged(let path): print("merged:     \(folder)/\(path)")
            case .conflicted(let path, let count):
                print("CONFLICT:   \(folder)/\(path) (\(count) conflicting hunk\(count == 1 ? "" : "s"); resolve the <<<<<<< markers)")
            case .builtinRemoved(let path): print("no longer a built-in template (the overlay file now adds it): \(folder)/\(path)")
            case .notMergeable(let path, let reason): print("not merged:  \(folder)/\(path): \(reason)")
            }
        }
        let conflicts = outcome.conflicts
        guard conflicts.isEmpty else {
            printToStandardError(["\(conflicts.count) overlay file\(conflicts.count == 1 ? "" : "s") with conflicts: "
                                  + conflicts.map { "\(folder)/\($0)" }.joined(separator: ", ")
                                  + "; resolve them, then run: pretix-forge generate --out \(Pipeline.shellQuoted(tree))"])
            throw ExitCode(1)
        }
        if !outcome.overlayWrites.isEmpty { print("now run: pretix-forge generate --out \(Pipeline.shellQuoted(tree))") }
    }
}
