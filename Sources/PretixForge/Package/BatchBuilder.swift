import FoundationEssentials
import Dispatch

/// Builds many variants at once on every core, carrying on past failures.
public enum BatchBuilder {
    public enum Progress: Sendable {
        case started
        case finished(Distribution)
        case failed(ForgeError)
    }

    /// What remains of a built variant once `deliver` has taken its archives.
    public struct Built: Sendable {
        public var sdistName: String
        public var wheelName: String
        /// `sha256sum` lines for both archives.
        public var checksums: String
    }

    public struct Variant: Sendable {
        /// The config file, or nil for the embedded default.
        public var configPath: String?
        public var result: Result<Built, ForgeError>

        public var label: String { configPath ?? ConfigLoader.embeddedDefaultName }
    }

    /// Expands folders into the `*.toml` files they hold (sorted), keeping order otherwise.
    public static func expandConfigPaths(_ paths: [String]) throws(ForgeError) -> [String] {
        var result: [String] = []
        for path in paths {
            var isDirectory = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                result.append(path)  // reported by the loader, with the other failures
                continue
            }
            guard isDirectory else {
                result.append(path)
                continue
            }
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            let configs = names.filter { $0.hasSuffix(".toml") }.sorted().map { "\(path)/\($0)" }
            if configs.isEmpty {
                throw ForgeError("the folder holds no .toml configs", at: SourceLocation(file: path))
            }
            result += configs
        }
        return result
    }

    /// Builds every variant into `out`, keeping the other files there (`AtomicOutput.update`).
    /// Each variant's archives are staged as soon as they are built, under a folder per variant,
    /// not held in memory; when every variant succeeded, they and their SHA256SUMS are swapped
    /// in when the batch ends. Returns the variants and the names of the files written: none,
    /// and nothing on disk, when any variant failed: bad input changes nothing, and every
    /// variant is still built so that all failures are reported at once. `confinement`: the
    /// configs are a tree's own (`build --tree`).
    public static func build(into out: String, configPaths: [String?], confinedTo confinement: ConfigConfinement? = nil,
                             templates: TemplateSet, environment: [String: String],
                             progress: @escaping @Sendable (Int, Progress) -> Void) throws(ForgeError) -> (variants: [Variant], written: [String]) {
        let staged = AtomicOutput.StagedUpdate(out)
        // A single variant's archives go to their names at once; with several, each variant's
        // wait aside until every variant has been built, since one failure writes nothing.
        let single = configPaths.count == 1
        let variants = build(configPaths: configPaths, confinedTo: confinement, templates: templates, environment: environment, deliver: { index, distribution throws(ForgeError) in
            for (name, data, sha256) in [(distribution.sdistName, distribution.sdist, distribution.sdistSHA256),
                                         (distribution.wheelName, distribution.wheel, distribution.wheelSHA256)] {
                if single {
                    try staged.write(data, sha256: sha256, to: name)
                } else {
                    try staged.writeAside(data, sha256: sha256, to: "\(index)/\(name)")
                }
            }
        }, progress: progress)
        if let error = staged.setupError { throw error }
        let built = variants.enumerated().compactMap { index, variant in (try? variant.result.get()).map { (index, $0) } }
        guard built.count == variants.count else {
            staged.discard()
            return (variants, [])
        }
        do {
            for (index, variant) in built where !single {
                for name in [variant.sdistName, variant.wheelName] { try staged.publishAside("\(index)/\(name)", to: name) }
            }
            try staged.write(Data(built.map(\.1.checksums).joined().utf8), to: "SHA256SUMS")
            try staged.commit()
        } catch {
            staged.discard()
            throw error
        }
        return (variants, ["SHA256SUMS"] + built.flatMap { [$0.1.sdistName, $0.1.wheelName] })
    }

    /// Builds every variant and hands each one's archives to `deliver` as soon as they exist
    /// (on the thread that built them). A variant whose `deliver` throws has failed.
    static func build(configPaths: [String?], confinedTo confinement: ConfigConfinement? = nil, templates: TemplateSet, environment: [String: String],
                             deliver: @escaping @Sendable (Int, Distribution) throws(ForgeError) -> Void,
                             progress: @escaping @Sendable (Int, Progress) -> Void) -> [Variant] {
        let results = ConcurrentSlots<Result<Built, ForgeError>>(count: configPaths.count)
        let renderer = Result { () throws(ForgeError) in try PluginRenderer.compiled(templates) }
        DispatchQueue.concurrentPerform(iterations: configPaths.count) { index in
            progress(index, .started)
            let outcome = Result { () throws(ForgeError) -> Built in
                let config = try Pipeline.loadConfig(configPaths[index], confinedTo: confinement)
                let tree = try renderer.get().render(config)
                let distribution = try Pipeline.distribution(config, tree: tree, environment: environment)
                try deliver(index, distribution)
                progress(index, .finished(distribution))
                return Built(sdistName: distribution.sdistName, wheelName: distribution.wheelName, checksums: distribution.checksums)
            }
            if case .failure(let error) = outcome { progress(index, .failed(error)) }
            results.set(index, outcome)
        }
        var variants = zip(configPaths, results.values).map { Variant(configPath: $0, result: $1!) }
        markNameClashes(&variants)
        return variants
    }

    /// Two variants writing the same file name would overwrite each other in dist/.
    private static func markNameClashes(_ variants: inout [Variant]) {
        var owner: [String: String] = [:]
        for index in variants.indices {
            guard case .success(let built) = variants[index].result else { continue }
            if let first = owner[built.sdistName] {
                variants[index].result = .failure(ForgeError(
                    "produces \(built.sdistName), as \(first) does", at: SourceLocation(file: variants[index].label),
                    keyPath: "package.name", fix: "give each variant its own package name (and module)"))
            } else {
                owner[built.sdistName] = variants[index].label
            }
        }
    }
}
