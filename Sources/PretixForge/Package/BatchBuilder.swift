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

    /// Builds every variant and hands each one's archives to `deliver` as soon as they exist
    /// (on the thread that built them), so that a batch never holds all archives in memory. A
    /// variant whose `deliver` throws has failed.
    public static func build(configPaths: [String?], templates: TemplateSet, environment: [String: String],
                             deliver: @escaping @Sendable (Int, Distribution) throws(ForgeError) -> Void,
                             progress: @escaping @Sendable (Int, Progress) -> Void) -> [Variant] {
        let results = ConcurrentSlots<Result<Built, ForgeError>>(count: configPaths.count)
        let renderer = Result { () throws(ForgeError) in try PluginRenderer(templates: templates) }
        DispatchQueue.concurrentPerform(iterations: configPaths.count) { index in
            progress(index, .started)
            let outcome = Result { () throws(ForgeError) -> Built in
                let config = try Pipeline.loadConfig(configPaths[index])
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
